"""SQL figures of a run for thresholds (``sql.*``), from the session record's aggregates and the
pool figures the workers ship in ``Snapshot.extra`` (``perftui.worker.sql``).

Whole run: ``sql.requests``, ``sql.errors``, ``sql.error_rate``, ``sql.rps``, ``sql.rows``,
latencies (``sql.p95``, ``sql.mean``, ...) over every SQL endpoint, ``sql.pool.utilization`` (the
most connections in use at once over the pool's size, the busiest database's) and
``sql.pool.wait.mean`` (ms a statement waited for a connection, on average). Per database:
``sql.pool.utilization{NAME}``, ``sql.pool.wait.mean{NAME}``. Per SQL endpoint:
``sql.p95{insert event}``, ``sql.rows{insert event}``, ...

Called by ``SessionRecord.protocol_extra``; a pure function.
"""

from __future__ import annotations

from collections.abc import Mapping

from msgspec import Struct

from perftui.aggregate import Aggregate, summarize_histogram
from perftui.summary import LatencySummary

__all__ = ["SqlPoolSummary", "SqlSummary", "sql_extra", "sql_summary"]


class SqlPoolSummary(Struct, kw_only=True):
    """One database's connection pool over the run (all workers together)."""

    size: int = 0
    """``[databases.NAME].pool``: connections allowed, all workers together."""
    open: int = 0
    """Connections open at the last second."""
    in_use: int = 0
    """The most in use at once during the last second."""
    peak_in_use: int = 0
    """The most in use at once during the run (per second, summed over workers)."""
    utilization: float | None = None
    """``peak_in_use / size`` (a fraction)."""
    waiting: int = 0
    """Virtual users waiting for a connection at the last second."""
    waits: int = 0
    """Statements that had to wait for a connection."""
    wait_ms_mean: float | None = None
    """Mean wait for a connection over every statement (ms)."""
    connects: int = 0
    connect_failures: int = 0


class SqlSummary(Struct, kw_only=True):
    """The SQL steps of a run (``protocols.sql`` in the session document)."""

    statements: int = 0
    """Statements (or transactions) run, failed ones included."""
    errors: int = 0
    error_rate: float = 0.0
    rps: float = 0.0
    rows: int = 0
    """Rows returned (or, for ``fetch = "none"`` and writes, counted by the command tag)."""
    rows_per_s: float = 0.0
    latency_ms: LatencySummary = LatencySummary()
    error_kinds: dict[str, int] = {}
    databases: dict[str, SqlPoolSummary] = {}
    endpoints: list[str] = []


def sql_summary(roles: Mapping[str, str], endpoints: Mapping[str, Aggregate], *, extra_total: Mapping[str, float],
                gauges: Mapping[str, float], gauge_peaks: Mapping[str, float], span: float) -> SqlSummary | None:
    """None when the plan has no SQL step."""
    names = [n for n, r in roles.items() if r == "sql"]
    if not names:
        return None
    every = Aggregate()
    rows = 0
    for name in names:
        agg = endpoints.get(name)
        if agg is not None:
            every.merge(agg)
        rows += int(extra_total.get(f"sql.rows{{{name}}}", 0.0))
    dbs: dict[str, SqlPoolSummary] = {}
    for db in sorted({k.split(".")[1] for k in gauges if k.startswith("pool.") and k.endswith(".size")}):
        size = int(gauges.get(f"pool.{db}.size", 0))
        peak = int(gauge_peaks.get(f"pool.{db}.in_use_peak", 0))
        acquires = extra_total.get(f"sql.{db}.acquires", 0.0)
        dbs[db] = SqlPoolSummary(
            size=size, open=int(gauges.get(f"pool.{db}.open", 0)), in_use=int(gauges.get(f"pool.{db}.in_use_peak", 0)),
            peak_in_use=peak, utilization=peak / size if size else None,
            waiting=int(gauges.get(f"pool.{db}.waiting", 0)), waits=int(extra_total.get(f"sql.{db}.waits", 0)),
            wait_ms_mean=round(extra_total.get(f"sql.{db}.wait_ms", 0.0) / acquires, 3) if acquires else None,
            connects=int(extra_total.get(f"sql.{db}.connects", 0)),
            connect_failures=int(extra_total.get(f"sql.{db}.connect_failures", 0)))
    return SqlSummary(
        statements=every.requests, errors=every.errors,
        error_rate=every.errors / every.requests if every.requests else 0.0,
        rps=round(every.requests / span, 3) if span else 0.0, rows=rows,
        rows_per_s=round(rows / span, 3) if span else 0.0,
        latency_ms=summarize_histogram(every.latency, every.latency_sum),
        error_kinds=dict(sorted(every.error_kinds.items())), databases=dbs, endpoints=names)

_LATENCY = ("min", "mean", "p50", "p90", "p95", "p99", "p999", "max")


def sql_extra(roles: Mapping[str, str], endpoints: Mapping[str, Aggregate], *, extra_total: Mapping[str, float],
              gauges: Mapping[str, float], gauge_peaks: Mapping[str, float], span: float) -> dict[str, float]:
    names = [n for n, r in roles.items() if r == "sql"]
    if not names:
        return {}
    out: dict[str, float] = {}
    every = Aggregate()

    def latency(prefix: str, agg: Aggregate, suffix: str = "") -> None:
        ls = summarize_histogram(agg.latency, agg.latency_sum)
        for f in _LATENCY:
            v = getattr(ls, f)
            if v is not None:
                out[f"{prefix}.{f}{suffix}"] = float(v)

    for name in names:
        agg = endpoints.get(name)
        rows = extra_total.get(f"sql.rows{{{name}}}", 0.0)
        out[f"sql.rows{{{name}}}"] = rows
        out["sql.rows"] = out.get("sql.rows", 0.0) + rows
        if agg is None:
            continue
        every.merge(agg)
        sfx = f"{{{name}}}"
        latency("sql", agg, sfx)
        out[f"sql.requests{sfx}"] = float(agg.requests)
        out[f"sql.errors{sfx}"] = float(agg.errors)
        if span:
            out[f"sql.rps{sfx}"] = agg.requests / span
        if agg.requests:
            out[f"sql.error_rate{sfx}"] = agg.errors / agg.requests
            out[f"sql.success_rate{sfx}"] = 1.0 - agg.errors / agg.requests
    latency("sql", every)
    out["sql.requests"] = float(every.requests)
    out["sql.errors"] = float(every.errors)
    if span:
        out["sql.rps"] = every.requests / span
    if every.requests:
        out["sql.error_rate"] = every.errors / every.requests
        out["sql.success_rate"] = 1.0 - every.errors / every.requests
    dbs = sorted({k.split(".")[1] for k in gauges if k.startswith("pool.") and k.endswith(".size")})
    worst_use, waited, acquires = None, 0.0, 0.0
    for db in dbs:
        size = gauges.get(f"pool.{db}.size", 0.0)
        if size:
            use = gauge_peaks.get(f"pool.{db}.in_use_peak", 0.0) / size
            out[f"sql.pool.utilization{{{db}}}"] = use
            worst_use = use if worst_use is None else max(worst_use, use)
        w = extra_total.get(f"sql.{db}.wait_ms", 0.0)
        n = extra_total.get(f"sql.{db}.acquires", 0.0)
        if n:
            out[f"sql.pool.wait.mean{{{db}}}"] = w / n
        waited += w
        acquires += n
    if worst_use is not None:
        out["sql.pool.utilization"] = worst_use
    if acquires:
        out["sql.pool.wait.mean"] = waited / acquires
    return out
