"""The Textual application and its entry points, called by ``perftui.cli`` and ``perftui.sessions``:

* ``run_dashboard(loaded, ...)``: the dashboard on one plan (``perftui run PLAN``).
* ``run_picker(...)``: the plan picker first (``perftui`` with no arguments).
* ``run_attached(socket_path, ...)``: the dashboard on a run going on in another process
  (``perftui attach``); ``attached_app(remote)`` builds that app for a connected
  ``RemoteCoordinator`` (tests use it directly). Leaving it, however it happens, detaches.

Lifecycle, mirroring the headless reporter: the app runs in our own asyncio loop, so that whatever
ends it (q, Ctrl-C, SIGINT/SIGTERM/SIGHUP, the terminal going away, a crash) the ``finally`` still
stops a run that is going, writes the session and stops the workers and the demo target. Only a
signal counts as an interruption (exit code 130); otherwise the exit code is the thresholds' verdict.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from perftui.planload import LoadedPlan
from perftui.ui.controller import AttachedController, Backend, RunController
from perftui.ui.messages import PlanChosen, RunEnded

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

RENDER_CACHES = (("textual.strip", "Strip.render_ansi"),)
"""Memo caches of the UI libraries that a live dashboard keeps growing long after its first
minute: Textual's ANSI code per style holds up to 16,384 styles, and new colour blends keep
arriving (~0.5 a second in a 2,000/s run at 160x48), so it would grow for about nine hours (to
~6 MB). It is emptied every ``CACHE_TRIM_S``; a miss costs a few microseconds. (Rich's cell
lengths and Textual's colour filter, bounded at 4,096 and 1,024, are full within the first
minute and then stay at their bound: not trimmed.)"""
CACHE_TRIM_S = 60.0


def trim_render_caches() -> int:
    """Empty the ``RENDER_CACHES`` that exist in the installed Rich and Textual; returns how many
    entries they held."""
    import importlib

    held = 0
    for module, name in RENDER_CACHES:
        try:
            obj = importlib.import_module(module)
            for part in name.split("."):
                obj = getattr(obj, part)
            held += obj.cache_info().currsize
            obj.cache_clear()
        except (ImportError, AttributeError):  # another version of the library: nothing to trim
            continue
    return held


class PerftuiApp(App[int]):
    CSS_PATH = "perftui.tcss"
    TITLE = "perftui"
    ENABLE_COMMAND_PALETTE = False
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    BINDINGS = [Binding("ctrl+c", "interrupt", "stop & quit", show=False, priority=True)]

    def __init__(self, loaded: LoadedPlan | None = None, *, workers: int | None = None, out: str | None = None,
                 reveal_secrets: bool = False, start: bool = False, refresh: float = 4.0,
                 plan_dirs: list[tuple[Path, str]] | None = None, backend: Backend | None = None,
                 remote=None, baseline_p95: list[tuple[float, float | None]] | None = None,
                 baseline_name: str = "", observers: tuple = ()) -> None:
        super().__init__()
        self.observers = tuple(observers)
        """``SessionObserver``s that follow the run's session too (``--metrics-port``'s exporter)."""
        self.baseline_p95 = baseline_p95
        """``perftui run --baseline NAME``: the baseline's (t, p95 ms), a line on the latency chart."""
        self.baseline_name = baseline_name
        self.remote = remote
        """A connected ``perftui.run.attach.RemoteCoordinator``: the dashboard on that run instead."""
        self.loaded = loaded
        self.worker_count = workers
        self.out = out
        self.reveal_secrets = reveal_secrets
        self.start_on_open = start
        self.refresh_hz = max(0.1, refresh)
        self.plan_dirs = plan_dirs
        self.backend = backend
        self.controller: RunController | None = None
        self.signals = 0
        self.last_signal: str | None = None
        self._ctrl_c = 0

    def get_driver_class(self):
        """Where Textual would use ``LinuxDriver``: ``PerftuiDriver`` (never blocks the run on a
        slow terminal, survives a terminal that went away)."""
        from textual.drivers.linux_driver import LinuxDriver

        cls = super().get_driver_class()
        if cls is LinuxDriver:
            from perftui.ui.driver import PerftuiDriver

            return PerftuiDriver
        return cls

    def repaint_after_drops(self) -> None:
        """Frames were dropped while the terminal did not keep up: draw the whole screen again."""
        take = getattr(self._driver, "take_dropped", None)
        if take is not None and take():
            self.refresh(repaint=True)

    def on_mount(self) -> None:
        self.set_interval(1.0, self.repaint_after_drops)
        self.set_interval(CACHE_TRIM_S, trim_render_caches)
        if self.remote is not None:
            from perftui.ui.screens.dashboard import DashboardScreen

            self.controller = AttachedController(self.remote, backend=self.backend)
            self.push_screen(DashboardScreen(self.controller, refresh=self.refresh_hz))
        elif self.loaded is not None:
            self.open_dashboard(self.loaded, start=self.start_on_open)
        else:
            from perftui.ui.screens.picker import PickerScreen

            self.push_screen(PickerScreen(self.plan_dirs))

    def open_dashboard(self, loaded: LoadedPlan, *, start: bool = False) -> None:
        from perftui.ui.screens.dashboard import DashboardScreen

        self.controller = RunController(loaded, workers=self.worker_count, out=self.out,
                                        reveal_secrets=self.reveal_secrets, backend=self.backend,
                                        observers=self.observers)
        screen = DashboardScreen(self.controller, start=start, refresh=self.refresh_hz)
        if len(self.screen_stack) > 1:
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    def on_plan_chosen(self, message: PlanChosen) -> None:
        self.open_dashboard(message.loaded)

    def on_run_ended(self, message: RunEnded) -> None:
        from perftui.ui.screens.results import ResultsScreen

        if self.controller is not None and not isinstance(self.screen, ResultsScreen):
            self.push_screen(ResultsScreen(self.controller))

    def action_interrupt(self) -> None:
        """Ctrl-C: stop gracefully, write the session and quit; a second Ctrl-C stops at once."""
        c = self.controller
        self._ctrl_c += 1
        if c is None or c.remote or not (c.active or c.status == "stopping"):
            self.exit()
            return
        if self._ctrl_c == 1:
            self.notify("stopping gracefully and writing the session… (ctrl+c again: stop now)")
            self._stop_and_exit(c)
        else:
            c.force_stop()

    def _stop_and_exit(self, c: RunController) -> None:
        async def go() -> None:
            await c.stop("stopped by user (ctrl+c)")
            self.exit()

        self.run_worker(go(), group="quit", exclusive=True)

    def on_signal(self, name: str) -> None:
        """SIGINT/SIGTERM/SIGHUP: the terminal may be gone, so do not draw; leave the app at once
        and let ``serve`` stop the run and write the session outside it (attached: detach)."""
        self.signals += 1
        self.last_signal = name
        if self.controller is not None and not self.controller.remote:
            self.controller.interrupted = True
            if self.signals > 1:
                self.controller.force_stop(f"interrupted ({name}, forced)")
        self.exit()


