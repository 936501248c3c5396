"""Artillery YAML -> perftui plan.

Called through ``perftui.importers`` by ``perftui import FILE.yml`` and by ``perftui run`` /
``validate`` on a ``.yml``/``.yaml`` file. The YAML is read with PyYAML's composer so that every
mapping and list keeps its source line: wrong types are reported as ``file:line: key: ...``
(exit 2), and what has no perftui equivalent becomes a ``Todo`` beside the part it belongs to.
The mapping follows the table in docs/import.md.
"""

from __future__ import annotations

import copy
import csv
import datetime as _dt
import re
from pathlib import Path
from typing import Any

from perftui.errors import PlanError, Problem
from perftui.importers.common import Conversion, Problems, describe, seconds_text
from perftui.jsonpath import compile_path
from perftui.template import BUILTINS, CONTEXT
from perftui.units import parse_duration

METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
MAX_UNROLLED = 500  # loop: { count } is unrolled into steps up to this many
MAX_PAYLOAD_ROWS = 10_000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.S)
_ENV_TEMPLATE = re.compile(r"\s*\$(?:processEnvironment|env)\.([A-Za-z_][A-Za-z0-9_]*)\s*\Z")
_FN = re.compile(r"\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*(\(.*\))?\s*\Z", re.S)
_VAR = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)")


# ---- YAML with lines ---------------------------------------------------------------------------

class LDict(dict):
    line: int | None = None
    key_lines: dict


class LList(list):
    line: int | None = None
    item_lines: list


