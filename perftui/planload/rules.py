"""Checks of meaning for the rules a run is judged by: ``thresholds`` (strings and tables) and
``[[slos]]``. Mixed into the validator through ``perftui.planload.checks.PlanChecks``."""

from __future__ import annotations

import difflib
import re
from typing import Any

from msgspec import UNSET

from perftui.plan import Plan, Slo, SloAlert, ThresholdSpec
from perftui.planload.driver import Driver
from perftui.planload.source import Path_, _quote
from perftui.thresholds import METRICS, parse_threshold, slo_metric, system_metric

_MONITOR_KEYS = frozenset({"health", "metrics", "metrics_format", "series", "interval", "timeout", "headers",
                           "process", "generator"})
"""``[monitor]`` keys of the HTTP and process monitors; any other is a source with series of its own."""
_SLO_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")


class RuleChecks(Driver):
    def check_thresholdspec(self, t: ThresholdSpec, raw: dict[str, Any], path: Path_) -> None:
        self.duration(t.window, path + ("window",))
        self.duration(t.delay_abort_eval, path + ("delay_abort_eval",), allow_zero=True)
        if t.window is UNSET:
            return
        try:
            th = parse_threshold(t.threshold)
        except ValueError:
            return  # reported by the whole-plan check
        if slo_metric(th.metric) is not None:
            self.problem(path + ("window",), "an SLO metric has its own windows ([slos.critical] long/short); "
                                             "drop window here")
        elif th.metric not in METRICS and system_metric(th.metric) is None:
            self.problem(path + ("window",), f"a window works on request metrics (p95, error_rate, rps, ...) and "
                                             f"the system under test (target.*, host.*, series, health.uptime), "
                                             f"not on {th.metric}")

    def check_sloalert(self, a: SloAlert, raw: dict[str, Any], path: Path_) -> None:
        long_s = self.duration(a.long, path + ("long",))
        short_s = self.duration(a.short, path + ("short",))
        if long_s is not None and short_s is not None and short_s > long_s:
            self.problem(path + ("short",), f"the short window must not be longer than the long one ({a.long!r})")

    def check_slo(self, s: Slo, raw: dict[str, Any], path: Path_) -> None:
        if not _SLO_NAME.match(s.name):
            self.problem(path + ("name",), f"{_quote(s.name)}: SLO names use letters, digits, _ and - "
                                           "(thresholds name them as slo.<name>.burn_rate)")
        self.duration(s.window, path + ("window",))
        if s.sli == "latency":
            if s.latency is UNSET:
                self.problem(path + ("latency",), 'missing: a latency SLO needs the bound a good request is '
                                                  'answered within, e.g. latency = "300ms"')
            else:
                self.duration(s.latency, path + ("latency",))
        elif s.latency is not UNSET:
            self.problem(path + ("latency",), f'only a latency SLO has a bound; this one is sli = "{s.sli}"')

    def _rule_checks(self, raw: dict[str, Any], plan: Plan | None) -> None:
        slos = raw.get("slos")
        slo_names: set[str] = set()
        if isinstance(slos, list):
            for i, s in enumerate(slos):
                name = s.get("name") if isinstance(s, dict) else None
                if isinstance(name, str):
                    if name.lower() in slo_names:
                        self.problem(("slos", i, "name"), f"another SLO is named {_quote(name)} already (names are "
                                                          "compared without case)")
                    slo_names.add(name.lower())
                endpoint = s.get("endpoint") if isinstance(s, dict) else None
                if isinstance(endpoint, str) and endpoint and plan is not None and endpoint not in self.endpoints:
                    known = sorted(self.endpoints)
                    close = difflib.get_close_matches(endpoint, known, n=1, cutoff=0.6)
                    hint = f"; did you mean {_quote(close[0])}?" if close else f"; endpoints: {', '.join(known)}"
                    self.problem(("slos", i, "endpoint"), f"no step has the endpoint name {_quote(endpoint)}{hint}")
        monitor = raw.get("monitor") if isinstance(raw.get("monitor"), dict) else {}
        thresholds = raw.get("thresholds")
        if not isinstance(thresholds, list):
            return
        for i, entry in enumerate(thresholds):
            path: Path_ = ("thresholds", i)
            if isinstance(entry, dict):
                expr = entry.get("threshold")
                path = path + ("threshold",)
            else:
                expr = entry
            if not isinstance(expr, str):
                continue  # reported as a type error
            try:
                th = parse_threshold(expr)
            except ValueError as e:
                self.problem(path, str(e))
                continue
            if th.endpoint is not None and th.metric in METRICS and plan is not None and th.endpoint not in self.endpoints:
                known = sorted(self.endpoints)
                close = difflib.get_close_matches(th.endpoint, known, n=1, cutoff=0.6)
                hint = f"; did you mean {{{close[0]}}}?" if close else f"; endpoints: {', '.join(known)}"
                self.problem(path, f"no step has the endpoint name {_quote(th.endpoint)}{hint}")
            slo = slo_metric(th.metric)
            if slo is not None and slo[0] not in slo_names:
                names = ", ".join(sorted(slo_names)) or "none: add [[slos]]"
                self.problem(path, f"no SLO named {_quote(slo[0])} in [[slos]] (SLOs: {names})")
            system = system_metric(th.metric)
            if system is not None:
                self._system_source(system, th.endpoint, monitor, path)

    def _system_source(self, system: tuple[str, str, str], name: str | None, monitor: dict, path: Path_) -> None:
        """A threshold on the system under test needs the monitoring that measures it."""
        family, fld, _ = system
        if family == "target" and "process" not in monitor and not (
                monitor.get("metrics") and fld in ("cpu", "memory", "rss_mb")):
            self.problem(path, f"target.{fld} needs [monitor] process (the server's process on this machine, or "
                               '"target")' + (" or [monitor] metrics with process_* series" if fld in ("cpu", "memory", "rss_mb") else ""))
        elif family == "series" and set(monitor) - _MONITOR_KEYS:
            pass  # another monitor source (a database's, ...) names its own series
        elif family == "series" and not monitor.get("metrics"):
            self.problem(path, f"series{{{name}}} needs [monitor] metrics (the URL the series are read from)")
        elif family == "series":
            declared = _series_names(monitor.get("series"))
            if declared and name not in declared:
                close = difflib.get_close_matches(name or "", sorted(declared), n=1, cutoff=0.6)
                hint = f"did you mean {{{close[0]}}}? " if close else ""
                self.problem(path, f"no [monitor] series is named {_quote(name or '')}; {hint}series: "
                                   f"{', '.join(sorted(declared))}")
        elif family == "health":
            health = monitor.get("health")
            urls = [health] if isinstance(health, str) else list(health or [])
            if not urls:
                self.problem(path, "health.uptime needs [monitor] health (the health-check URLs)")
            elif name is not None and name not in urls:
                self.problem(path, f"{_quote(name)} is not one of the [monitor] health URLs ({', '.join(map(str, urls))})")


def _series_names(series: Any) -> set[str]:
    out: set[str] = set()
    for s in series or []:
        if isinstance(s, str):
            out.add(s.strip())
        elif isinstance(s, dict):
            src = s.get("select") or s.get("json") or ""
            out.add(s.get("name") or (src.strip() if isinstance(src, str) else ""))
    return out
