"""Artillery ``config`` -> plan: target phases, http/tls/defaults, variables, CSV payloads,
ensure (thresholds), plugins, processor. A mixin of ``perftui.importers.artillery._Converter``
(which holds the conversion, templates and the problem list); split out so that each module stays
readable. The mapping follows docs/import.md.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from perftui.importers.common import describe, seconds_text
from perftui.importers.yamlsource import item_line, key_line
from perftui.units import parse_duration

MAX_PAYLOAD_ROWS = 10_000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ENV_TEMPLATE = re.compile(r"\s*\$(?:processEnvironment|env)\.([A-Za-z_][A-Za-z0-9_]*)\s*\Z")


class ConfigMixin:
    def config_keys(self) -> None:
        c, cfg = self.conv, self.config
        plan = c.plan
        defaults: dict[str, Any] = plan.setdefault("defaults", {})
        handled = {"target", "phases", "http", "tls", "defaults", "variables", "payload", "ensure", "plugins",
                   "processor", "environments"}
        self.phases()
        http = self.get(cfg, "http", (dict,), "config.http", "a mapping")
        if http:
            timeout = self.get(http, "timeout", (int, float, str), "config.http.timeout", "a number of seconds")
            if timeout is not None:
                secs = self.duration(timeout, "config.http.timeout", key_line(http, "timeout"))
                if secs is not None and secs > 0:
                    defaults["timeout"] = f"{seconds_text(secs)}s"
                    c.note(("defaults",), f"config.http.timeout: {timeout} (seconds)")
            for k in http:
                if k != "timeout":
                    self.todo(("defaults",), f"config.http.{k}", "not translated", key_line(http, k))
        tls = self.get(cfg, "tls", (dict,), "config.tls", "a mapping")
        if tls:
            for k, v in tls.items():
                if k == "rejectUnauthorized" and isinstance(v, bool):
                    defaults["tls_verify"] = v
                else:
                    self.todo(("defaults",), f"config.tls.{k}", "not translated", key_line(tls, k))
        dflt = self.get(cfg, "defaults", (dict,), "config.defaults", "a mapping")
        if dflt:
            for k, v in dflt.items():
                if k == "headers":
                    h = self.headers(v, ("defaults",), "config.defaults.headers", key_line(dflt, k))
                    if h:
                        defaults["headers"] = h
                else:
                    self.todo(("defaults",), f"config.defaults.{k}", "not translated", key_line(dflt, k))
        self.variables()
        self.payload()
        self.ensure()
        plugins = self.get(cfg, "plugins", (dict,), "config.plugins", "a mapping of plugin names")
        for name, opts in (plugins or {}).items():
            line = key_line(plugins, name)
            if opts is not None and not isinstance(opts, dict):
                self.pb.add(f"config.plugins.{name}", f"expected a mapping of options, got {describe(opts)}", line)
                continue
            if name == "metrics-by-endpoint":
                text = "plugins.metrics-by-endpoint: built in (results are per endpoint"
                text += "; query strings are already left out of endpoint names)" if isinstance(opts, dict) and \
                    opts.get("stripQueryString") else ")"
                c.note((), text)
                for k in opts or {}:
                    if k not in ("stripQueryString", "useOnlyRequestNames"):
                        self.todo((), f"config.plugins.{name}.{k}", "not translated", key_line(opts, k))
            elif name == "expect":
                c.note((), "plugins.expect: built in (each step's expect)")
                for k in opts or {}:
                    self.todo((), f"config.plugins.{name}.{k}", "not translated", key_line(opts, k))
            elif name == "ensure":
                c.note((), "plugins.ensure: built in (thresholds)")
            else:
                self.todo((), f"config.plugins.{name}", "plugin not built into perftui; not translated", line)
        processor = cfg.get("processor")
        if processor is not None:
            self.todo((), "config.processor", f"JavaScript functions ({processor}) are not run; "
                      "steps that call them carry their own TODO", key_line(cfg, "processor"))
        for k in cfg:
            if k not in handled:
                self.todo((), f"config.{k}", "not translated", key_line(cfg, k))

    def duration(self, v: Any, key: str, line: int | None) -> float | None:
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            self.pb.add(key, f"expected a number of seconds or a duration like 30s, 5m, got {describe(v)}", line)
            return None
        try:
            secs = parse_duration(v)
        except ValueError as e:
            self.pb.add(key, f"expected a number of seconds or a duration like 30s, 5m: {e}", line)
            return None
        if secs < 0:
            self.pb.add(key, f"expected a duration of 0 or more, got {v}", line)
            return None
        return secs

    def phases(self) -> None:
        c, cfg = self.conv, self.config
        phases = self.get(cfg, "phases", (list,), "config.phases", "a list of phases")
        if phases is None:
            if "phases" not in cfg:
                self.todo(("phases",), "config.phases", "no phases: Artillery runs nothing; one "
                          "1-arrival/s phase of 10 s stands in (use --rate/--duration)", key_line(self.doc, "config"))
                c.plan["phases"] = [{"duration": 10, "arrival_rate": 1}]
            return
        out = c.plan.setdefault("phases", [])
        for i, ph in enumerate(phases):
            key = f"config.phases[{i + 1}]"
            line = item_line(phases, i)
            if not isinstance(ph, dict):
                self.pb.add(key, f"expected a mapping (duration, arrivalRate, ...), got {describe(ph)}", line)
                continue
            where = ("phases", len(out))
            c.locate(where, line)
            p: dict[str, Any] = {}
            name = self.get(ph, "name", (str, int, float), f"{key}.name", "a string")
            if name is not None:
                p["name"] = str(name)
            num = (int, float)
            if "pause" in ph:
                secs = self.duration(ph["pause"], f"{key}.pause", key_line(ph, "pause"))
                if secs is not None:
                    p.update(duration=seconds_text(secs), pause=True)
                    out.append(p)
                for k in ph:
                    if k not in ("pause", "name"):
                        self.todo(where, f"{key}.{k}", "not translated (a pause phase)", key_line(ph, k))
                continue
            if "duration" not in ph:
                self.pb.add(key, "a phase needs duration: (seconds) or pause:", line)
                continue
            secs = self.duration(ph["duration"], f"{key}.duration", key_line(ph, "duration"))
            rate = self.get(ph, "arrivalRate", num, f"{key}.arrivalRate", "a number of arrivals per second")
            ramp = self.get(ph, "rampTo", num, f"{key}.rampTo", "a number of arrivals per second")
            count = self.get(ph, "arrivalCount", num, f"{key}.arrivalCount", "a number of arrivals")
            maxv = self.get(ph, "maxVusers", (int,), f"{key}.maxVusers", "a whole number of virtual users")
            if secs is None:
                continue
            if secs == 0:
                self.pb.add(f"{key}.duration", "expected a duration above 0", key_line(ph, "duration"))
                continue
            p["duration"] = ph["duration"] if isinstance(ph["duration"], str) else seconds_text(secs)
            if count is not None:
                p["arrival_rate"] = count / secs
                c.note(where, f"arrivalCount: {count} over {seconds_text(secs)} s")
                if rate is not None or ramp is not None:
                    self.todo(where, f"{key}.arrivalRate", "ignored: arrivalCount sets the rate", line)
            elif (rate or 0) > 0 or (ramp or 0) > 0:
                p["arrival_rate"] = rate or 0
                if ramp is not None and ramp != rate:
                    p["ramp_to"] = ramp
            else:
                c.note(where, f"{key}: no arrivals (arrivalRate 0): a pause")
                p["pause"] = True
            if maxv is not None and not p.get("pause"):
                p["max_in_flight"] = maxv
                c.note(where, f"maxVusers: {maxv} (arrivals beyond it are dropped and counted)")
            for k in ph:
                if k not in ("name", "duration", "arrivalRate", "rampTo", "arrivalCount", "maxVusers"):
                    self.todo(where, f"{key}.{k}", "not translated", key_line(ph, k))
            out.append(p)

    def headers(self, h: Any, where: tuple, key: str, line: int | None) -> dict[str, str]:
        if not isinstance(h, dict):
            self.pb.add(key, f"expected a mapping of header names to values, got {describe(h)}", line)
            return {}
        out = {}
        for k, v in h.items():
            if v is None or isinstance(v, (dict, list)):
                self.pb.add(f"{key}.{k}", f"expected a header value (text), got {describe(v)}", key_line(h, k))
                continue
            v = str(v).lower() if isinstance(v, bool) else str(v)
            out[str(k)] = self.template(v, where, f"{key}.{k}", key_line(h, k))
        return out

    def variables(self) -> None:
        c, cfg = self.conv, self.config
        variables = self.get(cfg, "variables", (dict,), "config.variables", "a mapping of names to values")
        if not variables:
            return
        out = c.plan.setdefault("variables", {})
        for name, v in variables.items():
            key, line = f"config.variables.{name}", key_line(variables, name)
            if not _NAME.match(str(name)):
                self.todo(("variables",), key, "perftui variable names use letters, digits and _; left out", line)
                continue
            self.defined.add(name)
            if isinstance(v, list):
                items = [x for x in v if isinstance(x, (str, int, float, bool))]
                if len(items) != len(v) or not items:
                    self.pb.add(key, "expected a list of strings or numbers (one picked per virtual user)", line)
                    continue
                out[name] = [self.variable_text(x, key, line) for x in items]
                c.note(("variables", name), f"{name}: one value per virtual user")
            elif isinstance(v, (str, int, float, bool)):
                out[name] = self.variable_text(v, key, line)
            else:
                self.pb.add(key, f"expected a value or a list of values, got {describe(v)}", line)

    def variable_text(self, v: Any, key: str, line: int | None) -> Any:
        if not isinstance(v, str):
            return v
        env = _ENV_TEMPLATE.match(v.strip()[2:-2]) if v.strip().startswith("{{") and v.strip().endswith("}}") else None
        if env:
            return "${" + env.group(1) + "}"
        if "{{" in v:
            self.todo(("variables",), key, "perftui variables are not templates; the text is kept as written", line)
            return v.replace("${", "$${")
        return v.replace("${", "$${")

    def payload(self) -> None:
        c, cfg = self.conv, self.config
        payload = cfg.get("payload")
        if payload is None:
            return
        items = payload if isinstance(payload, list) else [payload]
        for n, p in enumerate(items):
            key = "config.payload" + (f"[{n + 1}]" if isinstance(payload, list) else "")
            line = item_line(payload, n) if isinstance(payload, list) else key_line(cfg, "payload")
            if not isinstance(p, dict):
                self.pb.add(key, f"expected a mapping (path, fields), got {describe(p)}", line)
                continue
            path = self.get(p, "path", (str,), f"{key}.path", "a CSV file path")
            fields = self.get(p, "fields", (list,), f"{key}.fields", "a list of column names")
            if path is None or fields is None:
                if "path" not in p or "fields" not in p:
                    self.pb.add(key, "a payload needs path: and fields:", line)
                continue
            names = [str(f) for f in fields]
            for k in p:
                if k in ("order",) and p[k] == "sequence":
                    self.todo(("variables",), f"{key}.order", "sequence: perftui picks a row at random per "
                              "virtual user", key_line(p, k))
                elif k not in ("path", "fields", "skipHeader", "delimiter", "cast", "skipEmptyLines", "order"):
                    self.todo(("variables",), f"{key}.{k}", "not translated", key_line(p, k))
            rows = self.read_csv(path, p, key, line)
            out = c.plan.setdefault("variables", {})
            cast = p.get("cast", True) is not False
            for i, name in enumerate(names):
                if not _NAME.match(name):
                    self.todo(("variables",), f"{key}.fields", f"column {name!r} is not a perftui variable name", line)
                    continue
                values = [self.cell(r[i], cast) for r in rows if i < len(r)] if rows else []
                out[name] = values if values else ""
                self.defined.add(name)
                c.note(("variables", name), f"{name}: column {i + 1} of {path}" + ("" if values else " (no data)"))
            if len(names) > 1 and rows:
                self.todo(("variables",), f"{key}.fields", "each column is picked at random per virtual user on "
                          "its own: values of one CSV row do not stay together", line)

    def read_csv(self, path: str, p: dict, key: str, line: int | None) -> list[list[str]]:
        file = (self.path.parent / path) if not Path(path).is_absolute() else Path(path)
        delim = p.get("delimiter", ",")
        try:
            with open(file, newline="", encoding="utf-8-sig") as f:
                rows = []
                for r in csv.reader(f, delimiter=str(delim)[:1] or ","):
                    if not any(cell.strip() for cell in r) and p.get("skipEmptyLines", True):
                        continue
                    rows.append(r)
                    if len(rows) > MAX_PAYLOAD_ROWS:
                        break
        except OSError as e:
            self.todo(("variables",), f"{key}.path", f"cannot read {file}: {e.strerror or e}; its columns are "
                      "defined empty", line)
            return []
        except (csv.Error, UnicodeDecodeError) as e:
            self.pb.add(f"{key}.path", f"{file}: not a readable CSV file: {e}", line)
            return []
        if p.get("skipHeader") and rows:
            rows = rows[1:]
        if len(rows) > MAX_PAYLOAD_ROWS:
            rows = rows[:MAX_PAYLOAD_ROWS]
            self.todo(("variables",), f"{key}.path", f"only the first {MAX_PAYLOAD_ROWS} rows are taken", line)
        return rows

    @staticmethod
    def cell(text: str, cast: bool) -> Any:
        if cast:
            for kind in (int, float):
                try:
                    return kind(text)
                except ValueError:
                    pass
        return text.replace("${", "$${")

    def ensure(self) -> None:
        c, cfg = self.conv, self.config
        ensure = self.get(cfg, "ensure", (dict,), "config.ensure", "a mapping")
        if not ensure:
            return
        out = c.plan.setdefault("thresholds", [])
        lat = {"min": "min", "max": "max", "median": "p50", "p50": "p50", "p75": "p75", "p90": "p90",
               "p95": "p95", "p99": "p99", "p999": "p999", "mean": "mean"}
        for k, v in ensure.items():
            key, line = f"config.ensure.{k}", key_line(ensure, k)
            if k in lat:
                if not isinstance(v, (int, float)) or isinstance(v, bool):
                    self.pb.add(key, f"expected a number of milliseconds, got {describe(v)}", line)
                elif lat[k] == "p75":
                    self.todo(("thresholds",), key, "perftui has no p75 threshold", line)
                else:
                    out.append(f"{lat[k]} <= {v}ms")
            elif k == "maxErrorRate":
                if not isinstance(v, (int, float)) or isinstance(v, bool):
                    self.pb.add(key, f"expected a percentage, got {describe(v)}", line)
                else:
                    out.append(f"error_rate <= {v}%")
            elif k == "thresholds" and isinstance(v, list):
                for i, item in enumerate(v):
                    ok = isinstance(item, dict) and len(item) == 1
                    if ok:
                        (metric, limit), = item.items()
                        t = _artillery_metric(metric, "<=", limit)
                    if ok and t:
                        out.append(t)
                    else:
                        self.todo(("thresholds",), f"{key}[{i + 1}]", f"{item!r}: not translated", item_line(v, i))
            elif k == "conditions" and isinstance(v, list):
                for i, item in enumerate(v):
                    expr = item.get("expression") if isinstance(item, dict) else None
                    m = re.fullmatch(r"\s*([\w.]+)\s*(<=|>=|<|>|==)\s*([\d.]+)\s*", expr or "")
                    t = _artillery_metric(m.group(1), m.group(2), float(m.group(3))) if m else None
                    if t:
                        out.append(t)
                    else:
                        self.todo(("thresholds",), f"{key}[{i + 1}]", f"{expr or item!r}: not translated",
                                  item_line(v, i))
            else:
                self.todo(("thresholds",), key, "not translated", line)
        if out:
            c.note(("thresholds",), "config.ensure")
        else:
            c.plan.pop("thresholds")


def _artillery_metric(metric: str, op: str, limit: Any) -> str | None:
    if not isinstance(limit, (int, float)) or isinstance(limit, bool):
        return None
    m = re.fullmatch(r"http\.response_time\.(min|max|mean|median|p50|p90|p95|p99|p999)", metric)
    if m:
        name = {"median": "p50"}.get(m.group(1), m.group(1))
        return f"{name} {op} {limit}ms"
    if metric in ("http.requests", "http.responses"):
        return f"requests {op} {limit}"
    if metric == "http.request_rate":
        return f"rps {op} {limit}"
    return None
