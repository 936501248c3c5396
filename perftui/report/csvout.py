"""``--csv DIR``: the run as CSV files, like Locust's ``--csv``: ``stats.csv`` (one row per endpoint
and an ``Aggregated`` row), ``history.csv`` (one row per timeline row), ``endpoint_history.csv``
(one row per endpoint per timeline row), ``errors.csv`` (error kinds and status codes per
endpoint). Called by ``perftui.report``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

STATS = ["Type", "Name", "Request Count", "Failure Count", "Requests/s", "Failures/s", "Error Rate",
         "Min Response Time", "Average Response Time", "Median Response Time", "90%", "95%", "99%", "99.9%",
         "Max Response Time", "Late Starts", "Dropped", "Total Content Size"]
HISTORY = ["t", "phase", "target_rps", "target_vus", "started_rps", "rps", "requests", "errors", "error_rate",
           "p50_ms", "p95_ms", "p99_ms", "late_starts", "dropped", "in_flight", "vus", "open_connections",
           "queued", "cpu_percent", "rss_mb", "loop_lag_ms", "schedule_lag_ms", "stalls", "generator_limited"]

ENDPOINT_HISTORY = ["t", "endpoint", "requests", "rps", "errors", "error_rate", "p50_ms", "p95_ms", "p99_ms"]


def _endpoint_history(rows: list[dict]) -> list[list]:
    """The timeline rows' per-endpoint points (``[requests, errors, p50, p95, p99]``, schema 2);
    an endpoint's rate is its share of the row's."""
    out = []
    for r in rows:
        points = r.get("endpoints")
        if not isinstance(points, dict):
            continue
        total = r.get("requests") or 0
        for name, p in points.items():
            if not isinstance(p, list) or len(p) < 5:
                continue
            requests, errors = p[0] or 0, p[1] or 0
            rps = round(float(r.get("rps") or 0) * requests / total, 3) if total else 0.0
            out.append([r.get("t"), name, requests, rps, errors, round(errors / requests, 6) if requests else 0.0,
                        *p[2:5]])
    return out


def _stats_row(kind: str, name: str, s: dict) -> list:
    lat = s.get("latency_ms") or {}
    duration = float(s.get("duration_s") or 0) or 1.0
    return [kind, name, s.get("requests", 0), s.get("errors", 0), round(float(s.get("rps") or 0), 3),
            round((s.get("errors") or 0) / duration, 3), round(float(s.get("error_rate") or 0), 6),
            *[lat.get(k) for k in ("min", "mean", "p50", "p90", "p95", "p99", "p999", "max")],
            s.get("late_starts", 0), s.get("dropped", 0), s.get("bytes_received", 0)]


def render(doc: dict) -> dict[str, str]:
    """File name → CSV text."""
    def table(header: list[str], rows: list[list]) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows([["" if v is None else v for v in row] for row in rows])
        return buf.getvalue()

    eps = [e for e in doc.get("endpoints") or [] if isinstance(e, dict)]
    stats = [_stats_row(e.get("protocol") or "", str(e.get("name")), e) for e in eps]
    stats.append(_stats_row("", "Aggregated", doc.get("summary") or {}))
    rows = [r for r in doc.get("timeline") or [] if isinstance(r, dict)]
    history = [[r.get(k) for k in HISTORY] for r in rows]
    errors = []
    for e in eps:
        errors += [[e.get("name"), "error_kind", k, n] for k, n in (e.get("error_kinds") or {}).items()]
        errors += [[e.get("name"), "status", k, n] for k, n in (e.get("status_codes") or {}).items()]
    return {"stats.csv": table(STATS, stats), "history.csv": table(HISTORY, history),
            "endpoint_history.csv": table(ENDPOINT_HISTORY, _endpoint_history(rows)),
            "errors.csv": table(["Name", "What", "Value", "Count"], errors)}


def write(doc: dict, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render(doc).items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
