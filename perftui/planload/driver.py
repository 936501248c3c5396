"""The field-wise driver of plan validation: converts a plan table by table and key by key (so
one bad value does not hide the others), picks a step's kind from its action key
(``perftui.plan.steps.step_type``), turns msgspec's verdicts (wrong type, out of the range its
``msgspec.Meta`` declares, unknown key) into messages in TOML words with file, line and key, and
hints at the Artillery/k6/Locust spelling of a key. The checks of meaning are in ``checks.py`` and
``validate.py``."""

from __future__ import annotations

import difflib
import math
import re
import tomllib
import types
import typing
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET

from perftui.errors import Problem
from perftui.plan import DataFile, Profile
from perftui.plan import Capture, Defaults, DemoOptions, Expect, FindLimit, GeneratorLimits, GraphQLStep, HttpStep, McpStep, MetricSeries, Monitor, PROTOCOL_ACTIONS, Phase, Plan, STEP_TYPES, Scenario, Step, ThinkStep, WsCloseStep, WsConnectStep, WsExpectStep, WsHoldStep, WsRequestStep, WsSendStep, step_type
from perftui.planload.source import Path_, _HEADER_NAME, _HEADER_VALUE_BAD, _Locator, _describe, _expected, _quote, _strip_unset, format_path
from perftui.template import TemplateError, compile_template
from perftui.units import parse_duration, printable


_FAIL: Any = object()

_TABLE_WORDS: dict[type, str] = {
    Plan: "at the top level",
    Defaults: "in [defaults]",
    DemoOptions: "in [demo]",
    Phase: "in [[phases]]",
    Scenario: "in [[scenarios]]",
    HttpStep: "in a step ([[scenarios.steps]])",
    ThinkStep: "in a step ([[scenarios.steps]])",
    GraphQLStep: "in a step ([[scenarios.steps]])",
    McpStep: "in a step ([[scenarios.steps]])",
    WsConnectStep: "in a step ([[scenarios.steps]])",
    WsSendStep: "in a step ([[scenarios.steps]])",
    WsRequestStep: "in a step ([[scenarios.steps]])",
    WsExpectStep: "in a step ([[scenarios.steps]])",
    WsHoldStep: "in a step ([[scenarios.steps]])",
    WsCloseStep: "in a step ([[scenarios.steps]])",
    Capture: "in a capture entry",
    Expect: "in expect",
    Monitor: "in [monitor]",
    MetricSeries: "in a [monitor] series entry",
    GeneratorLimits: "in [monitor.generator]",
    DataFile: "in a data file table ([variables.NAME] with file)",
    Profile: "in a [profiles.NAME] section",
    FindLimit: "in [find_limit]",
}

# Keys people bring from Artillery and k6, with what perftui calls them.
_FOREIGN_KEYS: dict[str, tuple[str | None, str]] = {
    "arrivalRate": ("arrival_rate", "Artillery"),
    "rampTo": ("ramp_to", "Artillery"),
    "maxVusers": ("max_in_flight", "Artillery"),
    "qs": ("query", "Artillery"),
    "ifTrue": ("if", "Artillery"),
    "flow": ("steps", "Artillery"),
    "statusCode": ("status", "Artillery"),
    "hasProperty": ("json_exists", "Artillery"),
    "equals": ("json_equals", "Artillery"),
    "ensure": ("thresholds", "Artillery"),
    "stages": ("phases", "k6"),
    "target": ("ramp_to", "k6 stages"),
    "rate": ("arrival_rate", "k6"),
    "think_time": ("think", ""),
    "wait": ("think", ""),
    "sleep": ("think", ""),
    "params": ("query", ""),
    "status_code": ("status", ""),
    "statuses": ("status", ""),
    "users": ("vus", "Locust"),
    "concurrency": ("vus", ""),
    "http": ("defaults", "Artillery config.http"),
    "timeout": ("defaults", "Artillery config.http.timeout"),
    "headers": ("defaults", ""),
}
_FOREIGN_NOTES = {
    "config": "Artillery's config: section is not used; put target, phases and variables at the top level",
    "processor": "JavaScript processors are not supported; use templates, capture and if",
    "beforeRequest": "JavaScript hooks are not supported; use templates, capture and if",
    "afterResponse": "JavaScript hooks are not supported; use templates, capture and if",
    "payload": 'read CSV or JSON data with [variables.NAME] file = "data.csv" (see docs/plans.md, "Data from files")',
    "environments": "Artillery's environments are [profiles.NAME] sections here, chosen with --profile NAME",
    "plugins": "plugins are not used; per-endpoint metrics and expect checks are built in",
    "get": 'write method = "GET" and url = "..." (Artillery\'s "- get:" step)',
    "post": 'write method = "POST" and url = "..." (Artillery\'s "- post:" step)',
    "put": 'write method = "PUT" and url = "..." (Artillery\'s "- put:" step)',
    "patch": 'write method = "PATCH" and url = "..." (Artillery\'s "- patch:" step)',
    "delete": 'write method = "DELETE" and url = "..." (Artillery\'s "- delete:" step)',
}


