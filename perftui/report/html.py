"""``perftui report SESSION --html FILE``: one self-contained HTML file from a session document.

Everything is inlined (styles, charts as SVG from ``perftui.report.svg``, one small script that
only marks how many charts the browser laid out), so the file opens offline and can be attached
to a ticket or a CI artifact. Called by ``perftui.report`` (the command and ``run --html``).
"""

from __future__ import annotations

import datetime as dt
from html import escape

from perftui.report.svg import line_chart

STYLE = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:960px;color:#0f172a}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #cbd5e1}
.meta{color:#475569} .cards{display:flex;gap:10px;flex-wrap:wrap;margin:14px 0}
.card{border:1px solid #cbd5e1;border-radius:6px;padding:8px 12px;min-width:96px}
.card b{display:block;font-size:18px} .card span{color:#475569;font-size:12px}
table{border-collapse:collapse;width:100%;margin:6px 0} th,td{padding:3px 8px;border-bottom:1px solid #e2e8f0;text-align:right}
th:first-child,td:first-child{text-align:left} th{background:#f8fafc}
.pass{color:#15803d;font-weight:600} .fail{color:#b91c1c;font-weight:600} .warn{color:#b45309}
svg.chart{display:block;margin:6px 0 14px;max-width:100%;height:auto}
svg .title{font-weight:600;font-size:13px} svg .legend{font-size:12px} svg text{font-size:11px;fill:#334155}
svg .ylabel{text-anchor:end} svg .xlabel{text-anchor:middle} svg .grid{stroke:#e2e8f0}
svg .frame{fill:none;stroke:#94a3b8} svg .mark{stroke:#7c3aed;stroke-dasharray:4 3} svg .phase-name{fill:#64748b}
"""

# Counts the charts the browser actually laid out (a polyline with a real bounding box): the
# report's own check, read by tests in headless Chromium and harmless to a reader.
SCRIPT = """
addEventListener('load',function(){var n=0;document.querySelectorAll('svg.chart').forEach(function(s){
var ok=false;s.querySelectorAll('polyline.series,circle.series').forEach(function(p){var b=p.getBBox();
if(b.width>0||b.height>0)ok=true});if(ok)n++});document.body.setAttribute('data-charts-drawn',String(n));
document.body.setAttribute('data-charts',String(document.querySelectorAll('svg.chart').length))});
"""


def _profile_html(doc: dict) -> str:
    """`` [stress]`` after the plan's name when the run used a profile (``--profile``)."""
    plan = doc.get("plan")
    profile = plan.get("profile") if isinstance(plan, dict) else None
    return f' <span class="meta">[profile {_e(profile)}]</span>' if profile else ""


def _e(v) -> str:
    return escape(str(v))


def _ms(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def _cards(cards: list[tuple[str, object]]) -> str:
    """A row of figures, each a value over its label."""
    return '<div class="cards">' + "".join(f"<div class=card><b>{_e(v)}</b><span>{_e(k)}</span></div>"
                                           for k, v in cards) + "</div>"


def _table(headers: list[str], rows: list[list], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _series(rows: list[dict], key: str) -> list[tuple[float, float | None]]:
    out = []
    for r in rows:
        v = r.get(key)
        out.append((float(r.get("t", 0.0)), float(v) if isinstance(v, (int, float)) else None))
    return out


def _monitor_series(rows: list[dict]) -> dict[str, list[tuple[float, float | None]]]:
    """Every number the monitor recorded per row (metrics, SUT, host; health latency), by name."""
    names: list[str] = []
    for r in rows:
        mon = r.get("monitor") or {}
        for group in ("metrics", "sut", "host"):
            for k, v in (mon.get(group) or {}).items():
                name = k if group == "metrics" else f"{group}.{k}"
                if isinstance(v, (int, float)) and name not in names:
                    names.append(name)
        for url, probe in (mon.get("health") or {}).items():
            name = f"health {url} latency_ms"
            if isinstance(probe, dict) and name not in names:
                names.append(name)
    out = {}
    for name in names:
        pts = []
        for r in rows:
            mon = r.get("monitor") or {}
            if name.startswith("health "):
                url = name[len("health "):-len(" latency_ms")]
                v = ((mon.get("health") or {}).get(url) or {}).get("latency_ms")
            elif "." in name and name.split(".", 1)[0] in ("sut", "host"):
                group, key = name.split(".", 1)
                v = (mon.get(group) or {}).get(key)
            else:
                v = (mon.get("metrics") or {}).get(name)
            pts.append((float(r.get("t", 0.0)), float(v) if isinstance(v, (int, float)) else None))
        out[name] = pts
    return out


def _flatten(prefix: str, value, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list):
        out.append((prefix, ", ".join(map(str, value))))
    else:
        out.append((prefix, "-" if value is None else (f"{value:.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value))))


def render(doc: dict, comparison: dict | None = None) -> str:
    rows = [r for r in doc.get("timeline") or [] if isinstance(r, dict)]
    t_max = max([float(doc.get("duration_s") or 0.0)] + [float(r.get("t", 0.0)) for r in rows])
    phases = [(float(p["start"]), float(p["end"] if p.get("end") is not None else t_max), str(p.get("name", "")))
              for p in doc.get("phases") or [] if isinstance(p, dict) and p.get("start") is not None]
    marks = [(float(e.get("t", 0.0)), f"{e.get('kind')}: {e.get('message')}") for e in doc.get("events") or []
             if isinstance(e, dict) and e.get("kind") in ("annotation", "pause", "resume", "skip", "rate", "vus",
                                                           "worker", "health", "generator", "limit")]
    s = doc.get("summary") or {}
    lat = s.get("latency_ms") or {}
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>perftui report · {_e(doc.get('plan_name'))} · {_e(doc.get('id'))}</title>",
             f"<style>{STYLE}</style></head><body>",
             f"<h1>{_e(doc.get('plan_name'))}{_profile_html(doc)}</h1>",
             f'<div class="meta">session {_e(doc.get("id"))} · target {_e(doc.get("target"))} · started '
             f'{_e(doc.get("started_at"))} · {float(doc.get("duration_s") or 0):.1f} s · {_e(doc.get("workers"))} worker(s) · '
             f'{_e(doc.get("end_reason"))}{" · <span class=warn>partial</span>" if doc.get("partial") else ""}'
             f'{" · <span class=warn>recovered</span>" if doc.get("recovered") else ""}</div>']
    cards = [("requests", s.get("requests", 0)), ("requests/s", f"{s.get('rps', 0.0):.1f}"),
             ("error rate", f"{(s.get('error_rate') or 0) * 100:.2f}%"), ("p50 ms", _ms(lat.get("p50"))),
             ("p95 ms", _ms(lat.get("p95"))), ("p99 ms", _ms(lat.get("p99"))), ("max ms", _ms(lat.get("max"))),
             ("late starts", s.get("late_starts", 0)), ("dropped", s.get("dropped", 0))]
    parts.append(_cards(cards))
    thresholds = doc.get("thresholds") or []
    if thresholds:
        parts.append("<h2>Thresholds</h2>")
        parts.append(_table(["threshold", "verdict", "value", "detail"], [
            [_e(t.get("expr")), '<span class=pass>pass</span>' if t.get("ok") else '<span class=fail>FAIL</span>',
             _e("-" if t.get("value") is None else f"{t['value']:g}"), _e(t.get("detail") or "")]
            for t in thresholds if isinstance(t, dict)]))
    slos = [x for x in doc.get("slos") or [] if isinstance(x, dict)]
    if slos:
        parts.append("<h2>SLOs</h2>")
        parts.append(_table(["SLO", "objective", "level", "SLI", "burn rate", "budget used", "alerts"], [
            [_e(x.get("name")), _e(f"{(x.get('objective') or 0) * 100:g}% {x.get('sli')}"
                                   + (f" on {x['endpoint']}" if x.get("endpoint") else "")),
             '<span class=pass>ok</span>' if x.get("level") == "ok" else f'<span class=fail>{_e(x.get("level"))}</span>',
             _e("-" if x.get("sli_value") is None else f"{x['sli_value'] * 100:.3f}%"),
             _e("-" if x.get("burn_rate") is None else f"{x['burn_rate']:.2f}×"),
             _e(f"{(x.get('budget_consumed') or 0) * 100:.0f}%"),
             _e(", ".join(f"{a.get('level')} at {a.get('at'):g}s" for a in x.get("alerts") or []))]
            for x in slos]))
    if isinstance(doc.get("find_limit"), dict):
        parts.append(_find_limit(doc["find_limit"]))
    if comparison is not None:
        parts.append(_comparison(comparison))
    parts.append("<h2>Over time</h2>")
    closed = any((r.get("target_vus") or 0) > 0 for r in rows)
    rate = [("achieved req/s", _series(rows, "rps")), ("started iterations/s", _series(rows, "started_rps"))]
    if any((r.get("target_rps") or 0) > 0 for r in rows):
        rate.insert(0, ("target/s", _series(rows, "target_rps")))
    chart = dict(t_max=t_max, phases=phases, marks=marks)
    parts.append(line_chart("Rate: target vs achieved", rate, unit="per second", **chart))
    parts.append(line_chart("Latency", [("p50", _series(rows, "p50_ms")), ("p95", _series(rows, "p95_ms")),
                                        ("p99", _series(rows, "p99_ms"))], unit="ms", **chart))
    parts.append(line_chart("Errors", [("errors", _series(rows, "errors")), ("dropped", _series(rows, "dropped")),
                                       ("late starts", _series(rows, "late_starts"))], unit="per row", **chart))
    parts.append(line_chart("Load in flight", [("in flight", _series(rows, "in_flight"))]
                            + ([("VUs", _series(rows, "vus")), ("target VUs", _series(rows, "target_vus"))] if closed else [])
                            + [("open connections", _series(rows, "open_connections"))], **chart))
    parts.append(line_chart("Generator", [("CPU % (workers)", _series(rows, "cpu_percent")),
                                          ("loop lag ms", _series(rows, "loop_lag_ms")),
                                          ("schedule lag ms", _series(rows, "schedule_lag_ms"))], **chart))
    monitored = _monitor_series(rows)
    if monitored:
        parts.append("<h2>Monitored system</h2>")
        for name, pts in list(monitored.items())[:16]:
            parts.append(line_chart(name, [(name, pts)], **chart))
    parts.append("<h2>Endpoints</h2>")
    eps = [e for e in doc.get("endpoints") or [] if isinstance(e, dict)]
    parts.append(_table(["endpoint", "protocol", "requests", "req/s", "errors", "error rate", "p50", "p95", "p99",
                         "max"], [
        [_e(e.get("name")), _e(e.get("protocol") or ""), e.get("requests", 0), f"{e.get('rps', 0.0):.1f}",
         e.get("errors", 0), f"{(e.get('error_rate') or 0) * 100:.2f}%",
         *[_ms((e.get("latency_ms") or {}).get(k)) for k in ("p50", "p95", "p99", "max")]] for e in eps]))
    parts.append("<h2>Errors</h2>")
    kinds = [[_e(k), n] for k, n in (s.get("error_kinds") or {}).items()]
    parts.append(_table(["error kind", "count"], kinds) if kinds else "<p>No errors.</p>")
    per_ep = [[_e(e.get("name")), _e(k), n] for e in eps for k, n in (e.get("error_kinds") or {}).items()]
    if per_ep:
        parts.append(_table(["endpoint", "error kind", "count"], per_ep))
    statuses = [[_e(k), n] for k, n in (s.get("status_codes") or {}).items()]
    if statuses:  # (none in a plan of SQL or WebSocket steps only)
        parts.append(_table(["status", "responses"], statuses))
    protocols = doc.get("protocols") if isinstance(doc.get("protocols"), dict) else {}
    if isinstance(protocols.get("sql"), dict):
        parts.append(_sql(protocols["sql"]))
    others = {k: v for k, v in protocols.items() if k != "sql"}
    if others:
        flat: list[tuple[str, str]] = []
        _flatten("", others, flat)
        parts.append("<h2>Protocols</h2>")
        parts.append(_table(["figure", "value"], [[_e(k), _e(v)] for k, v in flat]))
    warnings = doc.get("generator_warnings") or []
    if warnings:
        parts.append("<h2>Generator warnings</h2>")
        parts.append(_table(["from s", "to s", "reason"], [[f"{w.get('start', 0):.0f}", f"{w.get('end', 0):.0f}",
                                                            _e(w.get("reason"))] for w in warnings]))
    parts.append("<h2>Events</h2>")
    parts.append(_table(["t s", "kind", "message"], [[f"{e.get('t', 0):.1f}", _e(e.get("kind")), _e(e.get("message"))]
                                                    for e in (doc.get("events") or [])[:500] if isinstance(e, dict)]))
    parts.append(f'<p class="meta">perftui {_e(doc.get("perftui_version"))} · report written '
                 f'{dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}</p>')
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)


def _sql(sql: dict) -> str:
    """The SQL steps (``protocols.sql``): statements, rows, latency, errors by kind, and each
    database's connection pool (how full it got, who waited for it)."""
    lat = sql.get("latency_ms") or {}
    cards = [("statements", f"{sql.get('statements', 0):,}"), ("statements/s", f"{sql.get('rps') or 0:,.1f}"),
             ("error rate", f"{(sql.get('error_rate') or 0) * 100:.2f}%"), ("rows", f"{sql.get('rows', 0):,}"),
             ("rows/s", f"{sql.get('rows_per_s') or 0:,.1f}"), ("p50 ms", _ms(lat.get("p50"))),
             ("p95 ms", _ms(lat.get("p95"))), ("p99 ms", _ms(lat.get("p99")))]
    out = ["<h2>SQL</h2>", _cards(cards)]
    dbs = sql.get("databases") or {}
    if isinstance(dbs, dict) and dbs:
        out.append(_table(["database", "pool", "peak in use", "utilization", "open at the end", "waited",
                           "mean wait ms", "connects", "connect failures"], [
            [_e(name), d.get("size", 0), d.get("peak_in_use", 0),
             "-" if d.get("utilization") is None else f"{d['utilization'] * 100:.0f}%", d.get("open", 0),
             d.get("waits", 0), _ms(d.get("wait_ms_mean")), d.get("connects", 0), d.get("connect_failures", 0)]
            for name, d in dbs.items() if isinstance(d, dict)]))
    kinds = sql.get("error_kinds") or {}
    if kinds:
        out.append(_table(["SQL error kind", "count"], [[_e(k), n] for k, n in kinds.items()]))
    return "\n".join(out)


def _find_limit(fl: dict) -> str:
    """A breaking-point search: the verdict, then one row per step (and per drop after a break)."""
    mark = '<span class=pass>limit found</span>' if fl.get("found") else '<span class=fail>no limit found</span>'
    out = ["<h2>Breaking point</h2>", f"<p>{mark} · {_e(fl.get('verdict') or '')}</p>",
           f"<p class=meta>a step breaks on: {_e(', '.join(fl.get('criteria') or []))}</p>"]
    rows = []
    for st in fl.get("steps") or []:
        if not isinstance(st, dict):
            continue
        verdict = st.get("verdict", "")
        cls = {"held": "pass", "broke": "fail", "generator-limited": "warn"}.get(verdict, "")
        detail = "; ".join(st.get("broke") or []) if verdict == "broke" else (st.get("note") or "")
        rows.append([st.get("index", 0) + 1, _e(st.get("stage", "")), f"{st.get('rate', 0):g}",
                     f"{st.get('started_rps', 0):.1f}", f"{st.get('rps', 0):.1f}", _ms(st.get("p50_ms")),
                     _ms(st.get("p95_ms")), _ms(st.get("p99_ms")), f"{(st.get('error_rate') or 0) * 100:.2f}%",
                     f"{(st.get('late_rate') or 0) * 100:.2f}%", f'<span class="{cls}">{_e(verdict)}</span> {_e(detail)}'])
        rec = st.get("recovery")
        if isinstance(rec, dict):
            what = ("recovered in {:g} s".format(rec.get("seconds") or 0) if rec.get("recovered")
                    else "not recovered" if rec.get("recovered") is False else "watching")
            rows.append(["", "drop", f"{rec.get('rate', 0):g}", "", "", "", "", "", "", "",
                         _e(f"{what} ({rec.get('watched_s', 0):.0f} s watched)")])
    out.append(_table(["step", "stage", "asked/s", "started/s", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors",
                       "late", "verdict"], rows))
    return "".join(out)


def _comparison(cmp: dict) -> str:
    b = cmp.get("baseline") or {}
    head = (f"<h2>Compared with baseline {_e(b.get('id'))}</h2><p>verdict: "
            + ('<span class=fail>FAIL</span>' if cmp.get("failed") else '<span class=pass>ok</span>')
            + f" · worst regression: {_e(cmp.get('worst'))} · fails on {_e(cmp.get('fail_on'))} · "
              f"~ = not significant (p &gt; {_e(cmp.get('alpha'))}, or a change against its test's direction)</p>")
    rows = []
    for r in cmp.get("rows") or []:
        change = "" if r.get("change_pct") is None else ("~" if not r.get("significant") else f"{r['change_pct']:+.1f}%")
        p = "" if r.get("p") is None else (f"{r['p']:.3f}" if r["p"] >= 0.001 else "&lt;0.001")
        verdict = (r.get("note") or "") if r.get("level") == "none" else f"{r.get('direction')}, {r.get('level')}"
        cls = "fail" if r.get("direction") == "worse" and r.get("level") != "none" else ""
        fmt = (lambda v: "-" if v is None else f"{v * 100:.2f}%") if r.get("metric") == "error_rate" else \
              (lambda v: "-" if v is None else f"{v:.1f}")
        rows.append([_e(r.get("scope")), _e(r.get("metric")), fmt(r.get("baseline")), fmt(r.get("current")), change, p,
                     f'<span class="{cls}">{_e(verdict)}</span>'])
    return head + _table(["scope", "metric", "baseline", "current", "change", "p", "verdict"], rows)
