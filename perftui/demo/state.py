"""Mutable runtime state of one demo server: latency/error config, stalls, sessions."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import OrderedDict

from perftui.demo.latency import Latency, parse_latency


def check_error_rate(value: object) -> float:
    """Validate an error rate (a number in [0, 1]); raises ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"error rate must be a number between 0 and 1, got {value!r}")
    try:
        rate = float(value)
    except ValueError:
        raise ValueError(f"error rate must be a number between 0 and 1, got {value!r}") from None
    if not (0.0 <= rate <= 1.0) or math.isnan(rate):
        raise ValueError(f"error rate must be between 0 and 1, got {value!r}")
    return rate


class DemoState:
    """Everything the handlers share. Single event loop, so no locks."""

    def __init__(self, latency: str | Latency = "0ms", error_rate: float = 0.0) -> None:
        self.latency: Latency = parse_latency(latency)
        self.error_rate: float = check_error_rate(error_rate)
        self.rng = random.Random()
        self.started_wall = time.time()
        self.started = time.monotonic()
        #: ``time.monotonic()`` deadline of the current stall (0 = none).
        self.stall_until = 0.0
        self.mcp_sessions: OrderedDict[str, float] = OrderedDict()
        self.mcp_max_sessions = 10_000
        self.next_user_id = 1001
        self.next_bounty_id = 501
        self._stopping: asyncio.Event | None = None
        self.stopping = False

    # -- shutdown-aware sleeping ----------------------------------------------------------
    def begin_shutdown(self) -> None:
        """Server is stopping: end stalls and long sleeps now so requests can finish."""
        self.stopping = True
        self.stall_until = 0.0
        if self._stopping is not None:
            self._stopping.set()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep`` that returns early once the server starts shutting down."""
        if seconds < 0.5:  # short: not worth an Event wait; shutdown grace covers it
            await asyncio.sleep(seconds)
            return
        if self.stopping:
            return
        if self._stopping is None:
            self._stopping = asyncio.Event()
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    # -- config -------------------------------------------------------------------------
    def configure(self, latency: object = None, error_rate: object = None) -> None:
        """Apply a partial config change atomically (validate everything first)."""
        new_latency = self.latency
        new_rate = self.error_rate
        if latency is not None:
            if not isinstance(latency, str):
                raise ValueError(f"latency must be a string such as '20ms', got {latency!r}")
            new_latency = parse_latency(latency)
        if error_rate is not None:
            new_rate = check_error_rate(error_rate)
        self.latency = new_latency
        self.error_rate = new_rate

    def stall_remaining(self) -> float:
        if not self.stall_until:
            return 0.0
        remaining = self.stall_until - time.monotonic()
        if remaining <= 0:
            self.stall_until = 0.0
            return 0.0
        return remaining

    def stall(self, seconds: float) -> float:
        """Stall loaded requests for ``seconds`` from now (0 ends a stall); returns the remaining time."""
        self.stall_until = time.monotonic() + seconds if seconds > 0 else 0.0
        return self.stall_remaining()

    def degraded(self) -> bool:
        return self.stall_remaining() > 0 or self.error_rate > 0.5

    def config_dict(self) -> dict[str, object]:
        return {
            "latency": self.latency.spec,
            "latency_mean_ms": round(self.latency.mean * 1000, 3),
            "error_rate": self.error_rate,
            "stall_remaining_s": round(self.stall_remaining(), 3),
        }

    def uptime(self) -> float:
        return time.monotonic() - self.started

    # -- the "loaded" behaviour ---------------------------------------------------------
    async def apply_load(self) -> bool:
        """Stall/delay as configured; return True when this request should fail (500)."""
        if self.stall_until:
            remaining = self.stall_until - time.monotonic()
            if remaining > 0:
                await self.sleep(remaining)
        latency = self.latency
        if not latency.is_zero:
            delay = latency.sample()
            if delay > 0:
                deadline = time.perf_counter() + delay
                await self.sleep(delay)
                # Event-loop timers may fire a hair early; a latency of 50ms means >= 50ms.
                short = deadline - time.perf_counter()
                if short > 0 and not self.stopping:
                    await asyncio.sleep(short)
        rate = self.error_rate
        return rate > 0.0 and (rate >= 1.0 or self.rng.random() < rate)

    # -- MCP sessions (bounded LRU) -----------------------------------------------------
    def mcp_open(self, session_id: str) -> None:
        sessions = self.mcp_sessions
        sessions[session_id] = time.monotonic()
        while len(sessions) > self.mcp_max_sessions:
            sessions.popitem(last=False)

    def mcp_touch(self, session_id: str) -> bool:
        sessions = self.mcp_sessions
        if session_id in sessions:
            sessions.move_to_end(session_id)
            return True
        return False

    def mcp_close(self, session_id: str) -> bool:
        return self.mcp_sessions.pop(session_id, None) is not None
