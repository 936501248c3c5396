"""Messages between the coordinator and its worker processes.

Frames travel as a 4-byte big-endian length followed by a msgpack-encoded tagged Struct:
commands on the worker's stdin, snapshots on its stdout. Both sides use ``FrameReader`` /
``encode_frame`` from this module.
"""

from __future__ import annotations

import struct
from typing import Any, Literal

import msgspec
from msgspec import Struct

# ---- coordinator -> worker -------------------------------------------------------------


class Init(Struct, tag="init", array_like=True):
    plan: bytes
    """The validated plan, msgpack-encoded (``perftui.plan.Plan``)."""
    target: str
    """Resolved base URL (``demo`` already replaced by the demo server's URL)."""
    worker_index: int
    worker_count: int
    snapshot_interval: float = 0.25
    seed: int = 0


class SetLoad(Struct, tag="load", array_like=True):
    """Run this load shape until told otherwise. Times are ``time.monotonic()`` values, which are
    system-wide on Linux and macOS, so coordinator and workers share the clock."""

    phase: int
    kind: Literal["open", "closed", "idle"]
    start: float
    """When the shape starts (the schedule's origin)."""
    duration: float
    """Over which ``*_from`` ramps to ``*_to``; after it the ``*_to`` value holds."""
    rate_from: float = 0.0
    rate_to: float = 0.0
    arrivals: Literal["uniform", "poisson"] = "uniform"
    max_in_flight: int = 0
    """0 = unlimited."""
    vus_from: int = 0
    vus_to: int = 0
    clock_origin: float = 0.0
    """The run's time zero: snapshots are taken on a grid of ``snapshot_interval`` from it, so
    the coordinator can assign them to whole seconds exactly."""
    share: int = 0
    shares: int = 0
    """Open model: this worker takes arrivals ``share``, ``share + shares``, ... of the common
    schedule (0 shares: ``Init.worker_index`` of ``Init.worker_count``). The coordinator renumbers
    the live workers when one is lost, so the survivors interleave evenly again."""
    ends: bool = False
    """Open model: the run ends with this shape (its last phase), so no arrival is scheduled
    after ``duration``; otherwise the ``rate_to`` holds until the next shape arrives."""


class Stop(Struct, tag="stop", array_like=True):
    grace: float = 2.0
    """Seconds to let in-flight requests finish."""
    teardown: float = 0.0
    """Then run the plan's ``[[teardown]]`` within this many seconds (0: don't; one worker does)."""
    at: float = 0.0
    """When the run stopped (the coordinator's monotonic clock, moved to the worker's as a
    ``SetLoad``'s start is; 0: when the worker reads this). Open-model arrivals due before it that
    the worker never reached (held, or its schedule behind) are counted dropped."""


# -- setup, teardown, benchmarks (perftui.worker.stages, perftui.run.stages) --


class RunSetup(Struct, tag="setup", array_like=True):
    """Run the plan's ``[[setup]]`` steps now, within ``timeout`` seconds; answer ``StageDone``."""

    timeout: float


class Shared(Struct, tag="shared", array_like=True):
    """The setup's captures: every virtual user of the worker starts with them (its own copy)."""

    vars: dict[str, Any]


class Bench(Struct, tag="bench", array_like=True):
    """Benchmark scenario ``scenario``: ``warmup`` iterations left out of the statistics, then
    exactly ``iterations`` measured ones, ``concurrency`` at a time; answer ``BenchDone``."""

    phase: int
    scenario: int
    warmup: int
    iterations: int
    concurrency: int
    clock_origin: float = 0.0
    hold: bool = False
    """After the warm-up (if any share of it is this worker's), say ``BenchWarm`` and wait for ``BenchGo``."""


class BenchGo(Struct, tag="benchgo", array_like=True):
    """Every worker of benchmark phase ``phase`` has warmed up: take the measured samples now."""

    phase: int


Command = Init | SetLoad | Stop | RunSetup | Shared | Bench | BenchGo

# ---- worker -> coordinator -------------------------------------------------------------


class EndpointDelta(Struct, array_like=True):
    """What one endpoint did during one snapshot interval."""

    name: str
    requests: int
    errors: int
    status: dict[int, int]
    error_kinds: dict[str, int]
    latency: bytes
    """HDR histogram (µs) in the standard compressed form, or b"" when empty."""
    service: bytes
    """Same for service time; b"" when identical to ``latency`` (closed model)."""
    bytes_received: int = 0
    latency_sum: float = 0.0
    """Sum of recorded latencies (µs), for the mean (hdrh computes it in slow Python)."""
    service_sum: float = 0.0
    protocol: str = ""
    """What the endpoint's requests went over: "http/1.1", "h2", "h2c"; "" for non-HTTP steps."""


class Snapshot(Struct, tag="snap", array_like=True):
    worker: int
    seq: int
    t: float
    """``time.monotonic()`` at the end of the interval (a point of the snapshot grid)."""
    interval: float
    endpoints: list[EndpointDelta]
    iterations: int = 0
    late_starts: int = 0
    dropped: int = 0
    in_flight: int = 0
    vus: int = 0
    open_connections: int = 0
    loop_lag_ms: float = 0.0
    """Worst event-loop lag seen in the interval (a 5 ms probe timer's lateness)."""
    schedule_lag_ms: float = 0.0
    """Max delay between an arrival's scheduled and actual start in the interval."""
    cpu_percent: float = 0.0
    rss_bytes: int = 0
    errors_sample: list[str] = []
    """A few recent error messages ("kind: text")."""
    extra: dict[str, float] = {}
    """Protocol-specific counters (WebSocket messages, ...)."""
    stalls: int = 0
    """Times in the interval the worker's event loop was held more than 2 ms (by the worker's own
    work, garbage collection or a busy core): responses arriving then were timed late."""
    queued: int = 0
    """Open model: arrivals waiting for a free lane now (they keep their intended start)."""


class Hello(Struct, tag="hello", array_like=True):
    worker: int
    pid: int


class Fatal(Struct, tag="fatal", array_like=True):
    worker: int
    message: str


class Bye(Struct, tag="bye", array_like=True):
    worker: int


class StageDone(Struct, tag="stage", array_like=True):
    """What ``[[setup]]`` or ``[[teardown]]`` did: its requests (kept apart from the load's), the
    variables it captured (setup) and, when a step failed, what went wrong."""

    worker: int
    stage: str
    ok: bool
    message: str
    duration: float
    endpoints: list[EndpointDelta]
    captured: dict[str, Any] = {}


class BenchWarm(Struct, tag="benchwarm", array_like=True):
    """This worker's warm-up of benchmark phase ``phase`` is over; it waits for ``BenchGo``."""

    worker: int
    phase: int


class BenchDone(Struct, tag="benchdone", array_like=True):
    worker: int
    phase: int
    measured: int
    warmup: int


Report = Snapshot | Hello | Fatal | Bye | StageDone | BenchWarm | BenchDone

_HEADER = struct.Struct(">I")
_command_encoder = msgspec.msgpack.Encoder()
command_decoder = msgspec.msgpack.Decoder(Command)
report_decoder = msgspec.msgpack.Decoder(Report)


def encode_frame(msg: Struct) -> bytes:
    body = _command_encoder.encode(msg)
    return _HEADER.pack(len(body)) + body


class FrameReader:
    """Incremental splitter for length-prefixed frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        frames = []
        while len(self._buf) >= 4:
            (n,) = _HEADER.unpack_from(self._buf)
            if len(self._buf) < 4 + n:
                break
            frames.append(bytes(self._buf[4 : 4 + n]))
            del self._buf[: 4 + n]
        return frames
