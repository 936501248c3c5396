"""The shapes monitoring data takes: samples the probes produce, per-second timeline entries, and
the ``monitor`` part of the session document.

Samples are msgspec Structs so that they can be forwarded as they are (to an attached viewer, a
journal) and applied to another ``MonitorState`` with the same result. This module imports
nothing but msgspec: ``perftui.session`` builds on it.
"""

from __future__ import annotations

import sys
from typing import Any

from msgspec import Struct

# ---- samples (probe -> MonitorState.apply) -------------------------------------------------


class HealthSample(Struct, tag="health", kw_only=True):
    """One health-check request."""

    url: str
    """The URL as written in the plan (the key everywhere else)."""
    t: float
    """Seconds since the run started, when the answer (or the failure) arrived."""
    up: bool
    status: int | None = None
    """HTTP status; None when there was no answer."""
    latency_ms: float | None = None
    error: str | None = None
    """Why it is down when there was no usable answer (``connect refused``, ``timeout``, ...) or
    ``HTTP 503``."""
    fields: dict[str, Any] = {}
    """A JSON body flattened to dotted keys (``checks.database.status``), scalars only."""


class SeriesInfo(Struct, kw_only=True, omit_defaults=True):
    """One charted metric series."""

    name: str
    """Key in ``timeline[].monitor.metrics``."""
    source: str
    """The Prometheus selector or JSON path it is read from."""
    kind: str
    """``rate`` (per second, from a counter), ``value`` (a gauge as read) or ``quantile``."""
    scale: float = 1.0
    quantile: float | None = None
    default: bool = False
    """Chosen by perftui because the plan named no series."""


class MetricsSample(Struct, tag="metrics", kw_only=True):
    """One scrape of the metrics URL, already turned into per-series values."""

    t: float
    ok: bool
    error: str | None = None
    values: dict[str, float] = {}
    """Series name -> value (rates per second); a series with no value this time is absent."""
    missing: list[str] = []
    """Series that matched nothing in this scrape."""
    series: list[SeriesInfo] | None = None
    """Set when the list of series is (re)decided, i.e. on the first successful scrape."""
    rss_bytes: float | None = None
    """``process_resident_memory_bytes`` when the exposition has it (for the RSS trend)."""


class ProcessSample(Struct, tag="process", kw_only=True):
    """psutil figures for perftui's own processes, the machine and the local SUT process."""

    t: float
    interval: float
    """Seconds the CPU percentages were measured over."""
    generator: dict[str, float] = {}
    """Totals and per-process figures, see ``docs/session.md``."""
    busy: dict[str, float] = {}
    """perftui process label (``coordinator``, ``worker 0``, ...) -> CPU demand in % of one core:
    time on a CPU plus time waiting for one (Linux schedstat), so a CPU-bound worker on a busy
    machine counts as busy even though it gets less than a whole core."""
    host: dict[str, float] = {}
    sut: dict[str, float] | None = None
    """None: no SUT process configured. Empty: configured but not found (or gone)."""
    sut_pid: int | None = None
    sut_name: str = ""


class DbSample(Struct, tag="db", kw_only=True):
    """One sample of a PostgreSQL server (``perftui.monitor.pg``): ``db.NAME.*`` series values."""

    database: str
    """The ``[databases.NAME]`` entry."""
    t: float
    ok: bool
    error: str | None = None
    values: dict[str, float] = {}
    """Series name (``db.NAME.connections``, ...) -> value (rates per second)."""
    series: list[SeriesInfo] | None = None
    """The database's series, on its first successful sample."""


Sample = HealthSample | MetricsSample | ProcessSample | DbSample


# ---- per-second timeline entry -------------------------------------------------------------


class HealthPoint(Struct, kw_only=True, omit_defaults=True):
    up: bool
    status: int | None = None
    latency_ms: float | None = None
    state: str | None = None
    """The JSON body's top-level ``status`` field when it is a string (``ok``, ``degraded``)."""


class MonitorRow(Struct, kw_only=True, omit_defaults=True, gc=False):
    """``timeline[].monitor``: the latest monitoring figures at the end of the row's span."""

    health: dict[str, HealthPoint] = {}
    """Health URL (as written in the plan) -> its latest probe; a URL that was down at any probe
    in the span is down."""
    metrics: dict[str, float] = {}
    """Series name -> value (counters as per-second rates)."""
    sut: dict[str, float] = {}
    """The local SUT process (tree): ``cpu_percent``, ``rss_mb``, ``threads``, ``connections``,
    ``open_fds``, ``processes``."""
    generator: dict[str, float] = {}
    """perftui's processes (psutil): ``cpu_percent``, ``rss_mb``, ``threads``, ``connections``
    (sums), ``coordinator_cpu_percent``, ``coordinator_rss_mb``, ``worker_cpu_max_percent``,
    ``worker<N>_cpu_percent``, ``worker<N>_cpu_wait_percent`` (runnable but waiting for a CPU),
    ``worker<N>_rss_mb`` (same for ``coordinator_``)."""
    host: dict[str, float] = {}
    """The machine: ``cpu_percent`` (all cores, 0-100), ``memory_percent``, ``memory_used_mb``,
    ``load1``."""


