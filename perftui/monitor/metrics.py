"""Metric selection: Prometheus selectors, series extraction from a scrape, counter rates.

``parse_selector`` is also what the plan loader calls to check ``[monitor].series`` (this module
imports prometheus-client only when a scrape is actually parsed). A selector is a metric name
with optional label matchers, as in PromQL::

    demo_http_requests_total{route="/api/users", status=~"5.."}

Samples that match are summed over every label the selector does not pin down. Prometheus text
is parsed with ``prometheus_client.parser.text_string_to_metric_families``; JSON documents are
read with ``perftui.jsonpath`` paths. Counters become per-second rates between two scrapes (a
counter that went down was reset: its new value is the increase).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from perftui.jsonpath import MISSING, compile_path
from perftui.monitor.model import SeriesInfo

__all__ = ["Selector", "SeriesSpec", "Scrape", "SeriesReader", "parse_selector", "default_series"]

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPES = {"n": "\n", "\\": "\\", '"': '"', "t": "\t"}


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str
    regex: re.Pattern | None = None

    def ok(self, labels: dict[str, str]) -> bool:
        v = labels.get(self.label, "")
        if self.op == "=":
            return v == self.value
        if self.op == "!=":
            return v != self.value
        hit = self.regex.fullmatch(v) is not None  # PromQL regexes are anchored
        return hit if self.op == "=~" else not hit


@dataclass(frozen=True)
class Selector:
    name: str
    matchers: tuple[Matcher, ...] = ()
    text: str = ""

    def matches(self, labels: dict[str, str]) -> bool:
        return all(m.ok(labels) for m in self.matchers)


def parse_selector(text: str) -> Selector:
    """``name{label="v", other!~"re"}`` -> Selector; raises ValueError saying what is wrong."""
    s = text.strip()
    m = _NAME.match(s)
    if not m:
        raise ValueError(f"expected a metric name (letters, digits, _ and :) at the start of {text!r},"
                         f' e.g. process_resident_memory_bytes or demo_http_requests_total{{route="/api/users"}}')
    name = m.group()
    pos = m.end()
    matchers: list[Matcher] = []
    rest = s[pos:].strip()
    if rest:
        if not rest.startswith("{"):
            raise ValueError(f"{text!r}: expected {{label=\"value\", ...}} after the metric name, got {rest[:20]!r}")
        if not rest.endswith("}"):
            raise ValueError(f"{text!r}: the label matchers are not closed with }}")
        body = rest[1:-1]
        i = 0
        while i < len(body):
            if not body[i:].strip():
                break
            lm = _LABEL.match(body, i)
            if not lm:
                raise ValueError(f"{text!r}: expected label=\"value\" (or !=, =~, !~) at {body[i:i + 20].strip()!r}")
            label, op = lm.group(1), lm.group(2)
            sm = _STRING.match(body, lm.end())
            if not sm:
                raise ValueError(f"{text!r}: the value of {label} must be in double quotes, e.g. {label}=\"x\"")
            value = re.sub(r"\\(.)", lambda e: _ESCAPES.get(e.group(1), "\\" + e.group(1)), sm.group(1))
            regex = None
            if op in ("=~", "!~"):
                try:
                    regex = re.compile(value)
                except re.error as e:
                    raise ValueError(f"{text!r}: invalid regular expression for {label}: {e}") from None
            matchers.append(Matcher(label, op, value, regex))
            i = sm.end()
            while i < len(body) and body[i] in " \t":
                i += 1
            if i < len(body):
                if body[i] != ",":
                    raise ValueError(f"{text!r}: expected , between label matchers at {body[i:i + 20]!r}")
                i += 1
    return Selector(name, tuple(matchers), s)


@dataclass
class SeriesSpec:
    """One series to read from each scrape (a resolved ``[monitor].series`` entry)."""

    name: str
    selector: Selector | None = None
    json: Any = None
    """A compiled ``perftui.jsonpath.JsonPath``."""
    rate: bool | None = None
    """None: decided by the metric type (counters -> rate)."""
    scale: float = 1.0
    quantile: float | None = None
    default: bool = False
    source: str = ""

    def info(self, kind: str) -> SeriesInfo:
        return SeriesInfo(name=self.name, source=self.source, kind=kind, scale=self.scale,
                          quantile=self.quantile, default=self.default)


# ---- one scrape, indexed ---------------------------------------------------------------------


_COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")


@dataclass
class Scrape:
    """A parsed Prometheus exposition: sample name -> [(labels, value, is_counter)], plus the
    family types (for default series)."""

    samples: dict[str, list[tuple[dict[str, str], float, bool]]] = field(default_factory=dict)
    families: dict[str, str] = field(default_factory=dict)
    """Family name -> type (counter, gauge, histogram, summary, untyped, ...)."""

    @classmethod
    def parse(cls, text: str) -> Scrape:
        from prometheus_client.parser import text_string_to_metric_families

        out = cls()
        for fam in text_string_to_metric_families(text):
            out.families[fam.name] = fam.type
            for s in fam.samples:
                if fam.type == "counter":
                    counter = s.name.endswith("_total")
                elif fam.type in ("histogram", "summary"):
                    counter = s.name.endswith(("_count", "_sum", "_bucket"))
                elif fam.type in ("untyped", "unknown"):
                    counter = s.name.endswith("_total")
                else:
                    counter = False
                out.samples.setdefault(s.name, []).append((s.labels, float(s.value), counter))
        return out

    def select(self, sel: Selector) -> tuple[float, bool] | None:
        """Sum of the matching samples and whether they are counters; None if the metric is not
        in the exposition at all. A metric whose labels all fail the matchers sums to 0 (no 5xx
        yet is zero 5xx per second, not a missing series)."""
        rows = self.samples.get(sel.name)
        if rows is None and self.families.get(sel.name) == "counter":
            rows = self.samples.get(sel.name + "_total")  # "demo_http_requests" names the counter too
        if not rows:
            # a labelled metric with no children yet still has its HELP/TYPE lines
            for suffix in ("", "_total", "_count", "_sum", "_bucket"):
                if suffix and not sel.name.endswith(suffix):
                    continue
                kind = self.families.get(sel.name[: len(sel.name) - len(suffix)] if suffix else sel.name)
                if kind is not None:
                    return 0.0, kind == "counter" or (kind in ("histogram", "summary") and bool(suffix))
            return None
        total, counter = 0.0, any(is_counter for _, _, is_counter in rows)
        for labels, value, _ in rows:
            if sel.matches(labels) and not math.isnan(value):
                total += value
        return total, counter

    def buckets(self, sel: Selector) -> dict[float, float] | None:
        """Cumulative bucket counts (summed over matching series) by upper bound, for a histogram."""
        rows = self.samples.get(sel.name + "_bucket")
        if not rows:
            return None
        out: dict[float, float] = {}
        for labels, value, _ in rows:
            if "le" not in labels or not sel.matches(labels):
                continue
            le = float(labels["le"])
            out[le] = out.get(le, 0.0) + value
        return out or None


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """PromQL's ``histogram_quantile`` over cumulative bucket counts (here: increases)."""
    bounds = sorted(buckets)
    if not bounds or bounds[-1] != math.inf:
        return None
    total = buckets[math.inf]
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for b in bounds:
        c = buckets[b]
        if c >= rank:
            if b == math.inf:
                return prev_bound if len(bounds) > 1 else None
            if c == prev_count:
                return b
            lower = prev_bound if (prev_bound > 0 or b <= 0) else 0.0
            return lower + (b - lower) * (rank - prev_count) / (c - prev_count)
        prev_bound, prev_count = b, c
    return None