# Every key any step kind takes, in the order the step reference lists them: a key that is not
# one of them is unknown everywhere ("did you mean" looks among them all).
STEP_KEYS: dict[str, None] = dict.fromkeys(
    ["name", "method", "url", "headers", "query", "json", "body", "capture", "expect", "if", "think", "timeout"]
    + [f.encode_name for cls in STEP_TYPES for f in msgspec.structs.fields(cls)]
)


def _owners(key: str) -> list[type]:
    """The step kinds that take ``key``."""
    return [cls for cls in STEP_TYPES if key in _fields(cls)]


def _fields(cls: type) -> dict[str, msgspec.structs.FieldInfo]:
    cached = _FIELDS_CACHE.get(cls)
    if cached is None:
        cached = {f.encode_name: f for f in msgspec.structs.fields(cls)}
        _FIELDS_CACHE[cls] = cached
    return cached


_FIELDS_CACHE: dict[type, dict[str, msgspec.structs.FieldInfo]] = {}


def _unknown_key_message(key: str, cls: type) -> str:
    fields = STEP_KEYS if cls in STEP_TYPES else _fields(cls)
    where = _TABLE_WORDS.get(cls, "here")
    valid = ", ".join(fields)
    if key in _FOREIGN_NOTES and (cls in (Plan, Scenario) or cls in STEP_TYPES):
        return f"unknown key {_quote(key)} {where}: {_FOREIGN_NOTES[key]}"
    foreign = _FOREIGN_KEYS.get(key)
    if foreign is not None and foreign[0] == "defaults":
        if cls is Plan:
            inner = "timeout and headers" if key == "http" else key
            return f"unknown key {_quote(key)} {where}; did you mean [defaults] {inner}?"
    elif foreign is not None and foreign[0] in fields:
        origin = f" ({key} is the {foreign[1]} spelling)" if foreign[1] else ""
        return f"unknown key {_quote(key)} {where}; did you mean {_quote(foreign[0])}?{origin}"
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()
    close = difflib.get_close_matches(snake, list(fields), n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(key.lower(), list(fields), n=1, cutoff=0.6)
    if close:
        return f"unknown key {_quote(key)} {where}; did you mean {_quote(close[0])}?"
    return f"unknown key {_quote(key)} {where} (valid keys: {valid})"


_SCALAR_TEXT = re.compile(r"[+-]?(?:[0-9_.eE+-]+|inf|nan)|true|false")


def _toml_scalar(text: str) -> Any:
    """``"10"`` -> 10, ``"0.5"`` -> 0.5, ``"true"`` -> True; anything else stays text."""
    text = text.strip()
    if not _SCALAR_TEXT.fullmatch(text):
        return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _printable_names(plan: Plan) -> Plan:
    """Names are free text, but a terminal obeys the control characters in them (``ESC[2J``
    clears the screen, an OSC sequence retitles the window): every name, and the thresholds that
    quote endpoint names, keep such characters only as visible escapes (``\\x1b[2J``), so that
    no output (validate, headless, ls, the dashboard, session files) can send them raw. The same
    escaping on both sides keeps ``p95{name}`` thresholds matching their endpoints."""

    def fix(text: Any) -> Any:
        return printable(text) if isinstance(text, str) else text

    def step(st: Step) -> Step:
        if isinstance(st, ThinkStep):
            return st
        if st.name is not UNSET:
            return msgspec.structs.replace(st, name=fix(st.name)) if fix(st.name) != st.name else st
        name = st.endpoint
        return msgspec.structs.replace(st, name=printable(name)) if printable(name) != name else st

    return msgspec.structs.replace(
        plan,
        name=fix(plan.name),
        description=fix(plan.description),
        phases=[msgspec.structs.replace(ph, name=fix(ph.name)) for ph in plan.phases],
        scenarios=[msgspec.structs.replace(sc, name=fix(sc.name), steps=[step(st) for st in sc.steps])
                   for sc in plan.scenarios],
        thresholds=[fix(t) if isinstance(t, str) else msgspec.structs.replace(t, threshold=fix(t.threshold))
                    for t in plan.thresholds],
    )


_FIELD_TYPES: dict[tuple[type, str], Any] = {(Scenario, "steps"): list[Step], (Plan, "setup"): list[Step],
                                             (Plan, "on_start"): list[Step], (Plan, "teardown"): list[Step]}
"""Fields whose declared type is looser than what the driver converts them to (steps: see
``Scenario.steps``)."""


def _range_message(value: Any, tp: Any) -> str | None:
    """The message of the ``msgspec.Meta`` range ``value`` falls outside, when it has the right
    type but not an allowed value."""
    members = typing.get_args(tp) if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union else (tp,)
    for member in members:
        if typing.get_origin(member) is not Annotated:
            continue
        base, *metas = typing.get_args(member)
        try:
            msgspec.convert(value, base, strict=True)
        except (msgspec.ValidationError, TypeError, ValueError, OverflowError):
            continue
        for meta in metas:
            message = (getattr(meta, "extra", None) or {}).get("range")
            if message:
                return message.format(value=value)
    return None


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


class Driver:
    """Converts the plan piece by piece (so one bad value doesn't hide the others) and runs the
    semantic checks on every piece that converted."""

    def __init__(self, file: str, locator: _Locator, full_refs: set[Path_], env_failed: set[Path_]):
        self.file = file
        self.locator = locator
        self.full_refs = full_refs
        self.env_failed = env_failed
        self.problems: list[Problem] = []
        self.defined: set[str] = set()
        self.endpoints: set[str] = set()
        self.suppress: list[list[Path_]] = []
        self.coerced: set[Path_] = set()
        self.remap: dict[Path_, Path_] = {}
        """Keys a profile supplied -> where the profile wrote them (``perftui.planload.profiles``)."""

    def problem(self, path: Path_, message: str, *, force: bool = False) -> None:
        if not force and any(path[: len(p)] == p for p in self.env_failed):
            return  # already reported as a missing environment variable
        if self.suppress and any(path[: len(p)] == p for p in self.suppress[-1]):
            return  # already reported as a wrong type
        if self.remap:
            path = next((self.remap[path[:n]] + path[n:] for n in range(len(path), 0, -1) if path[:n] in self.remap), path)
        self.problems.append(Problem(self.file, format_path(path), message, self.locator.line(path)))

    # -- driver --

    def run(self, data: dict[str, Any], default_name: str) -> Plan | None:
        self.defined = self._defined_names(data)
        plan = self.struct(data, Plan, ())
        if plan is _FAIL:
            plan = None
        self._plan_checks(data, plan)
        self.problems.sort(key=lambda p: p.line or 0)
        if plan is None:
            return None
        updates: dict[str, Any] = {}
        if not plan.name:
            updates["name"] = default_name or "plan"
        phases = [
            msgspec.structs.replace(ph, name=f"phase {i + 1}") if not ph.name else ph for i, ph in enumerate(plan.phases)
        ]
        scenarios = [
            msgspec.structs.replace(sc, name=f"scenario {i + 1}") if not sc.name else sc
            for i, sc in enumerate(plan.scenarios)
        ]
        plan = msgspec.structs.replace(plan, phases=phases, scenarios=scenarios, **updates)
        plan = _printable_names(plan)
        try:
            msgspec.msgpack.encode(plan)
        except (OverflowError, TypeError, ValueError) as e:
            self.problem((), f"the plan cannot be encoded (a number too large?): {e}")
            return None
        return plan

    def _defined_names(self, data: dict[str, Any]) -> set[str]:
        names: set[str] = set()
        variables = data.get("variables")
        if isinstance(variables, dict):
            names.update(k for k in variables if isinstance(k, str))
        scenarios = data.get("scenarios")
        # captures of [[setup]] and [[on_start]] are there for every iteration's templates
        stages = [{"steps": data.get(k)} for k in ("setup", "on_start")]
        for sc in [*(scenarios if isinstance(scenarios, list) else ()), *stages]:
            steps = sc.get("steps") if isinstance(sc, dict) else None
            for st in steps if isinstance(steps, list) else ():
                tx = st.get("transaction") if isinstance(st, dict) else None
                for part in [st, *(tx if isinstance(tx, list) else ())]:  # a SQL transaction's statements capture too
                    caps = part.get("capture") if isinstance(part, dict) else None
                    for cap in caps if isinstance(caps, list) else ():
                        if isinstance(cap, dict) and isinstance(cap.get("as"), str):
                            names.add(cap["as"])
        return names

    # -- structure --

    def struct(self, value: Any, cls: type, path: Path_, *, raw: dict[str, Any] | None = None,
               quiet: frozenset[str] = frozenset()) -> Any:
        """Convert one table into ``cls`` key by key. ``raw``: the table as written, when
        ``value`` holds only the keys left after the caller reported the others; ``quiet``:
        required keys whose absence the caller words itself."""
        if not isinstance(value, dict):
            self.problem(path, f"expected a table, got {_describe(value)}")
            return _FAIL
        fields = _fields(cls)
        ok = raw is None or len(raw) == len(value)
        kwargs: dict[str, Any] = {}
        failed: list[Path_] = []
        for key, item in value.items():
            if not isinstance(key, str):
                self.problem(path, f"keys must be strings, got {_describe(key)}")
                ok = False
                continue
            info = fields.get(key)
            if info is None:
                self.problem(path + (key,), _unknown_key_message(key, cls))
                ok = False
                continue
            converted = self.value(item, _FIELD_TYPES.get((cls, key), info.type), path + (key,))
            if converted is _FAIL:
                ok = False
                failed.append(path + (key,))
            else:
                kwargs[info.name] = converted
        for key, info in fields.items():
            if info.required and key not in value:
                if key not in quiet:
                    self.problem(path, f"missing required key {_quote(key)} {_TABLE_WORDS.get(cls, '')}".rstrip())
                ok = False
        if not ok:
            # Still run the semantic checks on what did convert (failed fields hold their default
            # or UNSET), so that every problem is reported at once; nothing under a failed key
            # is reported twice.
            for info in fields.values():
                if info.name not in kwargs:
                    if info.default is not msgspec.NODEFAULT:
                        kwargs[info.name] = info.default
                    elif info.default_factory is not msgspec.NODEFAULT:
                        kwargs[info.name] = info.default_factory()
                    else:
                        kwargs[info.name] = UNSET
        try:
            obj = cls(**kwargs)
        except (TypeError, ValueError) as e:  # pragma: no cover - every field was checked
            self.problem(path, str(e))
            return _FAIL
        check = getattr(self, f"check_{cls.__name__.lower()}", None)
        if check is not None:
            self.suppress.append(failed)
            try:
                check(obj, value if raw is None else raw, path)
            finally:
                self.suppress.pop()
        return obj if ok else _FAIL

    def step(self, value: Any, path: Path_) -> Any:
        """One ``[[scenarios.steps]]`` table: its action key picks the step kind, whose Struct
        declares the keys that apply; a key of another kind is worded as such here."""
        if not isinstance(value, dict):
            self.problem(path, f"expected a table, got {_describe(value)}")
            return _FAIL
        actions = [k for k in PROTOCOL_ACTIONS if k in value]
        if len(actions) > 1:
            self.problem(path, f"a step does one thing: one of {', '.join(PROTOCOL_ACTIONS)}; this one has {' and '.join(actions)}")
            return _FAIL
        cls = step_type(value)
        fields = _fields(cls)
        known: dict[str, Any] = {}
        strays: list[str] = []
        for key, item in value.items():
            if not isinstance(key, str):
                self.problem(path, f"keys must be strings, got {_describe(key)}")
            elif key in fields:
                known[key] = item
            elif key not in STEP_KEYS:
                self.problem(path + (key,), _unknown_key_message(key, cls))
                strays.append(key)
            elif cls is ThinkStep:
                strays.append(key)
            elif cls is HttpStep:
                owner = _owners(key)[0].kind
                hint = "; query string parameters go in query" if key == "params" else ""
                self.problem(path + (key,), f"{key} belongs to {owner} steps; this step has no {owner}{hint}")
            else:
                keys = ", ".join(sorted(k for k in fields if k != cls.kind))
                self.problem(path + (key,), f"{key} does not apply to a {cls.kind} step (its keys: {cls.kind}, {keys})")
        if cls is ThinkStep and strays:
            self.problem(path, f"a step without url is a pause and may only have think; it also has {', '.join(strays)}")
        quiet = frozenset()
        if cls is HttpStep and "url" not in value:
            quiet = frozenset({"url"})
            if all(k in STEP_KEYS for k in value):
                self.problem(path, 'a step needs url = "/path" (or only think = "1s" for a pause step, or one of'
                                   ' graphql, mcp, ws_connect, ws_send, ws_request, ws_expect, ws_hold, ws_close)')
        result = self.struct(known, cls, path, raw=value, quiet=quiet)
        return _FAIL if quiet else result

    def value(self, value: Any, tp: Any, path: Path_) -> Any:
        if tp is Step:
            return self.step(value, path)
        tp = _strip_unset(tp)
        if tp is Any:
            return value
        if _is_struct(tp):
            return self.struct(value, tp, path)
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is list:
            if not isinstance(value, list):
                if _is_struct(args[0]) or args[0] is Step:
                    self.problem(path, f"expected an array of tables (write [[{format_path(path)}]] or [ {{ ... }} ]), got {_describe(value)}")
                else:
                    self.problem(path, f"expected {_expected(tp)}, got {_describe(value)}")
                return _FAIL
            out = [self.value(item, args[0], path + (i,)) for i, item in enumerate(value)]
            return _FAIL if any(o is _FAIL for o in out) else out
        if origin is dict:
            if not isinstance(value, dict):
                self.problem(path, f"expected a table, got {_describe(value)}")
                return _FAIL
            result = {}
            ok = True
            for k, item in value.items():
                if not isinstance(k, str):
                    self.problem(path, f"keys must be strings, got {_describe(k)}")
                    ok = False
                    continue
                converted = self.value(item, args[1], path + (k,))
                if converted is _FAIL:
                    ok = False
                result[k] = converted
            return result if ok else _FAIL
        if origin is Literal:
            if isinstance(value, str) and value in args:
                return value
            choices = ", ".join(_quote(a) for a in args)
            close = difflib.get_close_matches(value, [str(a) for a in args], n=1) if isinstance(value, str) else []
            hint = f"; did you mean {_quote(close[0])}?" if close else ""
            self.problem(path, f"expected one of {choices}, got {_describe(value)}{hint}")
            return _FAIL
        if origin is Annotated:
            return self.leaf(value, tp, tp, path)
        if isinstance(tp, types.UnionType) or origin is typing.Union:
            lists = [a for a in args if typing.get_origin(a) is list]
            structs = [a for a in args if _is_struct(a)]
            if isinstance(value, list) and lists:
                return self.value(value, lists[0], path)
            if isinstance(value, dict) and structs:
                return self.struct(value, structs[0], path)
            rest = tuple(a for a in args if a not in lists and a not in structs)
            target = rest[0] if len(rest) == 1 else typing.Union[rest]  # noqa: UP007
            return self.leaf(value, target, tp, path)
        return self.leaf(value, tp, tp, path)

    def leaf(self, value: Any, tp: Any, described: Any, path: Path_) -> Any:
        try:
            return msgspec.convert(value, tp, strict=True)
        except (msgspec.ValidationError, TypeError, ValueError, OverflowError):
            pass
        if path in self.full_refs and isinstance(value, str):
            # "${VUS}" -> 10: an environment value standing alone takes the type the key needs.
            try:
                coerced = _toml_scalar(value)
                result = msgspec.convert(coerced, tp, strict=True)
                self.coerced.add(path)
                return result
            except (tomllib.TOMLDecodeError, msgspec.ValidationError, TypeError, ValueError, OverflowError):
                pass
        out_of_range = _range_message(value, tp)
        if out_of_range is not None:
            # The right type, outside its range: reported, and the value kept so that the
            # checks of the table around it still run (the plan is refused all the same).
            self.problem(path, out_of_range)
            return value
        hint = ""
        if isinstance(value, str) and tp in (int, float, bool):
            try:
                if not isinstance(_toml_scalar(value), str):
                    hint = "; remove the quotes"
            except (tomllib.TOMLDecodeError, ValueError):
                pass
        if tp is int and isinstance(value, float):
            hint = "; use a whole number"
        self.problem(path, f"expected {_expected(described)}, got {_describe(value)}{hint}")
        return _FAIL

    # -- helpers for checks --

    def duration(self, value: Any, path: Path_, *, allow_zero: bool = False) -> float | None:
        if value is UNSET:
            return None
        try:
            seconds = parse_duration(value)
        except ValueError as e:
            self.problem(path, str(e))
            return None
        if not math.isfinite(seconds):
            self.problem(path, "the duration must be finite")
            return None
        if seconds < 0 or (seconds == 0 and not allow_zero):
            self.problem(path, f"the duration must be greater than 0, got {value!r}" if not allow_zero
                         else f"the duration must not be negative, got {value!r}")
            return None
        return seconds

    def template(self, text: str, path: Path_) -> None:
        try:
            t = compile_template(text)
        except TemplateError as e:
            self.problem(path, f"bad template: {e}")
            return
        self.names_defined(t.names, path)

    def names_defined(self, names: frozenset[str], path: Path_) -> None:
        for name in sorted(names - self.defined):
            close = difflib.get_close_matches(name, sorted(self.defined), n=1)
            hint = f"; did you mean {{{{ {close[0]} }}}}?" if close else ""
            self.problem(
                path,
                f"template uses {{{{ {name} }}}} but no variable {name!r} is defined in [variables] or captured"
                f" by a step (capture ... as = {_quote(name)}){hint}",
            )

    def headers(self, headers: dict[str, str], path: Path_) -> None:
        for name, text in headers.items():
            if not _HEADER_NAME.match(name):
                self.problem(path + (name,), f"{_quote(name)} is not a valid HTTP header name")
            if _HEADER_VALUE_BAD.search(text):
                self.problem(path + (name,), "header values must not contain line breaks or control characters")
                continue
            self.template(text, path + (name,))

    # -- per-struct checks (called when the struct converted) --
