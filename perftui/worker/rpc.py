"""GraphQL and JSON-RPC (MCP over Streamable HTTP) steps, on perftui's own HTTP transport.

GraphQL: a ``graphql`` step is an ordinary HTTP request (a ``CompiledStep`` run by ``ScenarioRunner._request``)
whose body is built by ``GraphQLBody``; after the usual checks, a 2xx answer whose JSON carries a
non-empty ``errors`` list fails with kind ``graphql_error`` (``graphql_errors``).

MCP: each virtual user opens its session lazily, on its first MCP step, with ``initialize``
(protocolVersion, capabilities, clientInfo) followed by ``notifications/initialized``; both
together are timed as one operation on the endpoint ``MCP initialize``. Later requests carry the
``Mcp-Session-Id`` the server returned and the negotiated ``MCP-Protocol-Version``, and accept
``application/json, text/event-stream``: a reply may be plain JSON or an SSE stream, whose
``data:`` events are searched for the JSON-RPC response with our id (``find_response``). Results:

- HTTP 4xx/5xx: ``http_4xx`` / ``http_5xx`` (as for any request);
- a JSON-RPC ``error`` object: ``jsonrpc_error`` (code and message in the error sample);
- ``tools/call`` answered with ``result.isError = true`` (the MCP way of reporting a failed or
  unknown tool, used by the official SDK): ``mcp_tool_error``;
- no response with our id in the body: ``protocol``.

A 404 on a request that carried a session id means the server forgot the session: the virtual
user initializes again (recorded on ``MCP initialize``) and retries the call once; the call's
latency then covers the whole recovery, and ``mcp.sessions_expired`` counts it. When an
open-model virtual user (one iteration) is done, its sessions are ended with ``DELETE``
(``MCP terminate``), so a long run does not pile up sessions on the server; closed-model virtual
users keep theirs until the run ends.

This module sees the scenario runner only as a ``perftui.worker.compiled.StepRunner``.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import msgspec

from perftui import __version__
from perftui.worker.transport import TransportError, build_request
from perftui.template import compile_json
from perftui.worker.compiled import CompiledStep, StepRunner
from perftui.plan import McpStep
from perftui.worker.stats import EndpointRecorder, McpStats


__all__ = [
    "MCP_PROTOCOL_VERSION",
    "GraphQLBody",
    "McpAction",
    "McpStats",
    "end_sessions",
    "find_response",
    "graphql_errors",
    "run_mcp_step",
    "sse_data",
]

_now = time.monotonic
_decode = msgspec.json.decode
_encode = msgspec.json.encode

MCP_PROTOCOL_VERSION = "2025-06-18"
"""Protocol version offered in ``initialize``; the server's answer is used from then on."""
ACCEPT = "application/json, text/event-stream"
CLIENT_INFO = {"name": "perftui", "version": __version__}


# ---- GraphQL -------------------------------------------------------------------------------------


class GraphQLBody:
    """The JSON body of a GraphQL request: ``{"query", "variables", "operationName"}``. The
    document is sent as written (not a template); ``variables`` are templated. Quacks like a
    ``JsonTemplate`` (``render``, ``static``)."""

    __slots__ = ("_bytes", "head", "names", "static", "tail", "variables")

    def __init__(self, document: str, variables: Any, operation: str | None):
        self.head = b'{"query":' + _encode(document)
        self.tail = (b',"operationName":' + _encode(operation) if operation else b"") + b"}"
        self.variables = compile_json(variables) if variables is not None else None
        self.static = self.variables is None or self.variables.static
        self.names = self.variables.names if self.variables is not None else frozenset()
        self._bytes = self._render({}) if self.static else b""

    def _render(self, vars: dict) -> bytes:
        if self.variables is None:
            return self.head + self.tail
        return self.head + b',"variables":' + self.variables.render(vars) + self.tail

    def render(self, vars: dict) -> bytes:
        return self._bytes if self.static else self._render(vars)


