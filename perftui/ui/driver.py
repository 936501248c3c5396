"""A terminal driver whose output never holds up the run, and survives the terminal going away.

Textual's ``LinuxDriver`` hands each frame to a writer thread through a queue of 30 and blocks
when the queue is full. For a load tester both failure modes of a remote terminal are bad:

- a frozen SSH link (nobody reads the pty): the queue fills, the event loop blocks in ``put``,
  and with it the coordinator (no seconds closed, no control, no monitoring);
- the link then closes: the writer thread dies on ``EIO`` and the next ``put`` (Textual's own
  shutdown writes) blocks forever, so the run is never stopped, its session never written, and
  the workers and the demo target are left running.

``SafeWriterThread`` drops a frame instead of blocking (``PerftuiApp`` then repaints the whole
screen once the terminal keeps up again), keeps draining after a write error, and stops within a
bounded time. ``PerftuiDriver`` is ``LinuxDriver`` with that writer; ``PerftuiApp`` uses it
wherever Textual would pick ``LinuxDriver``.
"""

from __future__ import annotations

import queue
import time

from textual.drivers._writer_thread import WriterThread
from textual.drivers.linux_driver import LinuxDriver

STOP_WAIT_S = 3.0
"""How long ``stop`` waits for a writer stuck on a terminal that does not read."""


class SafeWriterThread(WriterThread):
    def __init__(self, file) -> None:
        super().__init__(file)
        self.dropped = 0
        """Frames dropped because the terminal did not keep up (reset by whoever repaints)."""
        self.broken = False
        """A write failed (the terminal is gone): everything after it is discarded."""

    def write(self, text: str) -> None:
        if self.broken:
            return
        try:
            self._queue.put_nowait(text)
        except queue.Full:
            self.dropped += 1

    def run(self) -> None:
        get = self._queue.get
        qsize = self._queue.qsize
        while True:
            text = get()
            if text is None:
                break
            if self.broken:
                continue  # keep draining, so that nobody waits on a full queue
            try:
                self._file.write(text)
                if qsize() == 0:
                    self._file.flush()
            except (OSError, ValueError):
                self.broken = True
        try:
            self._file.flush()
        except (OSError, ValueError):
            self.broken = True

    def stop(self) -> None:
        deadline = time.monotonic() + STOP_WAIT_S
        while True:
            try:
                self._queue.put(None, timeout=0.1)
                break
            except queue.Full:
                if not self.is_alive() or time.monotonic() > deadline:
                    return  # a daemon thread stuck in write(): let it go with the process
        self.join(max(0.0, deadline - time.monotonic()))


class PerftuiDriver(LinuxDriver):
    """``LinuxDriver`` writing through a ``SafeWriterThread``."""

    def start_application_mode(self) -> None:
        super().start_application_mode()
        stock = self._writer_thread
        if stock is not None and not isinstance(stock, SafeWriterThread):
            stock.stop()  # writes what it has (entering the alternate screen, ...) first
            self._writer_thread = SafeWriterThread(self._file)
            self._writer_thread.start()

    def take_dropped(self) -> int:
        """Frames dropped since the last call (the screen needs a full repaint if any)."""
        w = self._writer_thread
        if not isinstance(w, SafeWriterThread) or not w.dropped:
            return 0
        n, w.dropped = w.dropped, 0
        return n