def load_yaml(text: str, file: str) -> Any:
    """Parse YAML into dicts/lists that remember the line of each key and item."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else _build(loader, node, 0)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = e.problem or "syntax error"
        if e.context:
            what = f"{e.context}, {what}"
        raise PlanError([Problem(file, "", f"invalid YAML: {what}", mark.line + 1 if mark else None)]) from None
    except yaml.YAMLError as e:
        raise PlanError([Problem(file, "", f"invalid YAML: {e}")]) from None
    except RecursionError:
        raise PlanError([Problem(file, "", "the YAML is nested too deeply")]) from None
    finally:
        loader.dispose()


def _build(loader, node, depth: int) -> Any:
    import yaml

    if depth > 64:
        raise PlanError([Problem(loader.name, "", "the YAML is nested too deeply (or refers to itself)",
                                 node.start_mark.line + 1)])
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out = LDict()
        out.line = node.start_mark.line + 1
        out.key_lines = {}
        for k, v in node.value:
            key = loader.construct_object(k, deep=True) if isinstance(k, yaml.ScalarNode) else str(k.value)
            key = _scalar(key)
            key = key if isinstance(key, str) else str(key).lower() if isinstance(key, bool) else str(key)
            out[key] = _build(loader, v, depth + 1)
            out.key_lines[key] = k.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        out = LList()
        out.line = node.start_mark.line + 1
        out.item_lines = []
        for item in node.value:
            out.append(_build(loader, item, depth + 1))
            out.item_lines.append(item.start_mark.line + 1)
        return out
    return _scalar(loader.construct_object(node, deep=True))


def _scalar(value: Any) -> Any:
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def key_line(d: Any, key: str) -> int | None:
    if isinstance(d, LDict):
        return d.key_lines.get(key, d.line)
    return None


def item_line(lst: Any, i: int) -> int | None:
    if isinstance(lst, LList) and i < len(lst.item_lines):
        return lst.item_lines[i]
    return getattr(lst, "line", None)


# ---- conversion ---------------------------------------------------------------------------------

def convert_file(path: Path, text: str) -> Conversion:
    file = str(path)
    doc = load_yaml(text, file)
    pb = Problems(file)
    if not isinstance(doc, dict):
        pb.add("", f"an Artillery script is a mapping with config: and scenarios:, got {describe(doc)}", 1)
        pb.raise_if_any()
    config = doc.get("config", LDict())
    if not isinstance(config, dict):
        pb.add("config", f"expected a mapping, got {describe(config)}", key_line(doc, "config"))
        pb.raise_if_any()
    base = _Converter(file, path, doc, config, pb).run(None)
    envs = config.get("environments")
    if envs is not None and not isinstance(envs, dict):
        pb.add("config.environments", f"expected a mapping of environment names, got {describe(envs)}",
               key_line(config, "environments"))
    elif envs:
        for name, env in envs.items():
            where = f"config.environments.{name}"
            if not isinstance(env, dict):
                pb.add(where, f"expected a mapping of config keys, got {describe(env)}", key_line(envs, name))
                continue
            merged = _merge(config, env)
            base.environments[str(name)] = _Converter(file, path, doc, merged, pb).run(str(name))
        names = ", ".join(base.environments)
        base.note((), f"Artillery environments ({names}): `perftui import -o PLAN.toml` writes one plan per "
                      f"environment, PLAN.<environment>.toml; this plan is the config without an environment.")
    pb.raise_if_any()
    return base


def _merge(base: dict, over: dict) -> dict:
    """An environment's keys over the config (mappings merged, everything else replaced), as
    Artillery does; line information kept from whichever side a value came from."""
    out = LDict(base)
    out.line = getattr(base, "line", None)
    out.key_lines = dict(getattr(base, "key_lines", {}))
    for k, v in over.items():
        if k == "environments":
            continue
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
        if isinstance(over, LDict):
            out.key_lines[k] = over.key_lines.get(k)
    out.pop("environments", None)
    return out


class _Converter:
    def __init__(self, file: str, path: Path, doc: dict, config: dict, pb: Problems):
        self.file, self.path, self.doc, self.config, self.pb = file, path, doc, config, pb
        self.conv = Conversion(file, "Artillery")
        self.used: dict[str, tuple[tuple, str, int | None]] = {}  # template names -> first use
        self.defined: set[str] = set()
        self.ws = False
        self.ws_path = "/"

    # -- helpers --
    def get(self, d: dict, key: str, kinds: tuple[type, ...], where: str, expected: str) -> Any:
        if key not in d:
            return None
        value = d[key]
        if isinstance(value, bool) and bool not in kinds:
            ok = False
        else:
            ok = isinstance(value, kinds)
        if not ok:
            self.pb.add(where, f"expected {expected}, got {describe(value)}", key_line(d, key))
            return None
        return value

    def todo(self, where: tuple, key: str, message: str, line: int | None) -> None:
        self.conv.todo(where, key, message, line)

    def template(self, text: str, where: tuple, key: str, line: int | None) -> str:
        """An Artillery string as a perftui template: ``${`` escaped (perftui reads it as an
        environment reference), ``{{ $processEnvironment.X }}`` -> ``${X}``, ``{{ $uuid }}`` ->
        ``{{ $uuid() }}``; unknown functions are TODOs."""
        text = text.replace("${", "$${")

        def sub(m: re.Match) -> str:
            inner = m.group(1)
            env = _ENV_TEMPLATE.match(inner)
            if env:
                return "${" + env.group(1) + "}"
            fn = _FN.match(inner)
            if fn:
                name, args = fn.group(1), fn.group(2)
                if name in CONTEXT and not args:
                    return m.group(0)
                if name in BUILTINS:
                    return "{{ $" + name + (args or "()") + " }}"
                self.todo(where, key, f"{{{{{inner}}}}} has no perftui equivalent (built-ins: "
                          + ", ".join(f"${b}()" for b in BUILTINS) + "); sent empty", line)
                return ""
            var = _VAR.match(inner)
            if var and var.group(1) not in self.used:
                self.used[var.group(1)] = (where, key, line)
            return m.group(0)

        return _TEMPLATE.sub(sub, text)

    def value(self, v: Any, where: tuple, key: str, line: int | None) -> Any:
        """A JSON body / ws message value: templates converted, nulls (TOML has none) noted."""
        if isinstance(v, str):
            return self.template(v, where, key, line)
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                if x is None:
                    self.todo(where, f"{key}.{k}", "null has no TOML spelling; the key is left out", key_line(v, k))
                    continue
                out[str(k)] = self.value(x, where, f"{key}.{k}", key_line(v, k))
            return out
        if isinstance(v, list):
            out_l = []
            for i, x in enumerate(v):
                if x is None:
                    self.todo(where, f"{key}[{i + 1}]", "null has no TOML spelling; the item is left out",
                              item_line(v, i))
                    continue
                out_l.append(self.value(x, where, f"{key}[{i + 1}]", item_line(v, i)))
            return out_l
        return v

    # -- the whole script --
    def run(self, env: str | None) -> Conversion:
        c, cfg, doc = self.conv, self.config, self.doc
        plan = c.plan
        plan["name"] = self.path.stem + (f" ({env})" if env else "")
        top_known = {"config", "scenarios"}
        for k in doc:
            if k not in top_known:
                what = ("runs once before/after the whole test" if k in ("before", "after")
                        else "is not an Artillery top-level key")
                self.todo((), k, f"{what}; not translated", key_line(doc, k))
        target = cfg.get("target")
        ws_target = None
        if target is None:
            self.todo(("target",), "config.target", "no target in the script: set TARGET or edit target",
                      key_line(doc, "config"))
            plan["target"] = "${TARGET}"
        elif not isinstance(target, str):
            self.pb.add("config.target", f"expected a URL string, got {describe(target)}", key_line(cfg, "target"))
        else:
            t = self.template(target, ("target",), "config.target", key_line(cfg, "target"))
            m = re.match(r"(wss?)://([^/?#]*)(.*)\Z", t)
            if m:
                scheme = "https" if m.group(1) == "wss" else "http"
                ws_target = m.group(3) or "/"
                t = f"{scheme}://{m.group(2)}"
                c.note(("target",), f"config.target {target}: WebSocket steps connect to {ws_target} on it")
            plan["target"] = t
        self.ws_path = ws_target or "/"
        self.config_keys()
        self.scenarios()
        self.undefined_names()
        if not plan.get("defaults"):
            plan.pop("defaults", None)
        # Keys in the order a plan is usually read.
        c.finish(["name", "target", "thresholds", "defaults", "variables", "phases", "scenarios"])
        return c

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

    # -- scenarios --
    def scenarios(self) -> None:
        c, doc = self.conv, self.doc
        scenarios = self.get(doc, "scenarios", (list,), "scenarios", "a list of scenarios")
        if scenarios is None:
            if "scenarios" not in doc:
                self.todo((), "scenarios", "the script has no scenarios: there is nothing to run", 1)
            return
        out = c.plan.setdefault("scenarios", [])
        for i, sc in enumerate(scenarios):
            key, line = f"scenarios[{i + 1}]", item_line(scenarios, i)
            if not isinstance(sc, dict):
                self.pb.add(key, f"expected a mapping (name, weight, flow), got {describe(sc)}", line)
                continue
            where = ("scenarios", len(out))
            s: dict[str, Any] = {}
            name = self.get(sc, "name", (str, int, float), f"{key}.name", "a string")
            if name is not None:
                s["name"] = str(name)
            weight = self.get(sc, "weight", (int, float), f"{key}.weight", "a number")
            if weight is not None:
                s["weight"] = weight
            engine = sc.get("engine", "http")
            if engine not in ("http", "ws", "websocket"):
                self.todo((), f"{key}.engine", f"engine {engine!r} has no perftui equivalent; the scenario "
                          f"{name or i + 1!r} is left out", key_line(sc, "engine"))
                continue
            flow = self.get(sc, "flow", (list,), f"{key}.flow", "a list of steps")
            if flow is None:
                if "flow" not in sc:
                    self.pb.add(key, "a scenario needs flow:", line)
                continue
            c.locate(where, line)
            for k in sc:
                if k in ("beforeScenario", "afterScenario", "beforeRequest", "afterResponse"):
                    self.todo(where, f"{key}.{k}", f"processor hook {sc[k]!r} is not run", key_line(sc, k))
                elif k not in ("name", "weight", "engine", "flow"):
                    self.todo(where, f"{key}.{k}", "not translated", key_line(sc, k))
            steps: list[dict] = []
            s["steps"] = steps
            out.append(s)
            self.ws = engine != "http"
            if self.ws and not (flow and isinstance(flow[0], dict) and "connect" in flow[0]):
                steps.append({"ws_connect": self.ws_path})
                c.note(where + ("steps", 0), "engine: ws connects to the target when the scenario starts")
            self.flow(flow, f"{key}.flow", where, steps)

    def flow(self, flow: list, key: str, where: tuple, steps: list[dict], depth: int = 0) -> None:
        for i, item in enumerate(flow):
            ikey, line = f"{key}[{i + 1}]", item_line(flow, i)
            swhere = where + ("steps", len(steps))
            if not isinstance(item, dict) or not item:
                self.pb.add(ikey, f"expected a step such as get: {{ url: ... }}, got {describe(item)}", line)
                continue
            action = next(iter(item))
            if "loop" in item:
                self.loop(item, ikey, line, where, steps, depth)
                continue
            if len(item) > 1:
                for k in list(item)[1:]:
                    self.todo(swhere, f"{ikey}.{k}", "not translated", key_line(item, k))
            arg = item[action]
            if action in METHODS:
                step = self.request(action, arg, f"{ikey}.{action}", swhere, key_line(item, action))
                if step is not None:
                    self.conv.locate(swhere, line)
                    steps.append(step)
            elif action == "think":
                secs = self.duration(arg, f"{ikey}.think", line)
                if secs is not None:
                    self.conv.locate(swhere, line)
                    steps.append({"ws_hold": seconds_text(secs)} if self.ws else {"think": seconds_text(secs)})
                    if self.ws:
                        self.conv.note(swhere, "think in a ws scenario: the socket stays open, messages counted")
            elif self.ws and action == "connect":
                url = arg if isinstance(arg, str) else arg.get("url", arg.get("target")) if isinstance(arg, dict) \
                    else None
                if not isinstance(url, str):
                    self.todo(swhere, f"{ikey}.connect", "only connect: URL is translated", line)
                    url = self.ws_path
                url = self.template(url, swhere, f"{ikey}.connect", line)
                m = re.match(r"wss?://([^/?#]+)(.*)\Z", url)
                host = re.match(r"https?://([^/?#]+)", self.conv.plan.get("target", ""))
                if m and host and m.group(1) == host.group(1):
                    url = m.group(2) or "/"  # on the target: a path, so that --target moves it too
                step = {"ws_connect": url}
                if isinstance(arg, dict) and isinstance(arg.get("headers"), dict):
                    step["headers"] = self.headers(arg["headers"], swhere, f"{ikey}.connect.headers", line)
                self.conv.locate(swhere, line)
                steps.append(step)
            elif self.ws and action == "send":
                msg = arg
                if isinstance(arg, dict) and "payload" in arg:
                    msg = arg["payload"]
                    for k in arg:
                        if k != "payload":
                            self.todo(swhere, f"{ikey}.send.{k}", "not translated (perftui's ws_request / "
                                      "ws_expect wait for replies)", key_line(arg, k))
                if msg is None:
                    self.pb.add(f"{ikey}.send", "expected a message (text or a mapping)", line)
                    continue
                self.conv.locate(swhere, line)
                steps.append({"ws_send": self.value(msg, swhere, f"{ikey}.send", line)})
            elif action == "function":
                self.todo(swhere, ikey, f"processor function {arg!r} is not run", line)
            elif action == "log":
                self.todo(swhere, ikey, f"log {arg!r}: perftui does not print from scenarios", line)
            else:
                self.todo(swhere, ikey, f"{action}: not translated", line)

    def loop(self, item: dict, key: str, line: int | None, where: tuple, steps: list[dict], depth: int) -> None:
        body = item["loop"]
        if not isinstance(body, list):
            self.pb.add(f"{key}.loop", f"expected a list of steps, got {describe(body)}", line)
            return
        count = self.get(item, "count", (int,), f"{key}.count", "a whole number")
        swhere = where + ("steps", len(steps))
        for k in item:
            if k not in ("loop", "count"):
                self.todo(swhere, f"{key}.{k}", "only loop with count is translated; the body runs once",
                          key_line(item, k))
        if count is None:
            if "count" not in item:
                self.todo(swhere, key, "a loop without count runs until the scenario ends in Artillery; "
                          "the body runs once", line)
            count = 1
        if count < 0:
            self.pb.add(f"{key}.count", "expected 0 or more", key_line(item, "count"))
            return
        start = len(steps)
        self.flow(body, f"{key}.loop", where, steps, depth + 1)
        once = steps[start:]
        if count * len(once) > MAX_UNROLLED:
            self.todo(swhere, f"{key}.count", f"loop of {count} x {len(once)} steps is more than {MAX_UNROLLED} "
                      "unrolled steps; the body runs once", line)
            count = 1
        del steps[start:]
        for _ in range(count):
            steps.extend(copy.deepcopy(once))
        if once and count != 1:
            self.conv.note(swhere, f"loop: count {count} (the {len(once)} step(s) below written {count} times)")

    def request(self, method: str, arg: Any, key: str, where: tuple, line: int | None) -> dict | None:
        if isinstance(arg, str):
            arg = {"url": arg}
        if not isinstance(arg, dict):
            self.pb.add(key, f"expected a mapping (url, json, headers, ...), got {describe(arg)}", line)
            return None
        step: dict[str, Any] = {}
        url = self.get(arg, "url", (str,), f"{key}.url", "a URL string")
        if url is None:
            if "url" not in arg:
                self.pb.add(key, "a request needs url:", line)
            return None
        if "name" in arg:
            step["name"] = str(arg["name"])
        if method != "get":
            step["method"] = method.upper()
        step["url"] = self.template(url, where, f"{key}.url", key_line(arg, "url"))
        expect: dict[str, Any] = {}
        json_captures: dict[str, str] = {}
        for k, v in arg.items():
            kk, kl = f"{key}.{k}", key_line(arg, k)
            if k in ("url", "name"):
                continue
            if k == "headers":
                h = self.headers(v, where, kk, kl)
                if h:
                    step["headers"] = h
            elif k == "cookie" and isinstance(v, dict):
                cookie = "; ".join(f"{ck}={cv}" for ck, cv in v.items())
                step.setdefault("headers", {})["Cookie"] = self.template(cookie, where, kk, kl)
            elif k == "qs":
                if not isinstance(v, dict):
                    self.pb.add(kk, f"expected a mapping of query parameters, got {describe(v)}", kl)
                    continue
                q = {}
                for qk, qv in v.items():
                    if isinstance(qv, (str, int, float, bool)):
                        q[str(qk)] = self.template(qv, where, f"{kk}.{qk}", kl) if isinstance(qv, str) else qv
                    else:
                        self.todo(where, f"{kk}.{qk}", f"{describe(qv)} as a query value: not translated", kl)
                if q:
                    step["query"] = q
            elif k == "json":
                if v is None:
                    self.todo(where, kk, "json: null has no TOML spelling; no body sent", kl)
                else:
                    step["json"] = self.value(v, where, kk, kl)
            elif k == "body":
                step["body"] = self.template(v if isinstance(v, str) else str(v), where, kk, kl)
            elif k == "form" and isinstance(v, dict):
                from urllib.parse import quote

                parts = [f"{quote(str(fk))}={quote(str(fv), safe='{}$() ')}" for fk, fv in v.items()]
                step["body"] = self.template("&".join(parts), where, kk, kl)
                step.setdefault("headers", {})["Content-Type"] = "application/x-www-form-urlencoded"
            elif k == "capture":
                caps = v if isinstance(v, list) else [v]
                out = []
                for n, cap in enumerate(caps):
                    got = self.capture(cap, f"{kk}" + (f"[{n + 1}]" if isinstance(v, list) else ""), where,
                                       item_line(v, n) if isinstance(v, list) else kl)
                    if got:
                        out.append(got)
                        if "json" in got:
                            json_captures[got["as"]] = got["json"]
                if out:
                    step["capture"] = out
            elif k == "expect":
                checks = v if isinstance(v, list) else [{ek: ev} for ek, ev in v.items()] if isinstance(v, dict) \
                    else None
                if checks is None:
                    self.pb.add(kk, f"expected a list of checks (- statusCode: 200), got {describe(v)}", kl)
                    continue
                for n, chk in enumerate(checks):
                    self.expect(chk, f"{kk}[{n + 1}]", where, item_line(v, n) if isinstance(v, list) else kl,
                                expect, json_captures)
            elif k == "ifTrue":
                if isinstance(v, str) and _NAME.match(v.strip()):
                    step["if"] = v.strip()
                    self.used.setdefault(v.strip(), (where, kk, kl))
                else:
                    self.todo(where, kk, f"condition {v!r}: perftui's `if` takes a variable name; the step "
                              "always runs", kl)
            elif k in ("beforeRequest", "afterResponse"):
                self.todo(where, kk, f"processor hook {v!r} is not run", kl)
            elif k == "think":
                secs = self.duration(v, kk, kl)
                if secs is not None:
                    step["think"] = seconds_text(secs)
            else:
                self.todo(where, kk, "not translated", kl)
        if expect:
            step["expect"] = expect
        for cap in step.get("capture", []):
            self.defined.add(cap["as"])
        return step

    def capture(self, cap: Any, key: str, where: tuple, line: int | None) -> dict | None:
        if not isinstance(cap, dict):
            self.pb.add(key, f"expected a mapping (json/header/regexp and as), got {describe(cap)}", line)
            return None
        name = self.get(cap, "as", (str,), f"{key}.as", "a variable name")
        if name is None:
            if "as" not in cap:
                self.pb.add(key, "a capture needs as:", line)
            return None
        out: dict[str, Any] = {}
        for k, v in cap.items():
            kl = key_line(cap, k)
            if k == "as":
                continue
            if k == "json" and isinstance(v, str):
                path = v if v.startswith("$") else "$." + v.lstrip(".")
                try:
                    compile_path(path)
                except ValueError as e:
                    self.todo(where, f"{key}.json", f"{v!r}: {e}; not captured", kl)
                    return None
                out["json"] = path
            elif k == "header" and isinstance(v, str):
                out["header"] = v
            elif k == "regexp" and isinstance(v, str):
                out["regex"] = v
            elif k == "group" and "regexp" in cap:
                if v not in (1, "1"):
                    self.todo(where, f"{key}.group", f"group {v!r}: perftui captures group 1", kl)
            elif k in ("strict",):
                self.conv.note(where, f"{key}.strict: {v} (a value not found leaves the variable unset)")
            else:
                self.todo(where, f"{key}.{k}", "not translated", kl)
        if len([k for k in out if k in ("json", "header", "regex")]) != 1:
            self.todo(where, key, "only json, header or regexp captures are translated; not captured", line)
            return None
        out["as"] = name
        return out

    def expect(self, chk: Any, key: str, where: tuple, line: int | None, expect: dict, captures: dict) -> None:
        if not isinstance(chk, dict) or len(chk) != 1:
            self.pb.add(key, f"expected one check such as statusCode: 200, got {describe(chk)}", line)
            return
        (k, v), = chk.items()
        if k == "statusCode":
            codes = v if isinstance(v, list) else [v]
            try:
                ints = [int(x) for x in codes if not isinstance(x, bool)]
            except (TypeError, ValueError):
                ints = []
            if len(ints) != len(codes) or not ints:
                self.pb.add(f"{key}.statusCode", f"expected a status code or a list of them, got {describe(v)}", line)
                return
            prev = expect.get("status")
            if prev is not None:
                self.todo(where, key, "a second statusCode check: both must hold in Artillery; only the first "
                          "is kept", line)
                return
            expect["status"] = ints[0] if len(ints) == 1 and not isinstance(v, list) else ints
        elif k == "hasProperty" and isinstance(v, str):
            path = v if v.startswith("$") else "$." + v
            try:
                compile_path(path)
            except ValueError as e:
                self.todo(where, key, f"hasProperty {v!r}: {e}", line)
                return
            expect.setdefault("json_exists", []).append(path)
        elif k == "contentType" and isinstance(v, str):
            if "json" in v.lower():
                if "$" not in expect.setdefault("json_exists", []):
                    expect["json_exists"].append("$")
                self.conv.note(where, f"expect contentType {v}: the body must parse as JSON (json_exists $)")
            else:
                self.todo(where, key, f"contentType {v!r}: perftui checks no response headers", line)
        elif k == "equals" and isinstance(v, list) and len(v) == 2:
            pair = None
            for a, b in ((v[0], v[1]), (v[1], v[0])):
                m = re.fullmatch(r"\s*\{\{\s*([A-Za-z_]\w*)\s*\}\}\s*", a) if isinstance(a, str) else None
                if m and m.group(1) in captures and isinstance(b, (str, int, float, bool)) and \
                        not (isinstance(b, str) and "{{" in b):
                    pair = (captures[m.group(1)], b)
                    break
            if pair is None:
                self.todo(where, key, f"equals {v!r}: only a value captured from this response's JSON compared "
                          "with a constant is translated", line)
                return
            expect.setdefault("json_equals", {})[pair[0]] = pair[1]
        else:
            self.todo(where, key, f"{k}: not translated", line)

    def undefined_names(self) -> None:
        """Names the templates use that nothing defines: Artillery sends them empty (a processor
        may have set them); perftui rejects them, so they are defined empty with a TODO."""
        variables = self.conv.plan.get("variables", {})
        for name, (where, key, line) in self.used.items():
            if name in self.defined or name in variables:
                continue
            self.conv.plan.setdefault("variables", {})[name] = ""
            self.todo(("variables", name), key, f"{{{{ {name} }}}} is never defined or captured (a processor may "
                      f"set it); defined empty here, as Artillery would send it", line)


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