def graphql_errors(body: bytes | None) -> str | None:
    """The first error message when a GraphQL response has a non-empty ``errors`` list."""
    if not body or b'"errors"' not in body:
        return None
    try:
        doc = _decode(body)
    except msgspec.DecodeError:
        return None
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list) or not errors:
        return None
    first = errors[0]
    message = first.get("message") if isinstance(first, dict) else None
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return (message if isinstance(message, str) else str(first))[:200] + more


# ---- SSE and JSON-RPC ----------------------------------------------------------------------------


def sse_data(body: bytes) -> list[bytes]:
    """The ``data`` of every event in a ``text/event-stream`` body (multi-line data joined with
    newlines; comments, ``event:``, ``id:`` and ``retry:`` fields skipped)."""
    events: list[bytes] = []
    data: list[bytes] = []
    for line in body.splitlines():  # \r\n, \n and \r, as SSE allows
        if not line:
            if data:
                events.append(b"\n".join(data))
                data = []
            continue
        if line[:1] == b":":
            continue
        name, _, value = line.partition(b":")
        if name == b"data":
            data.append(value[1:] if value[:1] == b" " else value)
    if data:
        events.append(b"\n".join(data))
    return events


def _is_sse(headers, body: bytes) -> bool:
    for k, v in headers or ():
        if k.lower() == b"content-type":
            return v.split(b";", 1)[0].strip().lower() == b"text/event-stream"
    head = body.lstrip()[:6]
    return head.startswith((b"data:", b"event:", b"id:", b":", b"retry:"))


def find_response(headers, body: bytes, req_id: Any) -> tuple[dict | None, bytes]:
    """The JSON-RPC response (``result`` or ``error``) with ``req_id`` in a plain JSON or SSE
    body, and its JSON text; ``(None, b"")`` if there is none."""
    payloads = sse_data(body) if _is_sse(headers, body) else [body]
    for payload in payloads:
        try:
            doc = _decode(payload)
        except msgspec.DecodeError:
            continue
        for msg in doc if isinstance(doc, list) else (doc,):
            if isinstance(msg, dict) and msg.get("id") == req_id and ("result" in msg or "error" in msg):
                return msg, payload if not isinstance(doc, list) else _encode(msg)
    return None, b""


def _header(headers, name: bytes) -> str | None:
    for k, v in headers or ():
        if k.lower() == name:
            return v.decode("latin-1")
    return None


def rpc_error_text(err: Any) -> str:
    if isinstance(err, dict):
        return f"{err.get('code')} {err.get('message', '')}".strip()
    return str(err)


# ---- MCP -----------------------------------------------------------------------------------------


class McpSession:
    __slots__ = ("next_id", "session_id", "step", "version")

    def __init__(self, session_id: str | None, version: str, step: CompiledStep):
        self.session_id = session_id
        self.version = version
        self.next_id = 1
        self.step = step
        """The step that opened it (where to send the DELETE that ends it)."""


class McpAction:
    """The JSON-RPC part of an ``mcp`` step: method, params, its session key."""

    def __init__(self, step: McpStep, init_recorder: EndpointRecorder, terminate_recorder: EndpointRecorder) -> None:
        self.method: str = step.mcp
        self.notification = self.method.startswith("notifications/")
        self.tool_call = self.method == "tools/call"
        if self.tool_call:
            args = step.arguments if step.arguments is not msgspec.UNSET else {}
            params: Any = {"name": step.tool, "arguments": args}
        else:
            params = step.params if step.params is not msgspec.UNSET else None
        self.params = compile_json(params) if params is not None else None
        self.head = b'{"jsonrpc":"2.0","method":' + _encode(self.method)
        self.init_recorder = init_recorder
        self.terminate_recorder = terminate_recorder

    def body(self, req_id: int | None, vars: dict) -> bytes:
        out = self.head
        if req_id is not None:
            out += b',"id":' + str(req_id).encode()
        if self.params is not None:
            out += b',"params":' + self.params.render(vars)
        return out + b"}"


_INIT_BODY = _encode({
    "jsonrpc": "2.0", "id": 0, "method": "initialize",
    "params": {"protocolVersion": MCP_PROTOCOL_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO},
})
_INITIALIZED_BODY = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'


