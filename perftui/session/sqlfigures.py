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

from perftui.aggregate import Aggregate, summarize_histogram

__all__ = ["sql_extra"]

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
            use = gauge_peaks.get(f"pool.{db}.in_use", 0.0) / size
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
