"""k6 JavaScript -> perftui plan.

Called through ``perftui.importers`` by ``perftui import script.js`` (and ``run``/``validate`` on a
``.js`` file). The script is parsed with esprima (ES2017 modules plus object spread; a syntax
error is reported with its line, exit 2). Translated: ``options`` (vus, duration, stages,
scenarios with their executors, thresholds, a few HTTP settings) and the straight-line part of the
default function: ``http.get/post/put/patch/del/request``, ``check`` on the status (and body
text, JSON fields), ``sleep``, ``res.json(...)`` captures, ``group`` bodies, and ``ws.connect``
with ``socket.send`` / ``setTimeout(close)``. Everything else is a ``Todo`` with its line and
source text. The mapping follows docs/import.md; ``options`` are read in
``perftui.importers.k6_options``, ``ws.connect`` callbacks in ``perftui.importers.k6_ws``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from perftui.errors import PlanError, Problem
from perftui.importers.common import Conversion, Problems, seconds_text
from perftui.importers.k6_options import JsonBody, OptionsMixin, Undef, Untranslatable
from perftui.importers.k6_ws import WsMixin

HTTP_METHODS = {"get": "GET", "post": "POST", "put": "PUT", "patch": "PATCH", "del": "DELETE",
                "head": "HEAD", "options": "OPTIONS"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_REF_PREFIX = re.compile(r"(\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-[^}]*)?\})(.*)\Z", re.S)
_ORIGIN = re.compile(r"(https?://[^/?#]+)(.*)\Z", re.S)


def convert_file(path: Path, text: str) -> Conversion:
    import esprima

    file = str(path)
    try:
        tree = esprima.parseModule(text, {"loc": True, "range": True})
    except esprima.Error as e:
        msg = re.sub(r"^Line \d+:\s*", "", str(e))
        raise PlanError([Problem(file, "", f"JavaScript the parser rejects: {msg} (column {e.column})",
                                 e.lineNumber)]) from None
    except RecursionError:
        raise PlanError([Problem(file, "", "the script is nested too deeply to read")]) from None
    return _K6(file, path, text).run(tree)


class _K6(WsMixin, OptionsMixin):
    def __init__(self, file: str, path: Path, text: str):
        self.file, self.path, self.text = file, path, text
        self.conv = Conversion(file, "k6")
        self.pb = Problems(file)
        self.consts: dict[str, Any] = {}
        self.functions: dict[str, Any] = {}
        self.http_names = {"http"}
        self.ws_names = {"ws"}
        self.captured: set[str] = set()
        self.undefined: dict[str, tuple] = {}
        self.targets: list[str] = []
        self.opt_lines: dict[str, int | None] = {}

    # -- helpers --
    def src(self, node) -> str:
        a, b = node.range
        text = " ".join(self.text[a:b].split())
        return text if len(text) <= 80 else text[:77] + "..."

    @staticmethod
    def line(node) -> int | None:
        return node.loc.start.line if node is not None and node.loc else None

    def todo(self, where: tuple, node, message: str | None = None) -> None:
        self.conv.todo(where, "", f"`{self.src(node)}`: {message or 'not translated'}", self.line(node))

    # -- the module --
    def run(self, tree) -> Conversion:
        c = self.conv
        c.plan["name"] = self.path.stem
        default = None
        options = None
        for node in tree.body:
            t = node.type
            if t == "ImportDeclaration":
                src = node.source.value
                for sp in node.specifiers:
                    if src == "k6/http" and sp.type in ("ImportDefaultSpecifier", "ImportNamespaceSpecifier"):
                        self.http_names.add(sp.local.name)
                    if src == "k6/ws" and sp.type in ("ImportDefaultSpecifier", "ImportNamespaceSpecifier"):
                        self.ws_names.add(sp.local.name)
                if not (src == "k6" or src.startswith("k6/")):
                    self.todo((), node, "a module perftui does not load")
                continue
            if t == "ExportDefaultDeclaration":
                d = node.declaration
                if d.type in ("FunctionDeclaration", "FunctionExpression", "ArrowFunctionExpression"):
                    default = d
                elif d.type == "Identifier" and d.name in self.functions:
                    default = self.functions[d.name]
                else:
                    self.todo((), node, "a default export that is not a function")
                continue
            decl = node.declaration if t == "ExportNamedDeclaration" else node
            if decl is None:
                self.todo((), node)
                continue
            if decl.type == "VariableDeclaration":
                for d in decl.declarations:
                    if d.id.type == "Identifier" and d.id.name == "options":
                        options = d.init
                        continue
                    self.top_const(d)
            elif decl.type == "FunctionDeclaration":
                name = decl.id.name if decl.id else ""
                self.functions[name] = decl
                if name in ("setup", "teardown", "handleSummary"):
                    self.todo((), node, f"{name}() is not run (a scenario's first steps can sign in and capture)")
            else:
                self.todo((), node)
        if options is not None:
            self.options(options)
        else:
            c.note(("phases",), "no options: k6 runs one iteration of one VU; here 1 VU for 10 s")
            c.plan["phases"] = [{"name": "default", "duration": "10s", "vus": 1}]
        steps: list[dict] = []
        scenario = {"name": "default", "steps": steps}
        c.plan["scenarios"] = [scenario]
        if default is None:
            self.conv.todo((), "", "no `export default function`: there is nothing to run", 1)
        else:
            c.locate(("scenarios", 0), self.line(default))
            self.block(default.body, ("scenarios", 0), steps, {})
            if not steps:
                self.conv.todo(("scenarios", 0), "", "the default function has no request perftui can translate",
                               self.line(default))
        for name, (where, node) in self.undefined.items():
            c.plan.setdefault("variables", {})[name] = ""
            c.todo(("variables", name), "", f"`{name}` is not defined in the script (set in setup()?); defined "
                   "empty here", self.line(node))
        self.check_threshold_endpoints()
        target = self.targets[0] if self.targets else None
        if target is None:
            c.todo(("target",), "", "no absolute URL in the script: set TARGET in the environment or edit target", 1)
            target = "${TARGET}"
        c.plan["target"] = target
        self.pb.raise_if_any()
        order = ["name", "target", "thresholds", "defaults", "variables", "phases", "scenarios"]
        c.finish(order)
        return c

    def check_threshold_endpoints(self) -> None:
        """A {name:X} threshold whose request was not translated would stop the plan loading."""
        names = {st.get("name") for sc in self.conv.plan.get("scenarios", []) for st in sc["steps"]}
        kept = []
        for t in self.conv.plan.get("thresholds", []):
            m = re.search(r"\{(.*)\}", t if isinstance(t, str) else t["threshold"])
            if m and m.group(1) not in names:
                self.conv.todo(("thresholds",), "", f"threshold {t!r}: no translated request is named "
                               f"{m.group(1)!r}; left out", self.oline("options.thresholds"))
            else:
                kept.append(t)
        if "thresholds" in self.conv.plan:
            if kept:
                self.conv.plan["thresholds"] = kept
            else:
                self.conv.plan.pop("thresholds")

    def top_const(self, d) -> None:
        if d.id.type != "Identifier" or d.init is None:
            self.todo((), d)
            return
        try:
            self.consts[d.id.name] = self.ev(d.init, {}, ())
        except Untranslatable:
            self.todo((), d)

    # -- expressions --
    def ev(self, node, local: dict, where: tuple) -> Any:
        t = node.type
        if t == "Literal":
            if node.regex:
                raise Untranslatable("a regular expression")
            v = node.value
            if isinstance(v, str):
                return v.replace("${", "$${")
            if v is None:
                raise Untranslatable("null")
            return int(v) if isinstance(v, float) and v.is_integer() and "." not in node.raw else v
        if t == "TemplateLiteral":
            out = ""
            for i, q in enumerate(node.quasis):
                out += (q.value.cooked or "").replace("${", "$${")
                if i < len(node.expressions):
                    out += self.text_of(self.ev(node.expressions[i], local, where), node.expressions[i])
            return out
        if t == "Identifier":
            name = node.name
            if name in local:
                return local[name]
            if name in self.captured:
                return "{{ " + name + " }}"
            if name in self.consts:
                return self.consts[name]
            if name == "__VU":
                return "{{ $vu }}"
            if name == "__ITER":
                return "{{ $iteration }}"
            if name == "undefined":
                raise Untranslatable("undefined")
            return Undef(name)
        if t == "MemberExpression":
            obj = node.object
            if obj.type == "Identifier" and obj.name == "__ENV" and not node.computed:
                return "${" + node.property.name + "}"
            if obj.type == "Identifier" and obj.name == "__ENV" and node.property.type == "Literal":
                return "${" + str(node.property.value) + "}"
            base = self.ev(obj, local, where)
            key = node.property.name if not node.computed else self.ev(node.property, local, where)
            if isinstance(base, dict) and isinstance(key, str) and key in base:
                return base[key]
            if isinstance(base, list) and isinstance(key, int) and 0 <= key < len(base):
                return base[key]
            if isinstance(base, str) and base.startswith("{{ ") and base.endswith(" }}") and isinstance(key, (str, int)):
                inner = base[3:-3]
                return "{{ " + (f"{inner}[{key}]" if isinstance(key, int) else f"{inner}.{key}") + " }}"
            raise Untranslatable(self.src(node))
        if t == "LogicalExpression" and node.operator in ("||", "??"):
            left = self.ev(node.left, local, where)
            right = self.ev(node.right, local, where)
            m = re.fullmatch(r"\$\{([A-Za-z_]\w*)\}", left) if isinstance(left, str) else None
            if m and isinstance(right, (str, int, float)) and not isinstance(right, bool):
                dash = ":-" if node.operator == "||" else "-"
                return "${" + m.group(1) + dash + str(right).replace("}", "") + "}"
            if isinstance(left, Undef):
                return right
            return left
        if t == "BinaryExpression" and node.operator == "+":
            a, b = self.ev(node.left, local, where), self.ev(node.right, local, where)
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
                return a + b
            # __ITER + 1 is arithmetic at run time; a plan template cannot add.
            numeric = [isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b)]
            runtime = [isinstance(x, (str, Undef)) and (isinstance(x, Undef) or "{{" in x) for x in (a, b)]
            if (numeric[0] and runtime[1]) or (numeric[1] and runtime[0]):
                raise Untranslatable(self.src(node))
            return self.text_of(a, node.left) + self.text_of(b, node.right)
        if t == "BinaryExpression" and node.operator in ("*", "/", "-"):
            a, b = self.ev(node.left, local, where), self.ev(node.right, local, where)
            if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b)):
                return {"*": a * b, "/": a / b if b else 0, "-": a - b}[node.operator]
            raise Untranslatable(self.src(node))
        if t == "UnaryExpression" and node.operator == "-":
            v = self.ev(node.argument, local, where)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return -v
        if t == "ObjectExpression":
            out = {}
            for p in node.properties:
                if p.type != "Property" or p.computed or p.kind != "init":
                    raise Untranslatable(self.src(p))
                k = p.key.name if p.key.type == "Identifier" else str(p.key.value)
                v = self.ev(p.value, local, where)
                if isinstance(v, Undef):
                    v = self.undef_text(v, p.value, where)
                out[k] = v
            return out
        if t == "ArrayExpression":
            out_l = []
            for e in node.elements:
                if e is None or e.type == "SpreadElement":
                    raise Untranslatable(self.src(node))
                v = self.ev(e, local, where)
                out_l.append(self.undef_text(v, e, where) if isinstance(v, Undef) else v)
            return out_l
        if t == "CallExpression" and _is_member(node.callee, "JSON", "stringify") and len(node.arguments) == 1:
            v = self.ev(node.arguments[0], local, where)
            return JsonBody(v)
        raise Untranslatable(self.src(node))

    def undef_text(self, v: Undef, node, where: tuple) -> str:
        if not _NAME.match(v.name):
            raise Untranslatable(v.name)
        self.undefined.setdefault(v.name, (where, node))
        return "{{ " + v.name + " }}"

    def text_of(self, v: Any, node) -> str:
        if isinstance(v, Undef):
            return self.undef_text(v, node, ())
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        if isinstance(v, str):
            return v
        raise Untranslatable(self.src(node))

    # -- the default function --
    def block(self, body, where: tuple, steps: list[dict], local: dict, ws: str | None = None) -> None:
        if body.type != "BlockStatement":  # an arrow function with an expression body
            self.statement_expr(body, where, steps, local, ws)
            return
        for st in body.body:
            self.statement(st, where, steps, local, ws)

    def swhere(self, where: tuple, steps: list) -> tuple:
        return where + ("steps", len(steps))

    def statement(self, st, where: tuple, steps: list[dict], local: dict, ws: str | None) -> None:
        t = st.type
        if t == "EmptyStatement":
            return
        if t == "VariableDeclaration":
            for d in st.declarations:
                self.declare(d, where, steps, local, ws)
            return
        if t == "ExpressionStatement":
            self.statement_expr(st.expression, where, steps, local, ws, st)
            return
        if t == "BlockStatement":
            self.block(st, where, steps, local, ws)
            return
        if t == "IfStatement" and st.alternate is None and st.test.type == "Identifier" and \
                st.test.name in self.captured:
            # if (token) { ... }: each step inside runs only when the captured value is set.
            start = len(steps)
            self.block(st.consequent, where, steps, local, ws)
            for step in steps[start:]:
                step.setdefault("if", st.test.name)
            return
        self.todo(self.swhere(where, steps), st, _what(st))

    def declare(self, d, where: tuple, steps: list[dict], local: dict, ws: str | None) -> None:
        sw = self.swhere(where, steps)
        init = d.init
        if d.id.type != "Identifier" or init is None:
            self.todo(sw, d)
            return
        name = d.id.name
        if init.type == "CallExpression" and self.http_call(init):
            step = self.request(init, sw, local)
            if step is not None:
                local[name] = _Response(len(steps) - 0, step)
                self.conv.locate(sw, self.line(d))
                steps.append(step)
            return
        cap = self.capture_of(init, local)
        if cap is not None:
            resp, kind, what = cap
            if not _NAME.match(name):
                self.todo(sw, d, "not a perftui variable name")
                return
            resp.step.setdefault("capture", []).append({kind: what, "as": name})
            self.captured.add(name)
            local.pop(name, None)
            return
        try:
            local[name] = self.ev(init, local, sw)
        except Untranslatable:
            self.todo(sw, d)

    def capture_of(self, node, local: dict):
        """``res.json('a.b')``, ``res.json().a.b``, ``JSON.parse(res.body).a``, ``res.headers['X']``."""
        chain: list[Any] = []
        while node.type == "MemberExpression":
            if node.computed:
                if node.property.type != "Literal":
                    return None
                chain.insert(0, node.property.value)
            else:
                chain.insert(0, node.property.name)
            node = node.object
        if node.type == "Identifier" and isinstance(local.get(node.name), _Response) and chain[:1] == ["headers"] \
                and len(chain) == 2:
            return local[node.name], "header", str(chain[1])
        if node.type != "CallExpression":
            return None
        callee = node.callee
        resp = None
        path = ""
        if callee.type == "MemberExpression" and not callee.computed and callee.property.name == "json" and \
                callee.object.type == "Identifier" and isinstance(local.get(callee.object.name), _Response):
            resp = local[callee.object.name]
            if node.arguments:
                a = node.arguments[0]
                if a.type != "Literal" or not isinstance(a.value, str):
                    return None
                path = a.value
        elif _is_member(callee, "JSON", "parse") and len(node.arguments) == 1:
            a = node.arguments[0]
            if a.type == "MemberExpression" and a.object.type == "Identifier" and not a.computed and \
                    a.property.name == "body" and isinstance(local.get(a.object.name), _Response):
                resp = local[a.object.name]
        if resp is None:
            return None
        parts = [p for p in path.split(".") if p] + chain
        jp = "$"
        for p in parts:
            if isinstance(p, (int, float)) or (isinstance(p, str) and p.isdigit()):
                jp += f"[{int(p)}]"
            elif isinstance(p, str) and _NAME.match(p):
                jp += "." + p
            else:
                jp += "[" + json.dumps(str(p)) + "]"
        return resp, "json", jp

    def http_call(self, node) -> bool:
        c = node.callee
        return (c.type == "MemberExpression" and not c.computed and c.object.type == "Identifier"
                and c.object.name in self.http_names and (c.property.name in HTTP_METHODS
                                                          or c.property.name == "request"))

    def statement_expr(self, e, where: tuple, steps: list[dict], local: dict, ws: str | None, st=None) -> None:
        st = st or e
        sw = self.swhere(where, steps)
        if e.type == "CallExpression":
            callee = e.callee
            if self.http_call(e):
                step = self.request(e, sw, local)
                if step is not None:
                    self.conv.locate(sw, self.line(st))
                    steps.append(step)
                return
            if callee.type == "Identifier" and callee.name == "check":
                self.check(e, sw, local)
                return
            if callee.type == "Identifier" and callee.name == "sleep" and len(e.arguments) == 1:
                try:
                    v = self.ev(e.arguments[0], local, sw)
                except Untranslatable:
                    v = None
                if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0:
                    self.conv.locate(sw, self.line(st))
                    steps.append({"ws_hold": seconds_text(v)} if ws else {"think": seconds_text(v)})
                else:
                    self.todo(sw, st, "a sleep perftui cannot compute before the run; no pause here")
                return
            if callee.type == "Identifier" and callee.name == "group" and len(e.arguments) == 2 and \
                    e.arguments[1].type in ("FunctionExpression", "ArrowFunctionExpression"):
                label = e.arguments[0].value if e.arguments[0].type == "Literal" else self.src(e.arguments[0])
                self.conv.note(sw, f"group {label!r}")
                self.block(e.arguments[1].body, where, steps, local, ws)
                return
            if callee.type == "MemberExpression" and callee.object.type == "Identifier" and \
                    callee.object.name in self.ws_names and not callee.computed and callee.property.name == "connect":
                self.ws_connect(e, where, steps, local)
                return
            if ws and callee.type == "MemberExpression" and callee.object.type == "Identifier" and \
                    callee.object.name == ws and not callee.computed:
                if self.socket_call(callee.property.name, e, where, steps, local, ws):
                    return
        self.todo(sw, st, _what(st))

    def check(self, e, sw: tuple, local: dict) -> None:
        args = e.arguments
        if len(args) < 2 or args[0].type != "Identifier" or not isinstance(local.get(args[0].name), _Response) \
                or args[1].type != "ObjectExpression":
            self.todo(sw, e, "a check on something other than a response")
            return
        step = local[args[0].name].step
        for p in args[1].properties:
            fn = p.value if p.type == "Property" else None
            label = (p.key.value if p.key.type == "Literal" else p.key.name) if fn is not None else "?"
            got = self.check_fn(fn) if fn is not None else None
            if got is None:
                self.conv.todo(sw, "", f"check {label!r} (`{self.src(p)}`): not translated", self.line(p))
                continue
            kind, value = got
            ex = step.setdefault("expect", {})
            if kind == "status":
                if "status" in ex:
                    self.conv.todo(sw, "", f"check {label!r}: a second status check; only the first is kept",
                                   self.line(p))
                else:
                    ex["status"] = value
            elif kind == "body_contains":
                ex["body_contains"] = value
            elif kind == "json_exists":
                ex.setdefault("json_exists", []).append(value)
            else:
                ex.setdefault("json_equals", {})[value[0]] = value[1]

    def check_fn(self, fn):
        if fn.type not in ("ArrowFunctionExpression", "FunctionExpression") or len(fn.params) != 1 or \
                fn.params[0].type != "Identifier":
            return None
        r = fn.params[0].name
        body = fn.body
        if body.type == "BlockStatement":
            if len(body.body) != 1 or body.body[0].type != "ReturnStatement":
                return None
            body = body.body[0].argument
        codes = self.status_test(body, r)
        if codes is not None:
            return "status", codes[0] if len(codes) == 1 else codes
        # r.body.includes('x') / r.body.indexOf('x') !== -1
        if body.type == "CallExpression" and body.callee.type == "MemberExpression" and \
                _is_member(body.callee.object, r, "body") and body.callee.property.name == "includes" and \
                len(body.arguments) == 1 and body.arguments[0].type == "Literal" and \
                isinstance(body.arguments[0].value, str):
            return "body_contains", body.arguments[0].value.replace("${", "$${")
        # r.json('a') === v, r.json().a !== undefined
        if body.type == "BinaryExpression" and body.operator in ("===", "==", "!==", "!="):
            local = {r: _Response(0, {})}
            cap = self.capture_of(body.left, local)
            right = body.right
            if cap:
                if body.operator in ("!==", "!=") and right.type == "Identifier" and right.name == "undefined":
                    return "json_exists", cap[2]
                if body.operator in ("===", "==") and right.type == "Literal" and right.value is not None:
                    return "json_equals", (cap[2], right.value)
        return None

    def status_test(self, node, r: str) -> list[int] | None:
        if node.type == "LogicalExpression" and node.operator == "||":
            a, b = self.status_test(node.left, r), self.status_test(node.right, r)
            return a + b if a is not None and b is not None else None
        if node.type == "BinaryExpression" and node.operator in ("===", "=="):
            for x, y in ((node.left, node.right), (node.right, node.left)):
                if _is_member(x, r, "status") and y.type == "Literal" and isinstance(y.value, (int, float)):
                    return [int(y.value)]
        if node.type == "CallExpression" and node.callee.type == "MemberExpression" and \
                node.callee.property.name == "includes" and node.callee.object.type == "ArrayExpression" and \
                len(node.arguments) == 1 and _is_member(node.arguments[0], r, "status"):
            els = node.callee.object.elements
            if all(el is not None and el.type == "Literal" and isinstance(el.value, (int, float)) for el in els):
                return [int(el.value) for el in els]
        return None

    def url(self, node, sw: tuple, local: dict) -> str | None:
        try:
            v = self.base_env(node, local, sw)
            if v is None:
                v = self.ev(node, local, sw)
        except Untranslatable as e:
            self.todo(sw, node, f"a URL perftui cannot build before the run ({e}); the request is left out")
            return None
        if isinstance(v, Undef):
            v = "${" + v.name + "}"
            self.conv.todo(sw, "", f"`{v}`: the URL is a name the script does not define; read from the "
                           "environment", self.line(node))
        if not isinstance(v, str):
            self.todo(sw, node, "not a URL; the request is left out")
            return None
        if node.type == "Literal" and "$${" in v:
            # '${BASE_URL}/x' in quotes: k6 would send the text as written; the author meant a
            # template literal, so it is read as one (from the environment).
            v = v.replace("$${", "${")
            self.conv.todo(sw, "", f"`{self.src(node)}` is in quotes, not backticks: k6 sends ${{...}} as "
                           "written; read here as an environment variable", self.line(node))
        m = _ORIGIN.match(v) or _REF_PREFIX.match(v)
        if m:
            origin, rest = m.group(1), m.group(2)
            if not self.targets:
                self.targets.append(origin)
            if origin == self.targets[0]:
                return rest if rest.startswith("/") else "/" + rest
        return v

    def base_env(self, node, local: dict, sw: tuple) -> str | None:
        """`${BASE_URL}/x` or BASE_URL + '/x' with BASE_URL defined nowhere in the script: the
        usual way to pass the target, so it is read from the environment (and becomes target)."""
        if node.type == "TemplateLiteral" and node.expressions and not node.quasis[0].value.cooked:
            first, rest = node.expressions[0], None
        elif node.type == "BinaryExpression" and node.operator == "+":
            first, rest = node.left, node.right
        else:
            return None
        if first.type != "Identifier" or not isinstance(self.ev(first, local, sw), Undef):
            return None
        out = "${" + first.name + "}"
        self.conv.todo(sw, "", f"`{first.name}` is not defined in the script: read from the environment "
                       f"({first.name}=http://host:port)", self.line(first))
        if rest is not None:
            return out + self.text_of(self.ev(rest, local, sw), rest)
        for i, q in enumerate(node.quasis):
            if i:
                out += (q.value.cooked or "").replace("${", "$${")
            if 0 < i < len(node.expressions):
                out += self.text_of(self.ev(node.expressions[i], local, sw), node.expressions[i])
        return out

    def request(self, e, sw: tuple, local: dict) -> dict | None:
        method = e.callee.property.name
        args = list(e.arguments)
        if method == "request":
            if not args or args[0].type != "Literal" or not isinstance(args[0].value, str):
                self.todo(sw, e, "http.request with a method perftui cannot read")
                return None
            verb = args.pop(0).value.upper()
        else:
            verb = HTTP_METHODS[method]
        if not args:
            self.todo(sw, e, "a request without a URL")
            return None
        url = self.url(args[0], sw, local)
        if url is None:
            return None
        step: dict[str, Any] = {}
        if verb != "GET":
            step["method"] = verb
        step["url"] = url
        has_body = method not in ("get", "head") or (method == "request")
        body_node = args[1] if has_body and len(args) > 1 else None
        params_node = args[2] if has_body and len(args) > 2 else args[1] if not has_body and len(args) > 1 else None
        if body_node is not None and not (body_node.type == "Literal" and body_node.value is None):
            try:
                body = self.ev(body_node, local, sw)
            except Untranslatable as exc:
                body = None
                self.todo(sw, body_node, f"a body perftui cannot build before the run ({exc}); no body sent")
            if isinstance(body, Undef):
                self.conv.todo(sw, "", f"body `{body.name}` is not defined in the script; no body sent",
                               self.line(body_node))
            elif isinstance(body, JsonBody):
                step["json"] = body.value
            elif isinstance(body, dict):
                from urllib.parse import quote

                step["body"] = "&".join(f"{quote(str(k))}={quote(str(v), safe='{}$() ')}" for k, v in body.items())
                step["headers"] = {"Content-Type": "application/x-www-form-urlencoded"}
                self.conv.note(sw, "an object body: k6 sends it form-encoded")
            elif isinstance(body, (str, int, float)) and not isinstance(body, bool):
                step["body"] = str(body)
            elif body is not None:
                self.todo(sw, body_node, "not translated; no body sent")
        if params_node is not None:
            self.params(params_node, step, sw, local)
        return step

    def params(self, node, step: dict, sw: tuple, local: dict) -> None:
        try:
            params = self.ev(node, local, sw)
        except Untranslatable as e:
            self.todo(sw, node, f"request params perftui cannot read ({e})")
            return
        if not isinstance(params, dict):
            self.todo(sw, node, "request params that are not an object")
            return
        for k, v in params.items():
            if k == "headers" and isinstance(v, dict):
                h = step.setdefault("headers", {})
                for hk, hv in v.items():
                    if isinstance(hv, (str, int, float)) and not isinstance(hv, bool):
                        h[str(hk)] = str(hv)
                    else:
                        self.conv.todo(sw, "", f"header {hk}: not translated", self.line(node))
            elif k == "tags" and isinstance(v, dict) and isinstance(v.get("name"), str):
                step["name"] = v["name"]
                if len(v) > 1:
                    self.conv.todo(sw, "", "tags other than name: not translated", self.line(node))
            elif k == "timeout" and isinstance(v, (str, int, float)):
                step["timeout"] = self.dur(v)
            else:
                self.conv.todo(sw, "", f"params.{k}: not translated", self.line(node))

class _Response:
    """A variable holding a response: its step, so later captures and checks attach to it."""

    def __init__(self, index: int, step: dict):
        self.index, self.step = index, step


def _is_member(node, obj: str, prop: str) -> bool:
    return (node is not None and node.type == "MemberExpression" and not node.computed
            and node.object.type == "Identifier" and node.object.name == obj and node.property.name == prop)


def _what(st) -> str:
    return {
        "IfStatement": "a branch: perftui steps run in order (a step's `if` tests one variable)",
        "ForStatement": "a loop: write the steps out, or use --vus/iterations",
        "ForOfStatement": "a loop: write the steps out",
        "ForInStatement": "a loop: write the steps out",
        "WhileStatement": "a loop: write the steps out",
        "ReturnStatement": "a return value is not used by perftui",
        "TryStatement": "try/catch: not translated",
    }.get(st.type, "not translated")
