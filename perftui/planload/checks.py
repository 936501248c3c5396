"""Checks of meaning for the plan's tables other than steps: ``[defaults]``, ``[demo]``,
``[[phases]]``, ``[[scenarios]]``, captures and expectations, ``[monitor]``, URLs and the
whole-plan checks (target, thresholds naming endpoints, variables). Mixed into the validator by
``perftui.planload.validate``."""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlsplit

from msgspec import UNSET

from perftui.plan import MAX_RATE, MAX_VUS, Capture, Defaults, DemoOptions, Expect, FindLimit, GeneratorLimits, MetricSeries, Monitor, Phase, Plan, Scenario
from perftui.planload.driver import Driver, _fields, _finite
from perftui.planload.rules import RuleChecks
from perftui.planload.stages import StageChecks, benchmark_checks
from perftui.planload.source import Path_, _HEADER_NAME, _HEADER_VALUE_BAD, _HOST, _IDENT, _IPV6, _has_control, _has_space_or_control, _quote
from perftui.jsonpath import compile_path
from perftui.template import TemplateError, compile_json
from perftui.demo.latency import parse_latency
from perftui.monitor.metrics import parse_selector


class PlanChecks(RuleChecks, StageChecks, Driver):
    """The checks of meaning run on each table that converted (``check_<struct name>``, called by
    ``Driver.struct``), and on the whole plan. Ranges declared with ``msgspec.Meta`` on the plan
    types are enforced by the driver before these run."""

    def check_defaults(self, d: Defaults, raw: dict[str, Any], path: Path_) -> None:
        self.duration(d.timeout, path + ("timeout",))
        self.duration(d.connect_timeout, path + ("connect_timeout",))
        self.duration(d.late_threshold, path + ("late_threshold",), allow_zero=True)
        self.duration(d.graceful_stop, path + ("graceful_stop",), allow_zero=True)
        self.headers(d.headers, path + ("headers",))

    def check_demooptions(self, d: DemoOptions, raw: dict[str, Any], path: Path_) -> None:
        if not d.latency.strip():
            self.problem(path + ("latency",), 'must not be empty; use "0ms" for no added latency')
        else:
            try:
                parse_latency(d.latency)
            except ValueError as e:
                self.problem(path + ("latency",), str(e))

    def check_phase(self, ph: Phase, raw: dict[str, Any], path: Path_) -> None:
        self.duration(ph.duration, path + ("duration",))
        modes = [k for k in ("arrival_rate", "vus") if k in raw]
        if ph.pause:
            modes.append("pause")
        if len(modes) > 1:
            self.problem(
                path,
                f"a phase has exactly one of arrival_rate (open model), vus (closed model) or pause = true;"
                f" this one has {' and '.join(modes)}",
            )
            return
        if not modes and all(k in _fields(Phase) for k in raw):
            self.problem(
                path,
                "a phase needs one of arrival_rate (open model: iterations started per second),"
                " vus (closed model: virtual users) or pause = true",
            )
            return
        if not modes:
            return
        model = "pause" if ph.pause else ("closed" if "vus" in raw else "open")
        # Starting at 0 is fine when the phase ramps up from it (k6's startRate: 0, stages from 0 VUs).
        ramps_up = ph.ramp_to is not UNSET and isinstance(ph.ramp_to, (int, float)) and ph.ramp_to > 0
        low = "0 or more (it ramps up)" if ramps_up else "greater than 0"
        if model == "open" and ph.arrival_rate is not UNSET:
            rate = ph.arrival_rate
            if not (math.isfinite(rate) and (0 < rate or (ramps_up and rate == 0)) and rate <= MAX_RATE):
                self.problem(path + ("arrival_rate",), f"must be {low} (and at most {MAX_RATE:g}), got {rate:g}")
        if model == "closed" and ph.vus is not UNSET:
            if not ((0 < ph.vus or (ramps_up and ph.vus == 0)) and ph.vus <= MAX_VUS):
                self.problem(path + ("vus",), f"must be {low} (and at most {MAX_VUS}), got {ph.vus}")
        if ph.ramp_to is not UNSET:
            limit = MAX_RATE if model == "open" else MAX_VUS
            if model == "pause":
                self.problem(path + ("ramp_to",), "a pause phase cannot ramp; remove ramp_to")
            elif not (math.isfinite(ph.ramp_to) and 0 <= ph.ramp_to <= limit):
                self.problem(path + ("ramp_to",), f"must be 0 or more (ramping down is fine), got {ph.ramp_to:g}")
            elif model == "closed" and ph.ramp_to != int(ph.ramp_to):
                self.problem(path + ("ramp_to",), f"virtual users are whole: ramp_to must be a whole number, got {ph.ramp_to:g}")
        if ph.max_in_flight is not UNSET:
            if model != "open":
                self.problem(path + ("max_in_flight",), "max_in_flight limits open-model phases (arrival_rate) only")
        if "arrivals" in raw and model != "open":
            self.problem(path + ("arrivals",), "arrivals shapes open-model phases (arrival_rate) only")

    def check_scenario(self, sc: Scenario, raw: dict[str, Any], path: Path_) -> None:
        steps = raw.get("steps")
        connected = False
        for i, st in enumerate(steps if isinstance(steps, list) else ()):
            if not isinstance(st, dict):
                continue
            if "ws_connect" in st:
                connected = True
            elif not connected:
                used = next((k for k in ("ws_send", "ws_request", "ws_expect", "ws_hold", "ws_close") if k in st), None)
                if used is not None:
                    self.problem(path + ("steps", i, used), f"{used} needs a ws_connect step before it in this scenario"
                                 ' (e.g. ws_connect = "/ws")')
        if not raw.get("steps") and all(k in _fields(Scenario) for k in raw):
            self.problem(
                path + ("steps",) if "steps" in raw else path,
                "a scenario needs at least one step: add [[scenarios.steps]] with url = \"/path\"",
            )

    def absolute_url(self, url: str, path: Path_, schemes: tuple[str, ...]) -> bool:
        """Checks an absolute URL's parts (port, IPv6 brackets, host name); templated URLs are
        checked as far as their text allows. False when a problem was reported."""
        if "{{" in url:
            return True
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a port that is not 0..65535
        except ValueError as e:
            self.problem(path, f"not a valid URL ({e}): {_quote(url)}")
            return False
        if parts.scheme.lower() not in schemes:
            return True  # the caller words the scheme problem
        host = parts.hostname or ""
        if not host:
            self.problem(path, f"has no host name: {_quote(url)}")
            return False
        if not _HOST.match(host) and not (parts.netloc.rpartition("@")[2].startswith("[") and _IPV6.match(host)):
            self.problem(path, f"{_quote(host)} is not a valid host name (letters, digits, - and . only): {_quote(url)}")
            return False
        return True

    def check_url(self, url: str, path: Path_) -> None:
        if not url.strip():
            self.problem(path, 'must not be empty; write a path like "/api/users"')
        elif not (url.startswith(("/", "{{")) or url.lower().startswith(("http://", "https://"))):
            if url.lower().startswith(("ws://", "wss://")):
                self.problem(path, f"WebSocket URLs go in ws_connect = {_quote(url)}, not url")
            elif "://" in url:
                self.problem(path, f"only http:// and https:// URLs are supported, got {_quote(url)}")
            else:
                self.problem(path, f"must start with / (a path on the target) or http(s)://, got {_quote(url)}; did you mean {_quote('/' + url)}?")
        if _has_control(url) or (_has_space_or_control(url) and "{{" not in url):
            self.problem(path, "URLs cannot contain spaces, line breaks or control characters; encode them as %20")
        elif url.lower().startswith(("http://", "https://")):
            self.absolute_url(url, path, ("http", "https"))
        self.template(url, path)

    # -- protocol steps --

    def json_template(self, value: Any, path: Path_) -> None:
        try:
            jt = compile_json(value)
        except TemplateError as e:
            self.problem(path, f"bad template: {e}")
        else:
            self.names_defined(jt.names, path)

    def check_capture(self, cap: Capture, raw: dict[str, Any], path: Path_) -> None:
        if isinstance(cap.as_, str) and not _IDENT.match(cap.as_):
            self.problem(path + ("as",), f"must be a variable name (letters, digits, _), got {_quote(cap.as_)}")
        sources = [k for k in ("json", "header", "regex") if k in raw]
        if len(sources) != 1:
            have = f"; this one has {' and '.join(sources)}" if sources else ""
            self.problem(path, f"a capture takes exactly one of json, header or regex{have}")
            return
        if cap.json is not UNSET:
            try:
                compile_path(cap.json)
            except ValueError as e:
                self.problem(path + ("json",), str(e))
        if cap.header is not UNSET and not _HEADER_NAME.match(cap.header):
            self.problem(path + ("header",), f"{_quote(cap.header)} is not a valid HTTP header name")
        if cap.regex is not UNSET:
            try:
                re.compile(cap.regex)
            except re.error as e:
                self.problem(path + ("regex",), f"invalid regular expression: {e}")
            except (RecursionError, OverflowError, ValueError):
                self.problem(path + ("regex",), "invalid regular expression")

    def check_expect(self, ex: Expect, raw: dict[str, Any], path: Path_) -> None:
        if ex.status is not UNSET:
            codes = ex.status if isinstance(ex.status, list) else [ex.status]
            if isinstance(ex.status, list) and not codes:
                self.problem(path + ("status",), "must list at least one status code")
        for key in ex.json_equals:
            try:
                compile_path(key)
            except ValueError as e:
                self.problem(path + ("json_equals", key), str(e))
        for i, key in enumerate(ex.json_exists):
            try:
                compile_path(key)
            except ValueError as e:
                self.problem(path + ("json_exists", i), str(e))

    # -- [monitor] --

    def monitor_url(self, url: str, path: Path_, example: str = "/health") -> None:
        if not url.strip():
            self.problem(path, f'must not be empty: a path on the target such as "{example}", or an http(s):// URL')
            return
        if _has_space_or_control(url):
            self.problem(path, "URLs cannot contain spaces, line breaks or control characters; encode them as %20")
            return
        if url.startswith("/"):
            return
        if "://" not in url:
            self.problem(path, f"must start with / (a path on the target) or http(s)://, got {_quote(url)};"
                               f" did you mean {_quote('/' + url)}?")
            return
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as e:
            self.problem(path, f"not a valid URL ({e}): {_quote(url)}")
            return
        if parts.scheme not in ("http", "https"):
            self.problem(path, f"only http:// and https:// URLs can be polled, got {_quote(parts.scheme + '://')}")
        else:
            self.absolute_url(url, path, ("http", "https"))

    def check_monitor(self, m: Monitor, raw: dict[str, Any], path: Path_) -> None:
        single = isinstance(m.health, str)
        seen: set[str] = set()
        for i, url in enumerate([m.health] if single else m.health):
            where = path + (("health",) if single else ("health", i))
            self.monitor_url(url, where)
            if url in seen:
                self.problem(where, f"{_quote(url)} is listed twice")
            seen.add(url)
        if m.metrics or "metrics" in raw:
            self.monitor_url(m.metrics, path + ("metrics",), "/metrics")
        interval = self.duration(m.interval, path + ("interval",))
        if interval is not None and interval < 0.1:
            self.problem(path + ("interval",), f"must be at least 100ms (polling faster would load the target), got {m.interval!r}")
        self.duration(m.timeout, path + ("timeout",))
        for name, text in m.headers.items():
            if not _HEADER_NAME.match(name):
                self.problem(path + ("headers", name), f"{_quote(name)} is not a valid HTTP header name")
            elif _HEADER_VALUE_BAD.search(text):
                self.problem(path + ("headers", name), "header values must not contain line breaks or control characters")
        if m.process is not UNSET:
            if isinstance(m.process, str) and not m.process.strip():
                self.problem(path + ("process",), 'must not be empty: a pid, a process name or command-line text, or "target"')
        if m.series and not m.metrics and "metrics" not in raw:
            self.problem(path + ("series",), 'series are read from the metrics URL: add metrics = "/metrics" (or a JSON metrics URL)')
        names: dict[str, int] = {}
        for i, entry in enumerate(m.series):
            where = path + ("series", i)
            if isinstance(entry, str):
                try:
                    parse_selector(entry)
                except ValueError as e:
                    self.problem(where, str(e))
                    continue
                if m.metrics_format == "json":
                    self.problem(where, 'a Prometheus selector cannot read JSON metrics (metrics_format = "json");'
                                        ' write { json = "$.path", name = "..." }')
                name = entry.strip()
            else:
                if entry.select is not UNSET and m.metrics_format == "json":
                    self.problem(where + ("select",), 'metrics_format = "json": read JSON metrics with json = "$.path"')
                if entry.json is not UNSET and m.metrics_format == "prometheus":
                    self.problem(where + ("json",), 'metrics_format = "prometheus": read Prometheus metrics with select = "name{...}"')
                source = entry.select if entry.select is not UNSET else entry.json if entry.json is not UNSET else ""
                name = (entry.name or source).strip()
            if name and name in names:
                self.problem(where, f"two series are named {_quote(name)} (also series[{names[name] + 1}]):"
                                    " give one of them name = \"...\"")
            names.setdefault(name, i)

    def check_metricseries(self, s: MetricSeries, raw: dict[str, Any], path: Path_) -> None:
        sources = [k for k in ("select", "json") if k in raw]
        if len(sources) != 1:
            have = f"; this one has {' and '.join(sources)}" if sources else ""
            self.problem(path, f"a series takes exactly one of select (a Prometheus selector) or json (a JSON path){have}")
        if s.select is not UNSET:
            try:
                parse_selector(s.select)
            except ValueError as e:
                self.problem(path + ("select",), str(e))
        if s.json is not UNSET:
            try:
                compile_path(s.json)
            except ValueError as e:
                self.problem(path + ("json",), str(e))
        if not math.isfinite(s.scale) or s.scale == 0:
            self.problem(path + ("scale",), f"must be a number other than 0, got {s.scale:g}")
        if s.quantile is not UNSET:
            if s.json is not UNSET:
                self.problem(path + ("quantile",), "quantile reads the buckets of a Prometheus histogram: use it with select")
            if s.rate is not UNSET:
                self.problem(path + ("rate",), "a quantile is not a rate: remove rate")
        if "name" in raw and not s.name.strip():
            self.problem(path + ("name",), "must not be empty (leave it out to use the selector or path)")

    def check_generatorlimits(self, g: GeneratorLimits, raw: dict[str, Any], path: Path_) -> None:
        self.duration(g.cpu_for, path + ("cpu_for",), allow_zero=True)
        self.duration(g.loop_lag, path + ("loop_lag",))
        self.duration(g.schedule_lag, path + ("schedule_lag",))

    def check_findlimit(self, f: FindLimit, raw: dict[str, Any], path: Path_) -> None:
        self.duration(f.step_duration, path + ("step_duration",))
        self.duration(f.settle, path + ("settle",), allow_zero=True)
        self.duration(f.p99, path + ("p99",))
        self.duration(f.recovery, path + ("recovery",))
        if _finite(f.start_rate) and _finite(f.max_rate) and f.max_rate < f.start_rate:
            if "max_rate" in raw:
                self.problem(path + ("max_rate",), f"must not be below start_rate ({f.start_rate:g}/s), got {f.max_rate:g}")
            else:
                self.problem(path + ("start_rate",), f"must not be above max_rate ({f.max_rate:g}/s), got {f.start_rate:g}")

    # -- whole-plan checks (on the raw data, so they run even when parts failed) --

    def _plan_checks(self, raw: dict[str, Any], plan: Plan | None) -> None:
        target = raw.get("target")
        if isinstance(target, str):
            self.check_target(target, ("target",))
        elif "target" not in raw and not raw.get("databases"):  # a plan of SQL steps alone needs none
            self.problem(("target",), 'missing: set target = "demo" (the embedded demo server) or a base URL such as "http://localhost:8080"')
        phases = raw.get("phases")
        if benchmark_checks(self, raw):
            pass  # a benchmark plan has no phases (checked there)
        elif "find_limit" in raw:
            if phases:  # the search makes its own steps
                self.problem(("phases",), "[find_limit] runs its own steps: remove [[phases]] (or [find_limit] to run the phases)")
        elif "phases" not in raw or (isinstance(phases, list) and not phases):
            self.problem(
                ("phases",),
                "a plan needs at least one phase, e.g. [[phases]] duration = \"1m\" arrival_rate = 10",
            )
        scenarios = raw.get("scenarios")
        if "scenarios" not in raw or (isinstance(scenarios, list) and not scenarios):
            self.problem(
                ("scenarios",),
                "a plan needs at least one scenario: [[scenarios]] with [[scenarios.steps]] url = \"/\"",
            )
        elif isinstance(scenarios, list) and all(isinstance(s, dict) for s in scenarios):
            weights = [s.get("weight", 1) for s in scenarios]
            if all(_finite(w) and w >= 0 for w in weights) and sum(weights) <= 0:
                self.problem(("scenarios",), "the scenario weights add up to 0: give at least one scenario a weight above 0")
        self._rule_checks(raw, plan)  # thresholds and [[slos]]: perftui.planload.rules
        self.sql_plan_checks(raw)  # type: ignore[attr-defined] - perftui.planload.sqlchecks
        variables = raw.get("variables")
        if isinstance(variables, dict):
            for name, val in variables.items():
                if isinstance(name, str) and not _IDENT.match(name):
                    self.problem(("variables", name), "variable names use letters, digits and _ (and don't start with a digit), so templates can use them")
                if isinstance(val, list) and not val:
                    self.problem(("variables", name), "an empty list: give at least one value")

    def check_target(self, target: str, path: Path_) -> None:
        if target == "demo":
            return
        if not target.strip():
            self.problem(path, 'must not be empty: use "demo" or a base URL such as "http://localhost:8080"')
            return
        if _has_space_or_control(target):
            self.problem(path, f"a target URL cannot contain spaces, line breaks or control characters: {_quote(target)}")
            return
        try:
            parts = urlsplit(target)
            port = parts.port
        except ValueError as e:
            self.problem(path, f"not a valid URL ({e}): {_quote(target)}")
            return
        del port
        if parts.scheme not in ("http", "https"):
            if not parts.scheme or "://" not in target:
                self.problem(path, f"needs a scheme: did you mean {_quote('http://' + target)}? (or \"demo\" for the embedded demo server)")
            else:
                self.problem(path, f"only http:// and https:// targets are supported, got {_quote(parts.scheme + '://')}")
            return
        if not parts.hostname:
            self.problem(path, f"has no host name: {_quote(target)}")
        elif not self.absolute_url(target, path, ("http", "https")):
            return
        if parts.query or parts.fragment:
            self.problem(path, "a target is a base URL without ?query or #fragment; put the query on the steps")


# ---- command-line overrides and quick plans ------------------------------------------------
