"""Artillery YAML -> perftui plan.

Called through ``perftui.importers`` by ``perftui import FILE.yml`` and by ``perftui run`` /
``validate`` on a ``.yml``/``.yaml`` file. The YAML is read with PyYAML's composer so that every
mapping and list keeps its source line: wrong types are reported as ``file:line: key: ...``
(exit 2), and what has no perftui equivalent becomes a ``Todo`` beside the part it belongs to.
The mapping follows the table in docs/import.md; ``config`` is read in
``perftui.importers.artillery_config``, the YAML in ``perftui.importers.yamlsource``.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from perftui.importers.artillery_config import _ENV_TEMPLATE, _NAME, ConfigMixin
from perftui.importers.common import Conversion, Problems, describe, seconds_text
from perftui.importers.yamlsource import LDict, item_line, key_line, load_yaml
from perftui.jsonpath import compile_path
from perftui.template import BUILTINS, CONTEXT

METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
MAX_UNROLLED = 500  # loop: { count } is unrolled into steps up to this many
_TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.S)
_FN = re.compile(r"\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*(\(.*\))?\s*\Z", re.S)
_VAR = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)")


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


class _Converter(ConfigMixin):
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