def _request_bytes(step: CompiledStep, vars: dict, body: bytes | None, session: McpSession | None,
                   method: str = "POST") -> bytes:
    target = step.path.render(vars)
    if step.query:
        qs = "&".join(f"{quote(k, safe='')}={quote(t.render(vars), safe='')}" for k, t in step.query)
        target += ("&" if "?" in target else "?") + qs
    headers = [(k, t.render(vars)) for k, t in step.headers]
    headers.append(("Accept", ACCEPT))
    if session is not None:
        if session.session_id is not None:
            headers.append(("Mcp-Session-Id", session.session_id))
        headers.append(("MCP-Protocol-Version", session.version))
    return build_request(method, target, step.origin.host_header, headers, body, keep_alive=step.keep_alive)


class _Fail(Exception):
    def __init__(self, kind: str, detail: str, status: int | None = None, t_done: float = 0.0, t_sent: float = 0.0):
        super().__init__(kind, detail)
        self.kind = kind
        self.detail = detail
        self.status = status
        self.t_done = t_done
        self.t_sent = t_sent


def _status_kind(status: int) -> str | None:
    if status >= 500:
        return "http_5xx"
    if status >= 400:
        return "http_4xx"
    return None


async def _initialize(runner: StepRunner, step: CompiledStep, vars: dict, started: float) -> McpSession | None:
    """Open a session (initialize + notifications/initialized), recorded on ``MCP initialize``."""
    rec = step.mcp.init_recorder
    pool = runner.pool_for(step.origin)
    t_first = None
    try:
        try:
            resp = await pool.request(_request_bytes(step, vars, _INIT_BODY, None), timeout=step.timeout,
                                      want_body=True, want_headers=True)
        except TransportError as exc:
            raise _Fail(exc.kind, str(exc)) from None
        t_first = resp.t_sent
        kind = _status_kind(resp.status)
        if kind is not None:
            raise _Fail(kind, f"initialize: HTTP {resp.status}", resp.status, resp.t_done, t_first)
        msg, _ = find_response(resp.headers, resp.body or b"", 0)
        if msg is None:
            raise _Fail("protocol", "initialize: no JSON-RPC response in the answer", resp.status, resp.t_done, t_first)
        if "error" in msg:
            raise _Fail("jsonrpc_error", f"initialize: {rpc_error_text(msg['error'])}", resp.status, resp.t_done, t_first)
        result = msg.get("result")
        version = result.get("protocolVersion") if isinstance(result, dict) else None
        session = McpSession(_header(resp.headers, b"mcp-session-id"),
                             version if isinstance(version, str) and version else MCP_PROTOCOL_VERSION, step)
        status = resp.status
        try:
            note = await pool.request(_request_bytes(step, vars, _INITIALIZED_BODY, session), timeout=step.timeout,
                                      want_body=False)
        except TransportError as exc:
            raise _Fail(exc.kind, f"notifications/initialized: {exc}") from None
        kind = _status_kind(note.status)
        if kind is not None:
            raise _Fail(kind, f"notifications/initialized: HTTP {note.status}", note.status, note.t_done, t_first)
    except _Fail as f:
        if f.status is None:
            rec.failure(f.kind)
        else:
            rec.response(f.status, int((f.t_done - started) * 1e6), int((f.t_done - f.t_sent) * 1e6), 0, f.kind)
        runner.errors_sample.append(f"{f.kind}: {rec.name}: {f.detail}")
        return None
    rec.response(status, int((note.t_done - started) * 1e6), int((note.t_done - t_first) * 1e6),
                 resp.body_size + note.body_size, None)
    runner.mcp_stats.sessions += 1
    return session