_NO_FIGURES: dict[str, float] = {}


def row_figures(figures: dict[str, Any]) -> dict[str, Any]:
    """A timeline row's copy of a figures dict. A row is kept for the whole run (up to
    ``TIMELINE_MAX_ROWS``) and its names are the same every second: they are interned, so the
    run holds one string per name instead of one per row (a worker's ``worker0_cpu_percent``
    and friends were 430 bytes of every row), and an empty dict is one shared object (rows are
    never changed once closed)."""
    if not figures:
        return _NO_FIGURES
    intern = sys.intern
    return {intern(k): v for k, v in figures.items()}


def merge_monitor(rows: list[MonitorRow | None]) -> MonitorRow | None:
    """Merge the monitor entries of timeline rows that are being coarsened: numbers average,
    health keeps the last probe but is down if any merged row was down."""
    present = [r for r in rows if r is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]

    def avg(attr: str) -> dict[str, float]:
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for r in present:
            for k, v in getattr(r, attr).items():
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
        return {k: round(v / counts[k], 3) for k, v in sums.items()}

    health: dict[str, HealthPoint] = {}
    for r in present:
        for url, p in r.health.items():
            prev = health.get(url)
            if prev is None:
                health[url] = p
                continue
            lat = max((x for x in (prev.latency_ms, p.latency_ms) if x is not None), default=None)
            health[url] = HealthPoint(up=prev.up and p.up, status=p.status if prev.up else prev.status,
                                      latency_ms=lat, state=p.state if prev.up else prev.state)
    return MonitorRow(health=health, metrics=avg("metrics"), sut=avg("sut"), generator=avg("generator"),
                      host=avg("host"))


# ---- session document ----------------------------------------------------------------------


class HealthState(Struct, kw_only=True):
    """Current state of one health URL (``session.monitor.health[i]``, ``monitor.health[i]``)."""

    url: str
    """As written in the plan."""
    resolved: str
    """The absolute URL probed."""
    up: bool | None = None
    """None until the first answer."""
    status: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    since: float | None = None
    """When the current up/down state began (seconds since start)."""
    checked_at: float | None = None
    fields: dict[str, Any] = {}
    """The latest JSON body, flattened (``status``, ``checks.database.status``, ...)."""
    probes: int = 0
    failures: int = 0
    down_s: float = 0.0
    """Total time spent down (closed down spells, plus the current one at document time)."""
    latency_max_ms: float | None = None
    latency_sum_ms: float = 0.0


class HealthTransition(Struct, kw_only=True):
    """An up/down change of one health URL (also the first probe when it finds the URL down)."""

    t: float
    url: str
    up: bool
    status: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    fields: dict[str, Any] = {}
    previous_for_s: float | None = None
    """How long the previous state lasted; None for the first probe."""


class GeneratorWarning(Struct, kw_only=True):
    """An interval in which perftui itself was the bottleneck: its numbers are suspect."""

    start: float
    end: float | None
    """None while it lasts."""
    reason: str


class SeriesStats(Struct, kw_only=True):
    name: str
    source: str
    kind: str
    scale: float = 1.0
    default: bool = False
    samples: int = 0
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    last: float | None = None


class TrendInfo(Struct, kw_only=True):
    mb_per_h: float | None
    """Least-squares slope of RSS over the samples, in MB (MiB) per hour; None with fewer than 4
    samples or a span under 4 s."""
    span_s: float
    samples: int
    first_mb: float | None
    last_mb: float | None
    max_mb: float | None
    source: str
    """What was measured: ``process 1234 (python)`` or ``metrics process_resident_memory_bytes``."""


class MonitorDocument(Struct, kw_only=True):
    """The session document's ``monitor`` object."""

    interval_s: float
    health_urls: list[str]
    metrics_url: str | None
    health: list[HealthState]
    transitions: list[HealthTransition]
    series: list[SeriesStats]
    metrics_error: str | None
    """The last scrape's failure (None when the last scrape worked or there is no metrics URL)."""
    sut: dict[str, Any] | None
    """The local SUT process: ``spec``, ``pid``, ``name``, ``cpu_percent_max``,
    ``cpu_percent_mean``, ``rss_trend`` (see TrendInfo); None when none was configured."""
    rss_trend: TrendInfo | None
    """The SUT's RSS trend: from the local process when configured, else from the target's
    ``process_resident_memory_bytes`` metric; None when neither is known."""
    generator: dict[str, Any]
    """``limits`` (the thresholds in force), ``cpu_percent_max`` per perftui process,
    ``rss_trend`` of perftui's processes."""
    host: dict[str, Any]
