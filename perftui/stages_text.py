"""Text of the setup, teardown and benchmark records, for the headless summary (and anything
else that prints a session): the benchmark table has one row per operation, as a
micro-benchmark prints it (operation, samples, min, max, mean, median, p95, p99)."""

from __future__ import annotations

from perftui.session.stages import BenchmarkRecord, StageRecord
from perftui.summary import EndpointSummary
from perftui.units import format_ms

BENCH_COLUMNS = ("min", "max", "mean", "p50", "p95", "p99")
BENCH_HEADS = ("min", "max", "mean", "median", "p95", "p99")


def benchmark_rows(benchmark: list[BenchmarkRecord], endpoints: list[EndpointSummary]) -> list[tuple[str, EndpointSummary | None]]:
    """(operation, its summary) in plan order: every benchmarked scenario's endpoints."""
    by_name = {e.name: e for e in endpoints}
    rows: list[tuple[str, EndpointSummary | None]] = []
    for b in benchmark:
        for name in b.endpoints:
            rows.append((name, by_name.get(name)))
    return rows


def benchmark_lines(benchmark: list[BenchmarkRecord], endpoints: list[EndpointSummary]) -> list[str]:
    if not benchmark:
        return []
    width = max([len("operation"), *(min(40, len(n)) for n, _ in benchmark_rows(benchmark, endpoints))])
    head = f"{'operation':<{width}} {'samples':>8} {'errors':>7} " + " ".join(f"{h:>8}" for h in BENCH_HEADS)
    out = ["", "benchmark", head, "─" * len(head)]
    for name, e in benchmark_rows(benchmark, endpoints):
        if e is None:
            out.append(f"{name[:width]:<{width}} {0:>8} {0:>7} " + " ".join(f"{'-':>8}" for _ in BENCH_HEADS))
            continue
        lat = e.latency_ms
        out.append(f"{name[:width]:<{width}} {e.requests:>8,} {e.errors:>7,} "
                   + " ".join(f"{format_ms(getattr(lat, k)):>8}" for k in BENCH_COLUMNS))
    for b in benchmark:
        warm = f" after {b.warmed:,} warm-up (not counted)" if b.warmup_iterations else ""
        short = "" if b.measured >= b.iterations else f" — {b.iterations - b.measured:,} short of {b.iterations:,}"
        out.append(f"  {b.scenario}: {b.measured:,} measured iteration(s){warm}, {b.concurrency} at a time{short}")
    return out


def stage_line(name: str, record: StageRecord | None) -> list[str]:
    if record is None:
        return []
    reqs = sum(e.requests for e in record.endpoints)
    if record.ok:
        caps = f", captured {', '.join(record.captured)}" if record.captured else ""
        return [f"{name:<14} ok in {record.duration_s:g}s, {reqs} request(s){caps} (not in the figures above)"]
    return [f"{name:<14} FAILED after {record.duration_s:g}s: {record.message}"]


def stage_lines(setup: StageRecord | None, teardown: StageRecord | None) -> list[str]:
    return stage_line("setup", setup) + stage_line("teardown", teardown)


def bench_progress(benchmark: list[BenchmarkRecord], endpoints: dict, phase: int) -> str:
    """``samples 37/50`` for the headless line of benchmark phase ``phase`` (its first operation's
    samples so far; ``endpoints``: name -> Aggregate), "" when it is no benchmark phase."""
    rec = next((b for b in benchmark if b.phase == phase), None)
    if rec is None or not rec.endpoints:
        return ""
    agg = endpoints.get(rec.endpoints[0])
    done = agg.requests if agg is not None else 0
    return f"samples {done:,}/{rec.iterations:,}"