async def serve(app: PerftuiApp, *, headless: bool = False, size: tuple[int, int] | None = None,
                auto_pilot=None) -> int:
    """Run the app to the end, then stop/write/clean up whatever it left; returns the exit code.
    (``headless``/``size``/``auto_pilot`` let tests drive the whole lifecycle.)"""
    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, app.on_signal, sig.name)
    try:
        await app.run_async(headless=headless, size=size, auto_pilot=auto_pilot)
    finally:
        c = app.controller
        if c is not None:
            # the same words as the headless reporter: "interrupted (SIGHUP)" says the SSH link dropped
            reason = f"interrupted ({app.last_signal or 'signal'})" if c.interrupted else "stopped by user (quit)"
            try:
                await c.shutdown(reason)
            finally:
                await c.settle_target()
                await loop.run_in_executor(None, c.close_target)
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)
    return app.controller.exit_code() if app.controller is not None else 0


def _report(app: PerftuiApp) -> None:
    """After the alternate screen is gone: the summary and where the session went, like headless."""
    c = app.controller
    if c is None or not c.started:
        return
    from perftui.headless import summary_text

    try:
        print(summary_text(c.coord.session))
        if c.written is not None:
            if c.write_error:  # the sessions disk failed: the document went to a fallback file
                print(f"\n! {c.write_error}")
            print(f"\nsession written to {c.written.path}" + ("  (partial)" if c.coord.session.partial else ""))
        elif c.write_error:
            print(f"\nperftui: {c.write_error}", file=sys.stderr)
        sys.stdout.flush()
    except OSError:  # the terminal went away (SIGHUP): the session file is what matters
        pass


def _run(app: PerftuiApp) -> int:
    code = asyncio.run(serve(app))
    _report(app)
    return code


def attached_app(remote, *, refresh: float = 4.0, backend: Backend | None = None) -> PerftuiApp:
    """The dashboard on a connected ``RemoteCoordinator``; run it with ``serve``."""
    return PerftuiApp(None, refresh=refresh, backend=backend, remote=remote)


def _report_attached(app: PerftuiApp) -> None:
    c = app.controller
    if c is None:
        return
    try:
        if c.detached or not c.ended:
            print(f"detached — the run goes on; perftui attach {c.session_id} to come back")
        else:
            from perftui.headless import summary_text

            print(summary_text(c.coord.session))
            if c.coord.session_file:
                print(f"\nsession written to {c.coord.session_file}")
        sys.stdout.flush()
    except OSError:  # the terminal went away
        pass


def run_attached(socket_path: str, *, refresh: float) -> int:
    """The dashboard on a detached run (``perftui attach``): 0 when it detaches, 2 when the
    session cannot be reached, else the finished run's verdict."""
    from perftui.run.attach import RemoteCoordinator

    async def main() -> tuple[int, PerftuiApp | None]:
        remote = RemoteCoordinator(socket_path)
        try:
            await remote.connect()
        except (OSError, asyncio.TimeoutError, EOFError) as exc:
            reason = str(exc) or type(exc).__name__
            print(f"perftui: cannot attach to {socket_path}: {reason}\n"
                  "  the run may have just finished: perftui ls", file=sys.stderr)
            return 2, None
        app = attached_app(remote, refresh=refresh)
        return await serve(app), app

    code, app = asyncio.run(main())
    if app is not None:
        _report_attached(app)
    return code


def run_dashboard(loaded: LoadedPlan, *, workers: int | None, out: str | None, reveal_secrets: bool,
                  start: bool, refresh: float, baseline_p95: list[tuple[float, float | None]] | None = None,
                  baseline_name: str = "", observers: tuple = ()) -> int:
    """The dashboard on one plan; returns the exit code (0, 1 thresholds failed, 130 signal).
    ``observers``: ``SessionObserver``s that follow the run's session too."""
    return _run(PerftuiApp(loaded, workers=workers, out=out, reveal_secrets=reveal_secrets, start=start,
                           refresh=refresh, baseline_p95=baseline_p95, baseline_name=baseline_name,
                           observers=observers))


def run_picker(*, workers: int | None, refresh: float) -> int:
    """The plan picker, then the dashboard on the chosen plan."""
    return _run(PerftuiApp(None, workers=workers, refresh=refresh))
