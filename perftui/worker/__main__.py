"""``python -m perftui.worker``: the worker process entry (see ``perftui.worker.main``)."""

from perftui.worker.main import run

if __name__ == "__main__":
    run()
