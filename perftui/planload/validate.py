"""Checks of meaning for each step kind (``check_httpstep``, ``check_graphqlstep``, ...), and
``Validator``, the driver with every check mixed in. Which keys a kind takes is declared by its
Struct (``perftui.plan.steps``); what is checked here is what a type cannot say: templates name
defined variables, URLs are well formed, a ``ws_request`` message carries its correlation field,
``mcp = "tools/call"`` names a tool, and so on."""

from __future__ import annotations

import difflib
from typing import Any

from msgspec import UNSET

from perftui.jsonpath import MISSING, compile_path
from perftui.plan import (
    GraphQLStep, HttpStep, McpStep, ThinkStep, WsCloseStep, WsConnectStep, WsExpectStep, WsHoldStep, WsRequestStep,
    WsSendStep,
)
from perftui.planload.checks import PlanChecks
from perftui.planload.sqlchecks import SqlChecks
from perftui.planload.datacheck import DataChecks
from perftui.planload.profilecheck import ProfileChecks
from perftui.planload.source import _HEADER_NAME, _IDENT, HTTP_METHODS, Path_, _describe, _has_control, _has_space_or_control, _quote
from perftui.template import TemplateError, compile_json


class Validator(SqlChecks, DataChecks, ProfileChecks, PlanChecks):
    """Converts a plan and checks its meaning; ``problems`` collects every problem found."""

    # -- what several kinds share --

    def step_common(self, st: Any, path: Path_) -> None:
        """``name``, ``if`` and ``think``, which every kind but a pause takes."""
        if st.if_ is not UNSET:
            if not _IDENT.match(st.if_):
                self.problem(path + ("if",), f"must name a variable (like authToken), got {_quote(st.if_)}")
            elif st.if_ not in self.defined:
                close = difflib.get_close_matches(st.if_, sorted(self.defined), n=1)
                hint = f"; did you mean {_quote(close[0])}?" if close else ""
                self.problem(path + ("if",), f"no variable {_quote(st.if_)} is defined in [variables] or captured by a step{hint}")
        if st.think is not UNSET:
            self.duration(st.think, path + ("think",), allow_zero=True)
        if st.name is not UNSET and not st.name.strip():
            self.problem(path + ("name",), "must not be empty (leave it out to use \"METHOD url\")")
        for name, _role in st.endpoints():
            self.endpoints.add(name)

    def step_timeout(self, st: Any, path: Path_) -> None:
        if st.timeout is not UNSET:
            self.duration(st.timeout, path + ("timeout",))

    def ws_checks_and_captures(self, raw: dict[str, Any], path: Path_) -> None:
        """WebSocket messages have neither a status nor headers."""
        if isinstance(raw.get("expect"), dict) and "status" in raw["expect"]:
            self.problem(path + ("expect", "status"), "WebSocket messages have no status; use json_equals, json_exists or body_contains")
        for i, cap in enumerate(raw.get("capture") or []):
            if isinstance(cap, dict) and "header" in cap:
                self.problem(path + ("capture", i, "header"), "WebSocket messages have no headers; capture with json or regex")

    # -- one check per kind (called by Driver.struct when the step converted) --

    def check_thinkstep(self, st: ThinkStep, raw: dict[str, Any], path: Path_) -> None:
        self.duration(st.think, path + ("think",), allow_zero=True)

    def check_httpstep(self, st: HttpStep, raw: dict[str, Any], path: Path_) -> None:
        method = st.method.upper()
        st.method = method  # plans may say "post"; the engine sends what the loader returns
        if method not in HTTP_METHODS:
            close = difflib.get_close_matches(method, HTTP_METHODS, n=1, cutoff=0.65)
            hint = f"; did you mean {close[0]}?" if close else f" (use one of {', '.join(HTTP_METHODS)})"
            self.problem(path + ("method",), f"unknown HTTP method {_quote(st.method)}{hint}")
        self.headers(st.headers, path + ("headers",))
        for k, q in st.query.items():
            if isinstance(q, str):
                self.template(q, path + ("query", k))
        if st.json is not UNSET and st.body is not UNSET:
            self.problem(path + ("body",), "a step has json or body, not both: json sends a JSON document, body sends text as written")
        if st.json is not UNSET:
            try:
                jt = compile_json(st.json)
            except TemplateError as e:
                self.problem(path + ("json",), f"bad template: {e}")
            else:
                self.names_defined(jt.names, path + ("json",))
        if st.body is not UNSET:
            self.template(st.body, path + ("body",))
        self.step_timeout(st, path)
        if st.url is UNSET:
            self.step_common_no_endpoint(st, path)
            return  # reported as a wrong type (or missing)
        self.step_common(st, path)
        self.check_url(st.url, path + ("url",))

    def step_common_no_endpoint(self, st: Any, path: Path_) -> None:
        """``step_common`` for a step whose endpoint name cannot be built (its URL is wrong)."""
        endpoints, self.endpoints = self.endpoints, set()
        try:
            self.step_common(st, path)
        except (AttributeError, TypeError):
            pass
        finally:
            self.endpoints = endpoints

    def check_graphqlstep(self, st: GraphQLStep, raw: dict[str, Any], path: Path_) -> None:
        self.headers(st.headers, path + ("headers",))
        self.step_timeout(st, path)
        if st.url is not UNSET:
            self.check_url(st.url, path + ("url",))
        if not isinstance(st.graphql, str):
            self.step_common_no_endpoint(st, path)
            return  # reported as a wrong type
        self.step_common(st, path)
        if not st.graphql.strip():
            self.problem(path + ("graphql",), 'must not be empty: write a GraphQL document such as "query { users { id } }"')
        if st.variables is not UNSET:
            self.json_template(st.variables, path + ("variables",))
        if st.operation is not UNSET and not _IDENT.match(st.operation):
            self.problem(path + ("operation",), f"must be a GraphQL operation name (letters, digits, _), got {_quote(st.operation)}")

    def check_mcpstep(self, st: McpStep, raw: dict[str, Any], path: Path_) -> None:
        self.headers(st.headers, path + ("headers",))
        self.step_timeout(st, path)
        if st.url is not UNSET:
            self.check_url(st.url, path + ("url",))
        method = st.mcp
        at = path + ("mcp",)
        if not isinstance(method, str):
            self.step_common_no_endpoint(st, path)
            return  # reported as a wrong type
        self.step_common(st, path)
        if not method.strip() or any(c.isspace() for c in method):
            self.problem(at, f'expected a JSON-RPC method such as "tools/call" or "tools/list", got {_quote(method)}')
            return
        if method in ("initialize", "notifications/initialized"):
            self.problem(at, "the MCP session (initialize, notifications/initialized) is opened automatically on a"
                             " virtual user's first MCP step; start with the call you want to measure")
        if method == "tools/call":
            if st.tool is UNSET:
                self.problem(path, 'mcp = "tools/call" needs tool = "<tool name>" (and arguments = { ... })')
            elif not st.tool.strip():
                self.problem(path + ("tool",), "must not be empty")
            elif _has_control(st.tool):
                self.problem(path + ("tool",), f"a tool name cannot contain control characters: {_quote(st.tool)}")
            if st.params is not UNSET:
                self.problem(path + ("params",), "tools/call takes tool and arguments instead of params")
        else:
            for key in ("tool", "arguments"):
                if key in raw:
                    self.problem(path + (key,), f'{key} is for mcp = "tools/call"; use params for {method}')
        if st.arguments is not UNSET:
            self.json_template(st.arguments, path + ("arguments",))
        if st.params is not UNSET:
            self.json_template(st.params, path + ("params",))

    def check_wsconnectstep(self, st: WsConnectStep, raw: dict[str, Any], path: Path_) -> None:
        self.headers(st.headers, path + ("headers",))
        for k, q in st.query.items():
            if isinstance(q, str):
                self.template(q, path + ("query", k))
        self.step_timeout(st, path)
        if not isinstance(st.ws_connect, str):
            self.step_common_no_endpoint(st, path)
        else:
            self.step_common(st, path)
            self.check_ws_url(st.ws_connect, path + ("ws_connect",))
        for i, proto in enumerate(st.subprotocols or ()):
            if not _HEADER_NAME.match(proto):
                self.problem(path + ("subprotocols", i), f"{_quote(proto)} is not a valid subprotocol name (a token without spaces)")

    def check_wssendstep(self, st: WsSendStep, raw: dict[str, Any], path: Path_) -> None:
        self.step_common(st, path)
        at = path + ("ws_send",)
        value = st.ws_send
        if isinstance(value, str):
            self.template(value, at)
        elif isinstance(value, (dict, list)):
            self.json_template(value, at)
        else:
            self.problem(at, f"expected a string (sent as text) or a table/array (sent as JSON), got {_describe(value)}")

    def check_wsrequeststep(self, st: WsRequestStep, raw: dict[str, Any], path: Path_) -> None:
        self.step_common(st, path)
        self.step_timeout(st, path)
        self.ws_checks_and_captures(raw, path)
        at = path + ("ws_request",)
        value = st.ws_request
        if not isinstance(value, dict):
            self.problem(at, f"expected a table (sent as JSON, with a correlation field such as id), got {_describe(value)}")
            return
        self.json_template(value, at)
        match = st.match if st.match is not UNSET else "id"
        if not match.strip():
            self.problem(path + ("match",), 'must name the correlation field, e.g. "id" or "$.meta.id"')
        elif match.startswith("$"):
            try:
                found = compile_path(match).find(value)
            except ValueError as e:
                self.problem(path + ("match",), str(e))
            else:
                if found is MISSING:
                    self.problem(path + ("match",), f"the message has nothing at {match} to match the reply on")
        elif match not in value:
            hint = ' (add id = "{{ $uuid() }}")' if match == "id" else ""
            self.problem(at, f"the message needs a field {_quote(match)}: replies are matched on it{hint};"
                             " set match = \"...\" to use another field")

    def check_wsexpectstep(self, st: WsExpectStep, raw: dict[str, Any], path: Path_) -> None:
        self.step_common(st, path)
        self.step_timeout(st, path)
        self.ws_checks_and_captures(raw, path)
        at = path + ("ws_expect",)
        value = st.ws_expect
        if isinstance(value, str):
            if not value:
                self.problem(at, "must not be empty")
            self.template(value, at)
        elif isinstance(value, dict):
            if not value:
                self.problem(at, 'must name at least one field, e.g. { type = "subscribed" }')
            for key, expected in value.items():
                if key.startswith("$"):
                    try:
                        compile_path(key)
                    except ValueError as e:
                        self.problem(at + (key,), str(e))
                self.json_template(expected, at + (key,))
        else:
            self.problem(at, f"expected a table of fields to match (e.g. {{ type = \"tick\" }}) or a string the text contains, got {_describe(value)}")

    def check_wsholdstep(self, st: WsHoldStep, raw: dict[str, Any], path: Path_) -> None:
        self.step_common(st, path)
        if st.ws_hold is not UNSET:
            self.duration(st.ws_hold, path + ("ws_hold",))

    def check_wsclosestep(self, st: WsCloseStep, raw: dict[str, Any], path: Path_) -> None:
        self.step_common(st, path)
        if "ws_close" in raw and raw["ws_close"] is not True:
            self.problem(path + ("ws_close",), "write ws_close = true (or leave the step out: the connection closes at the end of the iteration)")

    def check_ws_url(self, url: str, path: Path_) -> None:
        low = url.lower()
        if not url.strip():
            self.problem(path, 'must not be empty; write a path like "/ws" or a ws:// URL')
        elif low.startswith(("http://", "https://")):
            fixed = "ws" + url[4:]
            self.problem(path, f"WebSocket URLs use ws:// or wss://; did you mean {_quote(fixed)}? (a path like \"/ws\" uses the target's host)")
        elif not (url.startswith(("/", "{{")) or low.startswith(("ws://", "wss://"))):
            hint = f"; did you mean {_quote('/' + url)}?" if "://" not in url else ""
            self.problem(path, f"must start with / (a path on the target) or ws:// / wss://, got {_quote(url)}{hint}")
        if _has_control(url) or (_has_space_or_control(url) and "{{" not in url):
            self.problem(path, "URLs cannot contain spaces, line breaks or control characters; encode them as %20")
        elif low.startswith(("ws://", "wss://")):
            self.absolute_url(url, path, ("ws", "wss"))
        self.template(url, path)
