"""The open model's wake-up before each arrival, to within a fraction of a millisecond.

The event loop's timers (``asyncio.sleep``, ``call_at``) count in whole milliseconds on uvloop:
a delay is rounded to a millisecond from the loop's cached clock, which is itself up to a
millisecond old, so a timer fires up to ~1.5 ms after the time asked (measured on one idle core,
200 wake-ups a second: p50 0.18 ms late, p99 0.75, p99.9 2.2). An arrival sent that late counts
the delay in its latency — the generator's own tail, not the server's. A Linux timer file
descriptor (``timerfd``, nanosecond deadlines on the same monotonic clock as ``time.monotonic``)
watched by the loop fires when asked (same machine: p50 0.15, p99 0.27, p99.9 1.75 ms, the rest
being the machine's own wake-up latency; ``bench/README.md``). Python gains ``os.timerfd_create``
only in 3.13, so on 3.11 and 3.12 it is two libc calls through ``ctypes``; where neither is
available, or ``PERFTUI_LOOP_TIMER`` is set in the worker's environment, the loop's own timer is
used.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
import time
from typing import Awaitable

__all__ = ["Waker"]

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = getattr(os, "O_CLOEXEC", 0o2000000)
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p]
        return libc
    except (OSError, AttributeError):
        return None


class Waker:
    """``await waker.until(t)``: resume at ``time.monotonic() == t`` (or just after). One timer,
    re-armed for each wait; a wait that is cancelled leaves it armed, and its firing is then
    ignored. ``precise`` False: no timer file descriptor here, and ``until`` sleeps on the
    loop's timer. ``close()`` when done."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.fd = -1
        self._fut: asyncio.Future | None = None
        self._spec = _Itimerspec()
        self._ref = ctypes.byref(self._spec)
        libc = None if os.environ.get("PERFTUI_LOOP_TIMER") else _libc()
        if libc is None:
            return
        fd = libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            return
        self._settime = libc.timerfd_settime
        self.fd = fd
        loop.add_reader(fd, self._fired)

    @property
    def precise(self) -> bool:
        """A timer file descriptor is in use (else the loop's millisecond timer)."""
        return self.fd >= 0

    def until(self, when: float) -> Awaitable[None]:
        """Done at ``when`` (``time.monotonic()``'s clock); without a timer file descriptor, a
        sleep on the loop's timer until then."""
        if self.fd < 0:
            return asyncio.sleep(when - time.monotonic())
        value = self._spec.it_value
        sec = int(when)
        value.tv_sec, value.tv_nsec = sec, int((when - sec) * 1e9)
        if value.tv_sec == 0 and value.tv_nsec == 0:
            value.tv_nsec = 1  # (all zeros would disarm the timer)
        self._fut = fut = self.loop.create_future()
        if self._settime(self.fd, _TFD_TIMER_ABSTIME, self._ref, None) != 0:  # pragma: no cover - kernel refused
            fut.set_result(None)
        return fut

    def _fired(self) -> None:
        try:
            os.read(self.fd, 8)
        except BlockingIOError:  # re-armed since it became readable
            return
        fut, self._fut = self._fut, None
        if fut is not None and not fut.done():
            fut.set_result(None)

    def close(self) -> None:
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
        fut, self._fut = self._fut, None
        if fut is not None and not fut.done():
            fut.cancel()