# ---- defaults --------------------------------------------------------------------------------

_BUSY_GAUGE = re.compile(r"in_?flight|in_progress|inprogress|active|connections|sessions|concurrent|queue|pending|waiting|busy")
_REQUEST_COUNTER = re.compile(r"(^|_)requests$")
MAX_DEFAULT_GAUGES = 6


def default_series(scrape: Scrape) -> list[SeriesSpec]:
    """Series charted when the plan names none: process CPU %, RSS, open fds, request rates and
    request/connection gauges, whichever the exposition has."""
    specs: list[SeriesSpec] = []

    def add(name: str, selector: str, *, rate: bool | None = None, scale: float = 1.0) -> None:
        specs.append(SeriesSpec(name=name, selector=parse_selector(selector), rate=rate, scale=scale,
                                default=True, source=selector))

    if "process_cpu_seconds_total" in scrape.samples:
        add("process_cpu_percent", "process_cpu_seconds_total", rate=True, scale=100.0)
    if "process_resident_memory_bytes" in scrape.samples:
        add("process_rss_mb", "process_resident_memory_bytes", scale=1 / 2**20)
    if "process_open_fds" in scrape.samples:
        add("process_open_fds", "process_open_fds")
    for fam, kind in scrape.families.items():
        if kind == "counter" and _REQUEST_COUNTER.search(fam):
            add(f"{fam}_total", f"{fam}_total", rate=True)
    gauges = 0
    for fam, kind in scrape.families.items():
        if kind != "gauge" or fam.startswith(("process_", "go_", "python_")) or not _BUSY_GAUGE.search(fam):
            continue
        if gauges >= MAX_DEFAULT_GAUGES:
            break
        add(fam, fam)
        gauges += 1
    return specs


