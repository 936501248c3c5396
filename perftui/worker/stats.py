"""Constant-memory statistics, the worker's write half: HDR histograms (3 significant digits,
microseconds) and counters. The coordinator's read half is ``perftui.aggregate``.

- ``EndpointRecorder`` lives in a worker and is written on every request. It writes straight into
  the histogram's counts array (hdrh's ``record_value`` costs ~1 µs in pure Python, a third of a
  request's budget at saturation). ``take_delta()`` ships the interval as an ``EndpointDelta``.
- ``perftui.aggregate.Aggregate`` lives in the coordinator: decoded deltas merged into cumulative
  and windowed views, summarised into ``StatsSummary`` on demand.

Latency is recorded for every request that got a response (any status); transport failures
(refused, timeout, reset, ...) are counted but have no latency.
"""

from __future__ import annotations

import base64
import ctypes
import sys
import weakref
import zlib

from hdrh.codec import ext_header_size, payload_header_size
from hdrh.histogram import HdrHistogram
from pyhdrh import encode as _varint_encode

from perftui.worker.messages import EndpointDelta

LOWEST_US = 1
HIGHEST_US = 600_000_000  # 10 minutes; longer values are clamped
SIGNIFICANT_DIGITS = 3


def new_histogram() -> HdrHistogram:
    return acyclic(HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS))


def acyclic(h: HdrHistogram) -> HdrHistogram:
    """hdrh's histogram and its encoder point at each other, so a dropped histogram (and its
    ~170 KB counts array) waited for the cyclic collector: in the coordinator, which decodes every
    worker delta and rolls per-second aggregates, that was megabytes of swing between
    collections. With the encoder's back-reference weak, reference counting frees it at once."""
    h.encoder.histogram = weakref.proxy(h)
    return h


def clear_histogram(h: HdrHistogram) -> None:
    """hdrh's own reset loops in Python over ~20k counters; memset is instant."""
    ctypes.memset(ctypes.addressof(h.counts), 0, ctypes.sizeof(h.counts))
    h.total_count = 0
    h.min_value = sys.maxsize
    h.max_value = 0


_encode_buffer = None


def encode_histogram(h: HdrHistogram) -> bytes:
    """``h.encode()``, byte for byte, without its garbage. hdrh sizes a scratch buffer to each
    histogram's highest value, and every new size makes a new ctypes array *type*: ~3 KB of
    reference cycles that only a full collection frees. A worker encoding a few histograms a
    second grew ~0.8 MB a minute that way until its first full collection (minutes later, with
    the worker's raised thresholds). Here one buffer of the largest size serves every encoding."""
    global _encode_buffer
    payload = h.encoder.payload
    length = h.get_counts_array_index(h.max_value) + 1 if h.total_count else 0
    room = h.counts_len * (payload.word_size + 1)
    if _encode_buffer is None or ctypes.sizeof(_encode_buffer) < payload_header_size + room:
        _encode_buffer = (ctypes.c_byte * (payload_header_size + room))()
    base = ctypes.addressof(_encode_buffer)
    used = _varint_encode(ctypes.addressof(payload.counts), length, payload.word_size,
                          base + payload_header_size, length * (payload.word_size + 1))
    header = payload.payload
    header.payload_len = used
    ctypes.memmove(base, ctypes.addressof(header), payload_header_size)
    compressed = zlib.compress(ctypes.string_at(base, payload_header_size + used))
    outer = h.encoder.header
    outer.length = len(compressed)
    return base64.b64encode(ctypes.string_at(ctypes.addressof(outer), ext_header_size) + compressed)


class FastHistogram:
    """Record-only front end for an ``HdrHistogram`` with the index math inlined."""

    __slots__ = ("hist", "_counts", "_mask", "_shift", "_unit", "_half_mag", "_half", "count",
                 "total", "min", "max")

    def __init__(self) -> None:
        h = self.hist = new_histogram()
        self._counts = h.counts
        self._mask = h.sub_bucket_mask
        self._unit = h.unit_magnitude
        self._half_mag = h.sub_bucket_half_count_magnitude
        self._half = h.sub_bucket_half_count
        self._shift = h.unit_magnitude + h.sub_bucket_half_count_magnitude + 1
        self.count = 0
        self.total = 0
        self.min = sys.maxsize
        self.max = 0

    def record(self, us: int) -> None:
        if us > HIGHEST_US:
            us = HIGHEST_US
        elif us < 0:
            us = 0
        bucket = (us | self._mask).bit_length() - self._shift
        self._counts[((bucket + 1) << self._half_mag) + (us >> (bucket + self._unit)) - self._half] += 1
        self.count += 1
        self.total += us
        if us < self.min:
            self.min = us
        if us > self.max:
            self.max = us

    def copy_from(self, other: "FastHistogram") -> None:
        """Become a copy of ``other`` (one memmove of the counts)."""
        ctypes.memmove(ctypes.addressof(self._counts), ctypes.addressof(other._counts), ctypes.sizeof(self._counts))
        self.count = other.count
        self.total = other.total
        self.min = other.min
        self.max = other.max

    def take(self) -> tuple[bytes, int]:
        """Encoded histogram of what was recorded since the last take (b"" if nothing), and the sum."""
        if not self.count:
            return b"", 0
        h = self.hist
        h.total_count = self.count
        h.min_value = self.min
        h.max_value = self.max
        encoded = encode_histogram(h)
        total = self.total
        clear_histogram(h)
        self.count = 0
        self.total = 0
        self.min = sys.maxsize
        self.max = 0
        return encoded, total