async def end_sessions(runner: StepRunner, vars: dict) -> None:
    """An open-model virtual user is done: end its MCP sessions with ``DELETE`` (as MCP clients
    do), recorded on ``MCP terminate``. 404 (already gone) and 405 (the server does not let
    clients end sessions) are fine."""
    sessions = vars.pop("$mcp", None)
    for session in (sessions or {}).values():
        if session.session_id is None:
            continue
        step = session.step
        rec = step.mcp.terminate_recorder
        started = _now()
        try:
            resp = await runner.pool_for(step.origin).request(
                _request_bytes(step, vars, None, session, method="DELETE"), timeout=step.timeout)
        except TransportError as exc:
            rec.failure(exc.kind)
            runner.errors_sample.append(f"{exc.kind}: {rec.name}: {exc}")
            continue
        kind = None if resp.status in (404, 405) else _status_kind(resp.status)
        if kind is not None:
            runner.errors_sample.append(f"{kind}: {rec.name}: HTTP {resp.status}")
        rec.response(resp.status, int((resp.t_done - started) * 1e6), int((resp.t_done - resp.t_sent) * 1e6),
                     resp.body_size, kind)


class _Answer:
    """The matched JSON-RPC message, shaped like a ``Response`` for captures and expect."""

    __slots__ = ("body", "headers")

    def __init__(self, body: bytes, headers):
        self.body = body
        self.headers = headers


async def run_mcp_step(runner: StepRunner, step: CompiledStep, vars: dict, intended: float | None) -> bool:
    """Run one MCP step (opening the virtual user's session first if needed); False ends the
    iteration (transport failures and failed session setups)."""
    m: McpAction = step.mcp
    rec = step.recorder
    started = _now() if intended is None else min(intended, _now())  # early by < 0.5 ms: from the send
    sessions = vars.get("$mcp")
    if sessions is None:
        sessions = vars["$mcp"] = {}
    key = step.mcp_key
    session = sessions.get(key)
    if session is None:
        session = await _initialize(runner, step, vars, started)
        if session is None:
            return False
        sessions[key] = session
        started = _now()
    pool = runner.pool_for(step.origin)
    retried = False
    while True:
        req_id = None if m.notification else session.next_id
        session.next_id += 1
        try:
            resp = await pool.request(_request_bytes(step, vars, m.body(req_id, vars), session), timeout=step.timeout,
                                      want_body=True, want_headers=True)
        except TransportError as exc:
            rec.failure(exc.kind)
            runner.errors_sample.append(f"{exc.kind}: {step.name}: {exc}")
            return False
        if resp.status == 404 and session.session_id is not None and not retried:
            # the server forgot the session: open a new one and retry once
            runner.mcp_stats.expired += 1
            sessions.pop(key, None)
            session = await _initialize(runner, step, vars, _now())
            if session is None:
                rec.failure("http_4xx")
                runner.errors_sample.append(f"http_4xx: {step.name}: session expired (HTTP 404) and re-initialize failed")
                return False
            sessions[key] = session
            retried = True
            continue
        break
    status = resp.status
    kind = None
    detail = ""
    if step.expect_status is not None:
        if status not in step.expect_status:
            kind = _status_kind(status) or "expect_failed"
            detail = f"HTTP {status}"
    elif status >= 400:
        kind = _status_kind(status)
        detail = f"HTTP {status}"
    body = resp.body or b""
    answer = None
    if kind is None and status < 300 and not m.notification:
        msg, payload = find_response(resp.headers, body, req_id)
        if msg is None:
            kind, detail = "protocol", f"no JSON-RPC response with id {req_id} in the answer"
        else:
            answer = _Answer(payload, resp.headers)
            if "error" in msg:
                kind, detail = "jsonrpc_error", rpc_error_text(msg["error"])
            elif m.tool_call:
                result = msg.get("result")
                if isinstance(result, dict) and result.get("isError") is True:
                    kind, detail = "mcp_tool_error", _tool_error_text(result)
    if (step.want_body or step.want_headers) and (answer is not None or step.captures):
        failed = runner.check_and_capture(step, answer or _Answer(body, resp.headers), vars)
        if failed and kind is None:
            kind, detail = "expect_failed", failed
    if kind is not None:
        runner.errors_sample.append(f"{kind}: {step.name}: {detail}")
    rec.response(status, int((resp.t_done - started) * 1e6), int((resp.t_done - resp.t_sent) * 1e6),
                 resp.body_size, kind)
    return True


def _tool_error_text(result: dict) -> str:
    for item in result.get("content") or ():
        if isinstance(item, dict) and isinstance(item.get("text"), str):
            return item["text"][:200]
    return "tool reported isError"
