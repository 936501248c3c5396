"""k6 ``options`` -> plan phases, thresholds and defaults: vus/duration, stages, scenarios with
their executors, thresholds, a few HTTP settings. A mixin of ``perftui.importers.k6._K6`` (which
holds the conversion, the expression evaluator ``ev`` and the problem list); split out so that
each module stays readable. The mapping follows docs/import.md.
"""

from __future__ import annotations

import re
from typing import Any

from perftui.importers.common import describe, seconds_text
from perftui.units import parse_duration

_K6_THRESHOLD = re.compile(r"\s*(avg|min|max|med|p\(\s*[\d.]+\s*\)|rate|count|value)\s*(<=|>=|<|>|==|===|!=)\s*"
                           r"(-?[\d.]+)\s*\Z")

class Untranslatable(Exception):
    """A JavaScript expression with no plan spelling; the message says what it was."""


class Undef:
    """An identifier the script never defines (``${BASE_URL}``, a token set elsewhere)."""

    def __init__(self, name: str):
        self.name = name


class JsonBody:
    """``JSON.stringify(value)``: sent as a JSON body."""

    def __init__(self, value: Any):
        self.value = value



class OptionsMixin:
    # -- options --
    def map_lines(self, node, key: str) -> None:
        """Source line of every key in the options literal, for messages: options.stages[2].target."""
        if node is None:
            return
        self.opt_lines[key] = self.line(node)
        if node.type == "ObjectExpression":
            for p in node.properties:
                if p.type == "Property" and not p.computed:
                    k = p.key.name if p.key.type == "Identifier" else str(p.key.value)
                    self.opt_lines[f"{key}.{k}"] = self.line(p)
                    self.map_lines(p.value, f"{key}.{k}")
        elif node.type == "ArrayExpression":
            for i, el in enumerate(node.elements):
                if el is not None:
                    self.map_lines(el, f"{key}[{i + 1}]")

    def lenient(self, node, key: str) -> Any:
        """The options literal, each value that is not a constant (``parseInt(__ENV.VUS)``) left
        out with a TODO rather than failing the whole object."""
        if node.type == "ObjectExpression":
            out = {}
            for p in node.properties:
                if p.type != "Property" or p.computed or p.kind != "init":
                    self.conv.todo((), key, f"`{self.src(p)}`: not translated", self.line(p))
                    continue
                k = p.key.name if p.key.type == "Identifier" else str(p.key.value)
                try:
                    out[k] = self.lenient(p.value, f"{key}.{k}")
                except Untranslatable:
                    self.conv.todo((), f"{key}.{k}", f"`{self.src(p.value)}`: not a constant; not translated",
                                   self.line(p))
            return out
        v = self.ev(node, {}, ())
        if isinstance(v, (Undef, JsonBody)):
            raise Untranslatable(self.src(node))
        return v

    def oline(self, key: str) -> int | None:
        while key:
            if key in self.opt_lines:
                return self.opt_lines[key]
            key = re.sub(r"(\.[^.\[]*|\[\d+\])\Z", "", key) if re.search(r"(\.[^.\[]*|\[\d+\])\Z", key) else ""
        return None

    def otodo(self, where: tuple, key: str, message: str) -> None:
        self.conv.todo(where, key, message, self.oline(key))

    def bad(self, key: str, message: str) -> None:
        self.pb.add(key, message, self.oline(key))

    def num(self, d: dict, k: str, default: Any, key: str, *, integer: bool = False) -> Any:
        v = d.get(k, default)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
        if integer and ok and not float(v).is_integer():
            ok = False
        if not ok:
            self.bad(f"{key}.{k}", f"expected {'a whole number' if integer else 'a number'} of 0 or more, "
                     f"got {describe(v)}")
            return None
        return int(v) if integer else v

    def duration_of(self, v: Any, key: str) -> Any:
        """A k6 duration ('30s', '1m30s'; a number is milliseconds) as a plan duration, or None."""
        try:
            secs = parse_duration(v) if isinstance(v, str) else (float(v) / 1000.0
                                                                 if isinstance(v, (int, float)) and not isinstance(v, bool)
                                                                 else parse_duration(v))
        except (ValueError, TypeError, AttributeError) as e:
            self.bad(key, f"expected a duration such as '30s' or '2m': {e}")
            return None
        if secs <= 0:
            self.bad(key, f"expected a duration above 0, got {v!r}")
            return None
        return v if isinstance(v, str) else seconds_text(secs)

    def options(self, node) -> None:
        c = self.conv
        self.opt_lines: dict[str, int | None] = {}
        self.map_lines(node, "options")
        try:
            opts = self.lenient(node, "options")
        except Untranslatable as e:
            self.pb.add("options", f"expected an object literal, got `{e}`", self.line(node))
            return
        if not isinstance(opts, dict):
            self.pb.add("options", f"expected an object, got {describe(opts)}", self.line(node))
            return
        c.locate(("phases", 0), self.line(node))
        where = ("phases", 0)
        phases: list[dict] = []
        if "scenarios" in opts:
            scs = opts["scenarios"]
            if not isinstance(scs, dict) or not scs:
                self.bad("options.scenarios", f"expected an object of named scenarios, got {describe(scs)}")
                scs = {}
            starts = {}
            for name, sc in scs.items():
                start = sc.get("startTime", "0s") if isinstance(sc, dict) else "0s"
                got = self.duration_of(start, f"options.scenarios.{name}.startTime") if start not in (0, "0s") else 0
                starts[name] = parse_duration(got) if isinstance(got, str) else (got or 0)
            if len(scs) > 1:
                self.otodo(where, "options.scenarios", "k6 runs its scenarios at the same time (from their "
                           "startTime); here their phases run one after another")
            for name, sc in sorted(scs.items(), key=lambda kv: starts[kv[0]]):
                phases += self.executor(name, sc, where)
        elif "stages" in opts:
            start = self.num(opts, "vus", 1, "options", integer=True)
            phases += self.stages(opts["stages"], max(start or 1, 1), "vus", where, "options.stages")
        else:
            vus = self.num(opts, "vus", 1, "options", integer=True)
            if "duration" in opts:
                dur = self.duration_of(opts["duration"], "options.duration")
            else:
                c.note(where, "no duration: k6 runs one iteration per VU; here the VUs run for 10 s")
                dur = "10s"
            if "iterations" in opts:
                self.otodo(where, "options.iterations", f"{opts['iterations']} iterations: perftui phases run for "
                           "a duration")
            if vus == 0:
                self.bad("options.vus", "expected at least 1 virtual user")
            elif vus is not None and dur is not None:
                phases.append({"duration": dur, "vus": vus})
        c.plan["phases"] = phases
        defaults: dict[str, Any] = {}
        for k, v in opts.items():
            if k in ("scenarios", "stages", "vus", "duration", "iterations"):
                continue
            if k == "thresholds" and isinstance(v, dict):
                self.thresholds(v, node)
            elif k == "noConnectionReuse" and isinstance(v, bool):
                defaults["keep_alive"] = not v
            elif k == "insecureSkipTLSVerify" and isinstance(v, bool):
                defaults["tls_verify"] = not v
            elif k == "userAgent" and isinstance(v, str):
                defaults["headers"] = {"User-Agent": v}
            elif k == "maxRedirects" and isinstance(v, int) and not isinstance(v, bool) and v >= 0:
                defaults["max_redirects"] = v
                if v == 0:
                    defaults["follow_redirects"] = False
            else:
                self.otodo(("defaults",), f"options.{k}", "not translated")
        if defaults:
            c.plan["defaults"] = defaults

    def stages(self, stages: Any, start: float, model: str, where: tuple, key: str, max_in_flight=None,
               per: float = 1.0) -> list[dict]:
        if not isinstance(stages, list) or not stages:
            self.bad(key, f"expected a list of {{ duration, target }}, got {describe(stages)}")
            return []
        out = []
        prev = start
        for i, st in enumerate(stages):
            skey = f"{key}[{i + 1}]"
            if not isinstance(st, dict) or "duration" not in st or "target" not in st:
                self.bad(skey, f"expected {{ duration, target }}, got {describe(st)}")
                continue
            target = self.num(st, "target", 0, skey, integer=model == "vus")
            dur = self.duration_of(st["duration"], f"{skey}.duration")
            if target is None or dur is None:
                continue
            if model == "arrival_rate":
                target = target / per
            p: dict[str, Any] = {"name": f"stage {i + 1}", "duration": dur}
            if prev == 0 and target == 0:
                p["pause"] = True
            else:
                p[model] = prev if model == "arrival_rate" else int(prev)
                if target != prev:
                    p["ramp_to"] = target if model == "arrival_rate" else int(target)
                if max_in_flight and model == "arrival_rate":
                    p["max_in_flight"] = max_in_flight
            out.append(p)
            prev = target
        return out

    def executor(self, name: str, sc: Any, where: tuple) -> list[dict]:
        c = self.conv
        key = f"options.scenarios.{name}"
        if not isinstance(sc, dict):
            self.bad(key, f"expected an object, got {describe(sc)}")
            return []
        ex = sc.get("executor")
        unit = self.duration_of(sc.get("timeUnit", "1s"), f"{key}.timeUnit")
        per = (parse_duration(unit) if isinstance(unit, str) else unit) if unit is not None else 1.0
        cap = None
        for k in ("maxVUs", "preAllocatedVUs"):
            if k in sc:
                cap = self.num(sc, k, 1, key, integer=True)
                break
        handled = {"executor", "vus", "duration", "stages", "startVUs", "rate", "timeUnit", "startRate", "maxVUs",
                   "preAllocatedVUs", "iterations", "maxDuration", "startTime", "gracefulStop", "gracefulRampDown"}
        for k in sc:
            if k == "exec" and sc[k] != "default":
                self.otodo(where, f"{key}.exec", f"runs {sc[k]}(); here every phase runs the default function")
            elif k not in handled and k != "exec":
                self.otodo(where, f"{key}.{k}", "not translated")
        label = f"{name} ({ex})"
        if ex == "constant-vus":
            vus, dur = self.num(sc, "vus", 1, key, integer=True), self.duration_of(sc.get("duration"), f"{key}.duration")
            return [{"name": name, "duration": dur, "vus": vus}] if vus and dur is not None else []
        if ex == "ramping-vus":
            start = self.num(sc, "startVUs", 1, key, integer=True)
            out = self.stages(sc.get("stages"), start or 0, "vus", where, f"{key}.stages")
        elif ex == "constant-arrival-rate":
            rate, dur = self.num(sc, "rate", None, key), self.duration_of(sc.get("duration"), f"{key}.duration")
            if not rate or dur is None:
                return []
            p = {"name": name, "duration": dur, "arrival_rate": rate / per}
            if cap:
                p["max_in_flight"] = cap
                c.note(where, f"{name}: maxVUs/preAllocatedVUs {cap} -> max_in_flight")
            return [p]
        elif ex == "ramping-arrival-rate":
            start = self.num(sc, "startRate", 0, key)
            out = self.stages(sc.get("stages"), (start or 0) / per, "arrival_rate", where, f"{key}.stages", cap, per)
        elif ex in ("per-vu-iterations", "shared-iterations"):
            vus = self.num(sc, "vus", 1, key, integer=True)
            its = sc.get("iterations", 1)
            maxd = self.duration_of(sc.get("maxDuration", "10m"), f"{key}.maxDuration")
            self.otodo(where, f"{key}.iterations", f"{ex}: k6 stops after {its} iteration(s)"
                       f"{' per VU' if ex == 'per-vu-iterations' else ' in all'}; here {vus} VU(s) run for "
                       f"maxDuration ({sc.get('maxDuration', '10m')})")
            return [{"name": name, "duration": maxd, "vus": vus}] if vus and maxd is not None else []
        else:
            self.otodo(where, f"{key}.executor", f"executor {ex!r} has no perftui equivalent; left out")
            return []
        for p in out:
            p["name"] = f"{name} {p['name']}"
        if out:
            c.note(where, f"{label}: one phase per stage")
        return out

    def thresholds(self, th: dict, node) -> None:
        out = self.conv.plan.setdefault("thresholds", [])
        for metric, rules in th.items():
            rules = rules if isinstance(rules, list) else [rules]
            m = re.fullmatch(r"([\w.]+)(?:\{(.*)\})?", metric)
            base, tags = (m.group(1), m.group(2)) if m else (metric, None)
            endpoint = ""
            if tags:
                tm = re.fullmatch(r"\s*name\s*:\s*(.+?)\s*", tags)
                if tm:
                    endpoint = "{" + tm.group(1) + "}"
                else:
                    self.otodo(("thresholds",), f"options.thresholds.{metric}", f"tag {{{tags}}}: only "
                               "{name:...} is translated; not translated")
                    continue
            for r in rules:
                text = r.get("threshold") if isinstance(r, dict) else r
                got = self.threshold(base, endpoint, text) if isinstance(text, str) else None
                if got and isinstance(r, dict) and r.get("abortOnFail"):
                    table = {"threshold": got, "abort_on_fail": True}
                    if isinstance(r.get("delayAbortEval"), (str, int, float)):
                        table["delay_abort_eval"] = r["delayAbortEval"]
                    out.append(table)
                elif got:
                    out.append(got)
                else:
                    self.otodo(("thresholds",), f"options.thresholds.{metric}", f"{text!r}: not translated")
        if out:
            self.conv.note(("thresholds",), "options.thresholds")
        else:
            self.conv.plan.pop("thresholds")

    @staticmethod
    def threshold(metric: str, endpoint: str, text: str) -> str | None:
        m = _K6_THRESHOLD.fullmatch(text)
        if not m:
            return None
        agg, op, value = m.group(1).replace(" ", ""), m.group(2), m.group(3)
        op = {"===": "=="}.get(op, op)
        if op == "!=":
            return None
        latency = agg in ("avg", "min", "max", "med") or agg.startswith("p(")
        if metric == "http_req_duration" and latency:
            return f"{agg}{endpoint} {op} {value}"
        if metric == "http_req_failed" and agg == "rate":
            return f"error_rate{endpoint} {op} {value}"
        if metric == "http_reqs" and agg in ("count", "rate"):
            return f"{'requests' if agg == 'count' else 'rps'}{endpoint} {op} {value}"
        if metric == "checks" and agg == "rate" and not endpoint:
            return f"success_rate {op} {value}"
        if metric == "ws_connecting" and latency:
            return f"ws.connect.{agg}{endpoint} {op} {value}"
        if metric in ("ws_msgs_received", "ws_msgs_sent", "ws_sessions") and agg == "count" and not endpoint:
            name = {"ws_msgs_received": "ws.messages_received", "ws_msgs_sent": "ws.messages_sent",
                    "ws_sessions": "ws.connections_opened"}[metric]
            return f"{name} {op} {value}"
        return None