class _LazyHistogram:
    """Stands in for an endpoint's ``FastHistogram`` until its first value: a histogram's counts
    take ~160 KB, so a plan with 20,000 steps allocated 6 GB at start (25-30 s, most of it page
    faults) for endpoints that may never be reached. The first ``record`` puts the real
    histogram in its place, so the per-request path stays one attribute lookup."""

    __slots__ = ("owner", "attr")
    count = total = max = 0
    min = sys.maxsize

    def __init__(self, owner, attr: str) -> None:
        self.owner = owner
        self.attr = attr

    def record(self, us: int) -> None:
        h = FastHistogram()
        setattr(self.owner, self.attr, h)
        h.record(us)

    def copy_from(self, other) -> None:
        h = FastHistogram()
        setattr(self.owner, self.attr, h)
        if other.count:
            h.copy_from(other)

    def take(self) -> tuple[bytes, int]:
        return b"", 0


class EndpointRecorder:
    """Per-endpoint counters and histograms for one snapshot interval, in one worker."""

    __slots__ = ("name", "requests", "errors", "status", "error_kinds", "latency", "service",
                 "bytes_received", "separate_service", "protocol", "split")

    def __init__(self, name: str, separate_service: bool = True) -> None:
        self.name = name
        self.requests = 0
        self.errors = 0
        self.status: dict[int, int] = {}
        self.error_kinds: dict[str, int] = {}
        self.latency = _LazyHistogram(self, "latency")
        # In the closed model a request's intended start *is* its send time, so both
        # histograms would be identical: record once and say so in the delta.
        self.separate_service = separate_service
        self.service = _LazyHistogram(self, "service") if separate_service else None
        self.bytes_received = 0
        self.protocol = ""
        """What the endpoint's requests travel over ("http/1.1", "h2", "h2c"); "" if not HTTP."""
        self.split = False
        """Some latency in this interval differed from its service time. Until then only the
        latency histogram is written and the delta says "service = latency" (the closed model's
        usual case: one histogram record per request instead of two, ~1 us)."""

    def _record(self, latency_us: int, service_us: int) -> None:
        if latency_us == service_us and not self.split:
            self.latency.record(latency_us)
            return
        svc = self.service
        if svc is None:
            self.latency.record(latency_us)
            return
        if not self.split:
            self.split = True
            svc.copy_from(self.latency)
            svc = self.service  # a lazy stand-in has just put the real histogram in its place
        self.latency.record(latency_us)
        svc.record(service_us)

    def response(self, status: int, latency_us: int, service_us: int, nbytes: int, error_kind: str | None) -> None:
        self.requests += 1
        st = self.status
        st[status] = st.get(status, 0) + 1
        if latency_us == service_us and not self.split:
            self.latency.record(latency_us)
        else:
            self._record(latency_us, service_us)
        self.bytes_received += nbytes
        if error_kind is not None:
            self.errors += 1
            ek = self.error_kinds
            ek[error_kind] = ek.get(error_kind, 0) + 1

    def op(self, latency_us: int | None, service_us: int, error_kind: str | None = None, nbytes: int = 0) -> None:
        """A completed non-HTTP operation (a WebSocket message round trip, a send, a hold): no
        status code; ``latency_us=None`` counts it without a latency (sends, holds, closes)."""
        self.requests += 1
        if latency_us is not None:
            self._record(latency_us, service_us)
        self.bytes_received += nbytes
        if error_kind is not None:
            self.errors += 1
            ek = self.error_kinds
            ek[error_kind] = ek.get(error_kind, 0) + 1

    def failure(self, kind: str) -> None:
        """A request that got no response (refused, timeout, reset, ...)."""
        self.requests += 1
        self.errors += 1
        ek = self.error_kinds
        ek[kind] = ek.get(kind, 0) + 1

    def take_delta(self) -> EndpointDelta | None:
        if not self.requests:
            return None
        lat, lat_sum = self.latency.take()
        if self.service is not None and self.split:
            svc, svc_sum = self.service.take()
        else:
            svc, svc_sum = b"", lat_sum
        self.split = False
        delta = EndpointDelta(
            name=self.name,
            requests=self.requests,
            errors=self.errors,
            status=self.status,
            error_kinds=self.error_kinds,
            latency=lat,
            service=svc,
            bytes_received=self.bytes_received,
            latency_sum=lat_sum,
            service_sum=svc_sum,
            protocol=self.protocol,
        )
        self.requests = 0
        self.errors = 0
        self.status = {}
        self.error_kinds = {}
        self.bytes_received = 0
        return delta


# ---- protocol counters (WebSocket, MCP), shipped in Snapshot.extra ----------------------


class WsStats:
    """Counters of one worker, shipped in ``Snapshot.extra`` (``ws.*``; see ``ScenarioRunner.take_extra``)."""

    __slots__ = ("closed_by_server", "failed", "open", "opened", "received", "sent")

    def __init__(self) -> None:
        self.sent = 0
        self.received = 0
        self.opened = 0
        self.failed = 0
        self.closed_by_server = 0
        self.open = 0

    def take(self) -> dict[str, float]:
        out = {
            "ws.messages_sent": float(self.sent),
            "ws.messages_received": float(self.received),
            "ws.connections_opened": float(self.opened),
            "ws.connections_failed": float(self.failed),
            "ws.closed_by_server": float(self.closed_by_server),
            "ws.open_connections": float(self.open),
        }
        self.sent = self.received = self.opened = self.failed = self.closed_by_server = 0
        return out


class McpStats:
    """MCP counters of one worker (``mcp.*``), shipped in ``Snapshot.extra``."""

    __slots__ = ("expired", "sessions")

    def __init__(self) -> None:
        self.sessions = 0
        self.expired = 0

    def take(self) -> dict[str, float]:
        out = {"mcp.sessions_initialized": float(self.sessions), "mcp.sessions_expired": float(self.expired)}
        self.sessions = self.expired = 0
        return out
