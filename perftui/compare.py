"""``perftui compare BASELINE CURRENT``: two session documents side by side, each change classified.

Called by the CLI (``perftui compare``, ``perftui run --baseline``) and by the reports. Reads the
documents as plain JSON (any schema up to this perftui's), so files written by older versions
compare too. Which differences are changes and which are noise is decided by the rank tests of
``perftui.stats_compare``:

* run-wide p50/p95/p99, requests/s and error rate: a Mann-Whitney U test over the two runs'
  per-second series (the timeline rows), the seconds being the samples;
* an endpoint's p50/p95/p99, requests/s and error rate: the same test over its own per-second
  series, from the timeline rows' points (documents of schema 2);
* mean and max, and an endpoint's latency figures where its documents have no points (schema 1):
  the rank effect over the two runs' HDR histograms (bucket counts, ties averaged), judged with
  the runs' second counts as sample sizes (``rank_test_clustered``);
* an endpoint's requests/s and error rate without points: shown, not tested;
* two benchmark sessions (``benchmark`` in both): the run's and each endpoint's latency figures
  are tested over their histograms with the measured requests, not the seconds, as the sample
  sizes (the samples were taken one after another, not as an open stream); their requests/s
  depend on the order the samples were taken in and are not tested, and a max is one sample of
  each run: shown, never judged.

A change with p > alpha (0.05) is printed ``~`` and classified ``none``, whatever its size:
benchstat's convention. So is a change against the direction its test found (a max up in a run
whose requests, the histogram test says, got faster): the test is no evidence for it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from perftui.errors import UserError
from perftui.session import SCHEMA_VERSION
from perftui.session.endpoint_points import ENDPOINTS_PER_ROW, EndpointPoint
from perftui.stats_compare import RankResult, histogram_counts, mann_whitney, rank_test_clustered
from perftui.units import printable

LEVELS = ("none", "minor", "major", "critical")
DEFAULT_LEVELS = (10.0, 20.0, 50.0)
ALPHA = 0.05
# Error rates are compared against at least 1 %: going from 0 to 0.01 % errors is a change worth
# seeing, not an infinitely large one.
ERROR_RATE_FLOOR = 0.01
# Latency differences under 1 ms are below what a load test over a network can attribute to the
# server (loop scheduling, timer granularity): shown, never classified. ``--min-change-ms``.
MIN_CHANGE_MS = 1.0

# metric name, label, higher is worse
METRICS = (
    ("p50", "p50 ms", True),
    ("p95", "p95 ms", True),
    ("p99", "p99 ms", True),
    ("mean", "mean ms", True),
    ("max", "max ms", True),
    ("rps", "requests/s", False),
    ("error_rate", "error rate", True),
)


def load_document(path: str | Path) -> dict:
    """A session document read from ``path``; UserError (exit 2) naming the file when it is not
    readable, not JSON, not a perftui session, or written by a newer schema."""
    p = Path(path)
    if p.is_dir():
        p = p / "session.json"
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise UserError(f"{p}: cannot read: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{p}: not a session document: not JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("schema_version"), int) \
            or not isinstance(doc.get("summary"), dict):
        raise UserError(f"{p}: not a perftui session document (expected an object with schema_version and summary)")
    if doc["schema_version"] > SCHEMA_VERSION:
        raise UserError(f"{p}: written by a newer perftui (schema_version {doc['schema_version']}); "
                        f"this perftui reads schema_version up to {SCHEMA_VERSION}")
    for key in ("endpoints", "timeline"):
        if not isinstance(doc.get(key, []), list):
            raise UserError(f"{p}: {key} must be a list, got {type(doc[key]).__name__}")
    doc["_path"] = str(p)
    return doc


def parse_levels(text: str) -> tuple[float, float, float]:
    """``"10,20,50"`` → (10, 20, 50): the minor, major, critical change sizes in %."""
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"expected three percentages like 10,20,50, got {text!r}") from None
    if len(values) != 3 or not all(v > 0 for v in values) or not values[0] < values[1] < values[2]:
        raise ValueError(f"expected three increasing positive percentages like 10,20,50, got {text!r}")
    return values  # type: ignore[return-value]


@dataclass
class Row:
    scope: str  # "run" or the endpoint name
    metric: str
    baseline: float | None
    current: float | None
    change_pct: float | None = None
    p: float | None = None
    test: str = ""  # "seconds" (per-second series), "histogram" or "" (not tested)
    # the test's rank effect: the probability that a current sample is larger than a baseline one
    effect: float | None = None
    significant: bool = True
    direction: str = "same"  # worse / better / same
    level: str = "none"
    note: str = ""  # why a change with a low p is not one ("its test found the samples smaller")

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in self.__dict__.items()}


@dataclass
class Comparison:
    baseline: dict
    current: dict
    levels: tuple[float, float, float]
    fail_on: str
    alpha: float
    min_change_ms: float = MIN_CHANGE_MS
    rows: list[Row] = field(default_factory=list)
    only_in_baseline: list[str] = field(default_factory=list)
    only_in_current: list[str] = field(default_factory=list)

    @property
    def worst(self) -> str:
        worse = [LEVELS.index(r.level) for r in self.rows if r.direction == "worse"]
        return LEVELS[max(worse)] if worse else "none"

    @property
    def failed(self) -> bool:
        return self.fail_on in LEVELS[1:] and LEVELS.index(self.worst) >= LEVELS.index(self.fail_on)

    def as_dict(self) -> dict:
        def who(doc: dict) -> dict:
            return {"file": doc.get("_path"), "id": doc.get("id"), "plan_name": doc.get("plan_name"),
                    "started_at": doc.get("started_at"), "duration_s": doc.get("duration_s")}

        return {"baseline": who(self.baseline), "current": who(self.current),
                "levels_pct": dict(zip(LEVELS[1:], self.levels)), "alpha": self.alpha,
                "min_change_ms": self.min_change_ms, "fail_on": self.fail_on,
                "worst": self.worst, "failed": self.failed, "rows": [r.as_dict() for r in self.rows],
                "only_in_baseline": self.only_in_baseline, "only_in_current": self.only_in_current}


def _value(stats: dict, metric: str) -> float | None:
    if metric in ("rps", "error_rate"):
        v = stats.get(metric)
    else:
        v = (stats.get("latency_ms") or {}).get(metric)
    return float(v) if isinstance(v, (int, float)) else None


def _series(doc: dict, key: str) -> list[float]:
    out = []
    for row in doc.get("timeline") or []:
        if not isinstance(row, dict):
            continue
        if key != "rps" and not row.get("requests"):
            continue  # a second with nothing completed says nothing about latency or errors (its rps, 0, counts)
        v = row.get(key)
        if isinstance(v, (int, float)):
            out.append(float(v))
    return out


def _endpoint_series(doc: dict, name: str, metric: str) -> list[float]:
    """An endpoint's per-second series from the timeline rows' points (schema 2): its p50/p95/p99
    in the seconds it completed requests, its requests/s and error rate. A row without the
    endpoint counts as a second without its requests, unless the row is full (it keeps only its
    busiest endpoints: then the second is unknown and left out)."""
    out, before = [], 0.0
    for row in doc.get("timeline") or []:
        if not isinstance(row, dict) or not isinstance(row.get("t"), (int, float)):
            continue
        span, before = row["t"] - before, row["t"]
        points = row.get("endpoints")
        if not isinstance(points, dict):
            continue  # a version 1 row: no points at all
        try:
            point = msgspec.convert(points[name], EndpointPoint)
        except (KeyError, msgspec.ValidationError):
            if len(points) < ENDPOINTS_PER_ROW and metric == "rps" and span > 0:
                out.append(0.0)
            continue
        if metric == "rps":
            if span > 0:
                out.append(point.requests / span)
        elif not point.requests:
            continue  # a second with nothing completed says nothing about its latency or errors
        elif metric == "error_rate":
            out.append(point.errors / point.requests)
        elif (value := getattr(point, f"{metric}_ms")) is not None:
            out.append(float(value))
    return out


def _seconds(doc: dict) -> int:
    return sum(1 for row in doc.get("timeline") or [] if isinstance(row, dict) and row.get("requests"))


def _samples(endpoint: dict) -> int:
    n = endpoint.get("requests")
    return int(n) if isinstance(n, int) else 0


def _histogram(doc: dict, holder: dict, what: str) -> dict[float, int]:
    try:
        return histogram_counts(holder.get("histogram"))
    except ValueError as exc:
        raise UserError(f"{doc['_path']}: {what} histogram: {exc}") from None


def _classify(row: Row, higher_worse: bool, levels: tuple[float, float, float], alpha: float,
              min_ms: float) -> None:
    b, c = row.baseline, row.current
    if b is None or c is None:
        return
    denominator = max(b, ERROR_RATE_FLOOR) if row.metric == "error_rate" else b
    if denominator > 0:
        row.change_pct = (c - b) / denominator * 100.0
    else:
        row.change_pct = 0.0 if c == b else math.inf
    row.significant = row.p is None or row.p <= alpha
    if row.significant and _against_its_test(row):
        row.significant = False  # the test found the other direction: no evidence for this change
        row.note = f"its test found the samples {'larger' if row.effect > 0.5 else 'smaller'}"
    if row.metric not in ("rps", "error_rate") and abs(c - b) < min_ms:
        return
    if row.change_pct == 0 or not row.significant:
        return  # direction "same", level "none"
    row.direction = "worse" if (row.change_pct > 0) == higher_worse else "better"
    size = abs(row.change_pct)
    for name, bound in zip(LEVELS[1:], levels):
        if size >= bound:
            row.level = name


def _against_its_test(row: Row) -> bool:
    """True when the figure moved one way and its test found the other: a run's max went up while
    its distribution, the histogram test says, moved down (one slow request in a faster run)."""
    if row.effect is None or row.effect == 0.5 or row.baseline is None or row.current is None:
        return False
    return row.current != row.baseline and (row.current > row.baseline) != (row.effect > 0.5)


def _shown_only(row: Row) -> None:
    """A figure shown with its change but neither tested nor classified."""
    row.p, row.test, row.effect = None, "", None
    if row.baseline and row.current is not None:
        row.change_pct = (row.current - row.baseline) / row.baseline * 100.0


def _tested(row: Row, result: RankResult | None, test: str) -> None:
    if result is not None and result.p is not None:
        row.p, row.test, row.effect = result.p, test, result.effect


def compare(baseline: dict, current: dict, *, levels: tuple[float, float, float] = DEFAULT_LEVELS,
            fail_on: str = "major", alpha: float = ALPHA, min_change_ms: float = MIN_CHANGE_MS) -> Comparison:
    out = Comparison(baseline, current, levels, fail_on, alpha, min_change_ms)
    sec_b, sec_c = _seconds(baseline), _seconds(current)
    # Two benchmark runs: an operation's samples were taken one after another (or at a set
    # concurrency), not by an open stream of seconds, so they are the independent samples.
    bench = bool(baseline.get("benchmark")) and bool(current.get("benchmark"))
    hist_b, hist_c = _histogram(baseline, baseline, "overall"), _histogram(current, current, "overall")
    series_key = {"p50": "p50_ms", "p95": "p95_ms", "p99": "p99_ms", "rps": "rps", "error_rate": "error_rate"}
    for metric, _, higher_worse in METRICS:
        row = Row("run", metric, _value(baseline["summary"], metric), _value(current["summary"], metric))
        if bench and metric not in ("rps", "error_rate"):
            if hist_b and hist_c:  # every sample against every other
                _tested(row, rank_test_clustered(hist_b, hist_c, _samples(baseline["summary"]),
                                                 _samples(current["summary"])), "histogram")
        elif metric in series_key:
            _tested(row, mann_whitney(_series(baseline, series_key[metric]), _series(current, series_key[metric])),
                    "seconds")
        if row.test == "" and metric not in ("rps", "error_rate") and hist_b and hist_c and not bench:
            _tested(row, rank_test_clustered(hist_b, hist_c, sec_b, sec_c), "histogram")
        if bench and metric == "max":
            _shown_only(row)  # one sample of each run: shown, never judged
        else:
            _classify(row, higher_worse, levels, alpha, min_change_ms)
        out.rows.append(row)

    def by_name(doc: dict) -> dict[str, dict]:
        return {str(e.get("name")): e for e in doc.get("endpoints") or [] if isinstance(e, dict)}

    eb, ec = by_name(baseline), by_name(current)
    out.only_in_baseline = [n for n in eb if n not in ec]
    out.only_in_current = [n for n in ec if n not in eb]
    for name in [n for n in ec if n in eb]:
        hb = _histogram(baseline, eb[name], f"endpoint {name!r}")
        hc = _histogram(current, ec[name], f"endpoint {name!r}")
        n_b, n_c = (_samples(eb[name]), _samples(ec[name])) if bench else (sec_b, sec_c)
        test = rank_test_clustered(hb, hc, n_b, n_c) if hb and hc else None
        for metric, _, higher_worse in METRICS:
            row = Row(name, metric, _value(eb[name], metric), _value(ec[name], metric))
            if metric in series_key and not bench:  # its own seconds, where the documents keep them
                _tested(row, mann_whitney(_endpoint_series(baseline, name, metric),
                                          _endpoint_series(current, name, metric)), "seconds")
            if row.test == "" and metric not in ("rps", "error_rate"):
                _tested(row, test, "histogram")
            if bench and metric == "max":
                _shown_only(row)  # one sample of each run: shown, never judged
            else:
                _classify(row, higher_worse, levels, alpha, min_change_ms)
            out.rows.append(row)
    return out


def _num(v: float | None, metric: str) -> str:
    if v is None:
        return "-"
    if metric == "error_rate":
        return f"{v * 100:.2f}%"
    return f"{v:.1f}" if abs(v) < 1000 else f"{v:.0f}"


def _change(r: Row) -> str:
    if r.change_pct is None:
        return ""
    if not r.significant:
        return "~"
    if math.isinf(r.change_pct):
        return "new"
    return f"{r.change_pct:+.1f}%"


def _p(r: Row) -> str:
    if r.p is None:
        return "" if r.change_pct is None else "n/a"
    return f"p={r.p:.3f}" if r.p >= 0.001 else "p<0.001"


def format_text(cmp: Comparison) -> str:
    b, c = cmp.baseline, cmp.current

    def profile(doc: dict) -> str:
        plan = doc.get("plan")
        return str(plan.get("profile") or "") if isinstance(plan, dict) else ""

    def who(doc: dict) -> str:
        shown = f" [{profile(doc)}]" if profile(doc) else ""
        return f"{doc.get('id') or '?'} ({doc.get('plan_name') or '?'}{shown}, {doc.get('duration_s') or 0:.0f}s)"

    lines = [printable(f"baseline  {who(b)}  {b['_path']}"), printable(f"current   {who(c)}  {c['_path']}"), ""]
    if profile(b) != profile(c):  # a light run against a stress run: the numbers differ by design
        lines.insert(2, printable(f"note: the runs used different profiles ({profile(b) or 'none'} and"
                                  f" {profile(c) or 'none'}); their load was not the same"))
    labels = {m: label for m, label, _ in METRICS}
    header = f"  {'':<12} {'baseline':>10} {'current':>10} {'change':>9} {'':>8}  verdict"
    scope = None
    for r in cmp.rows:
        if r.scope != scope:
            scope = r.scope
            lines.append(printable("run (all requests)" if scope == "run" else f"endpoint {scope}"))
            lines.append(header)
        verdict = "" if r.level == "none" else f"{r.direction}, {r.level}" + ("" if r.p is not None else " (untested)")
        verdict = verdict or r.note
        lines.append(f"  {labels[r.metric]:<12} {_num(r.baseline, r.metric):>10} {_num(r.current, r.metric):>10} "
                     f"{_change(r):>9} {_p(r):>8}  {verdict}".rstrip())
    for name in cmp.only_in_baseline:
        lines.append(printable(f"endpoint {name}: only in the baseline"))
    for name in cmp.only_in_current:
        lines.append(printable(f"endpoint {name}: only in the current run"))
    levels = ", ".join(f"{n} ≥ {v:g}%" for n, v in zip(LEVELS[1:], cmp.levels))
    lines += ["", f"~: no significant difference (p > {cmp.alpha:g}, or a change against its test's direction); {levels}; "
              f"latency changes under {cmp.min_change_ms:g} ms are not classified",
              f"verdict: {'FAIL' if cmp.failed else 'ok'} — worst regression: {cmp.worst} "
              f"(fails on: {cmp.fail_on})"]
    return "\n".join(lines)