def default_json_series(doc: Any, limit: int = 12) -> list[SeriesSpec]:
    """Numeric leaves of a JSON metrics document (two levels deep); ``*_total`` keys as rates."""
    specs: list[SeriesSpec] = []

    def walk(obj: Any, path: str, depth: int) -> None:
        if len(specs) >= limit or not isinstance(obj, dict):
            return
        for k, v in obj.items():
            if len(specs) >= limit:
                return
            key = f"{path}.{k}" if re.fullmatch(r"[A-Za-z0-9_$][A-Za-z0-9_$-]*", str(k)) else f"{path}[{_quote(k)}]"
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                specs.append(SeriesSpec(name=key[2:], json=compile_path(key), rate=str(k).endswith("_total"),
                                        default=True, source=key))
            elif isinstance(v, dict) and depth < 2:
                walk(v, key, depth + 1)

    walk(doc, "$", 1)
    return specs


def _quote(k: Any) -> str:
    return "'" + str(k).replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---- reading series over successive scrapes --------------------------------------------------


class SeriesReader:
    """Turns successive scrapes into per-series values; remembers the previous cumulative values
    to compute rates. ``specs`` empty means "decide defaults on the first scrape"."""

    def __init__(self, specs: list[SeriesSpec]):
        self.specs = list(specs)
        self.auto = not specs
        self.decided = bool(specs)
        self.kinds: dict[str, str] = {}
        self._prev: dict[str, tuple[float, float]] = {}  # name -> (t, cumulative)
        self._prev_buckets: dict[str, dict[float, float]] = {}

    def infos(self) -> list[SeriesInfo]:
        return [s.info(self.kinds.get(s.name, "quantile" if s.quantile is not None else
                                      ("rate" if s.rate else "value"))) for s in self.specs]

    def read_prometheus(self, t: float, scrape: Scrape) -> tuple[dict[str, float], list[str], bool]:
        """(values, missing, series list changed)."""
        changed = False
        if not self.decided:
            self.specs = default_series(scrape)
            self.decided = changed = True
        values: dict[str, float] = {}
        missing: list[str] = []
        for spec in self.specs:
            sel = spec.selector
            if sel is None:
                continue
            if spec.quantile is not None:
                b = scrape.buckets(sel)
                if b is None:
                    missing.append(spec.name)
                    continue
                self.kinds[spec.name] = "quantile"
                prev = self._prev_buckets.get(spec.name)
                self._prev_buckets[spec.name] = b
                if prev is None:
                    continue
                if any(c < prev.get(le, 0.0) for le, c in b.items()):
                    inc = dict(b)  # reset: everything since the restart
                else:
                    inc = {le: c - prev.get(le, 0.0) for le, c in b.items()}
                v = histogram_quantile(spec.quantile, inc)
                if v is not None:
                    values[spec.name] = round(v * spec.scale, 6)
                continue
            hit = scrape.select(sel)
            if hit is None:
                missing.append(spec.name)
                continue
            value, counter = hit
            self._value(spec, t, value, counter, values)
        return values, missing, changed

    def read_json(self, t: float, doc: Any) -> tuple[dict[str, float], list[str], bool]:
        changed = False
        if not self.decided:
            self.specs = default_json_series(doc)
            self.decided = changed = True
        values: dict[str, float] = {}
        missing: list[str] = []
        for spec in self.specs:
            if spec.json is None:
                continue
            v = spec.json.find(doc)
            if isinstance(v, bool):
                v = float(v)
            if v is MISSING or not isinstance(v, (int, float)) or not math.isfinite(v):
                missing.append(spec.name)
                continue
            self._value(spec, t, float(v), False, values)
        return values, missing, changed

    def _value(self, spec: SeriesSpec, t: float, value: float, counter: bool, out: dict[str, float]) -> None:
        rate = spec.rate if spec.rate is not None else counter
        self.kinds[spec.name] = "rate" if rate else "value"
        if not rate:
            out[spec.name] = round(value * spec.scale, 6)
            return
        prev = self._prev.get(spec.name)
        self._prev[spec.name] = (t, value)
        if prev is None or t - prev[0] <= 1e-6:
            return
        inc = value - prev[1] if value >= prev[1] else value  # a reset restarts from 0
        out[spec.name] = round(inc / (t - prev[0]) * spec.scale, 6)
