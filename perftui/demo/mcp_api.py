"""``POST /mcp``: a subset of the MCP Streamable HTTP transport (JSON-RPC 2.0).

``initialize`` opens a session (``Mcp-Session-Id`` response header; bounded LRU of 10k
sessions); every later request must carry the header (missing -> 400, unknown/expired ->
404 as the MCP spec asks, so clients re-initialize). Notifications and client responses
are acknowledged with 202 and no body. Tools: ``echo``, ``get_time``, ``get_user_info``.
Answers are ``application/json`` unless the client only accepts ``text/event-stream`` (or
used ``/mcp/sse``), in which case the single JSON-RPC response is sent as one SSE event.
"""

from __future__ import annotations

import datetime as _dt
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from perftui.demo import data
from perftui.demo.responses import decode, encode
from perftui.demo.state import DemoState

PROTOCOL_VERSION = "2025-06-18"
SERVER_INFO = {"name": "perftui-demo", "version": "0.1.0"}
SESSION_HEADER = "mcp-session-id"

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
SESSION_ERROR = -32000

TOOLS: list[dict[str, Any]] = [
    {
        "name": "echo",
        "title": "Echo",
        "description": "Return the given text unchanged.",
        "inputSchema": {
            "type": "object",
            "properties": {"text": {"type": "string", "description": "Text to echo back"}},
            "required": ["text"],
        },
    },
    {
        "name": "get_time",
        "title": "Current time",
        "description": "Return the server's current UTC time (ISO 8601).",
        "inputSchema": {"type": "object", "properties": {}},
    },
    {
        "name": "get_user_info",
        "title": "User info",
        "description": "Look up a demo user (ids 1..1000) and return it as JSON text.",
        "inputSchema": {
            "type": "object",
            "properties": {"user_id": {"type": ["integer", "string"], "description": "User id, 1..1000"}},
            "required": ["user_id"],
        },
    },
]


class _RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _wants_sse(request: Request) -> bool:
    if request.url.path.endswith("/sse"):
        return True
    accept = request.headers.get("accept", "")
    if "text/event-stream" not in accept:
        return False
    return "application/json" not in accept


def _reply(
    request: Request, payload: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = encode(payload)
    if status == 200 and _wants_sse(request):
        return Response(
            b"event: message\ndata: " + body + b"\n\n",
            status_code=200,
            headers={**(headers or {}), "Cache-Control": "no-cache"},
            media_type="text/event-stream",
        )
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def _error(request: Request, req_id: Any, code: int, message: str, status: int = 200) -> Response:
    return _reply(request, {"jsonrpc": "2.0", "id": req_id, "error": {"code": code, "message": message}}, status)


def _text(text: str, is_error: bool = False) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": is_error}


def _call_tool(params: dict[str, Any]) -> dict[str, Any]:
    name = params.get("name")
    args = params.get("arguments") or {}
    if not isinstance(name, str):
        raise _RpcError(INVALID_PARAMS, "tools/call needs params.name")
    if not isinstance(args, dict):
        raise _RpcError(INVALID_PARAMS, "tools/call params.arguments must be an object")
    if name == "echo":
        text = args.get("text", args.get("message"))
        if not isinstance(text, str):
            raise _RpcError(INVALID_PARAMS, "echo needs a string argument 'text'")
        return _text(text)
    if name == "get_time":
        return _text(_dt.datetime.now(_dt.timezone.utc).isoformat())
    if name == "get_user_info":
        raw = args.get("user_id")
        if raw is None or isinstance(raw, bool):
            raise _RpcError(INVALID_PARAMS, "get_user_info needs an argument 'user_id'")
        uid = data.parse_id(str(raw), data.N_USERS)
        if uid is None:
            return _text(f"user {raw} not found", is_error=True)
        return _text(data.USER_JSON[uid - 1].decode())
    raise _RpcError(INVALID_PARAMS, f"Unknown tool: {name}")


async def handle(request: Request, state: DemoState) -> Response:
    """POST /mcp (and /mcp/sse)."""
    body = await request.body()
    try:
        msg = decode(body)
    except ValueError:
        return _error(request, None, PARSE_ERROR, "Parse error", status=400)
    if isinstance(msg, list):
        return _error(request, None, INVALID_REQUEST, "JSON-RPC batches are not supported", status=400)
    if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
        return _error(request, None, INVALID_REQUEST, "Invalid Request: expected a JSON-RPC 2.0 object", 400)

    method = msg.get("method")
    has_id = "id" in msg
    req_id = msg.get("id")

    if method == "initialize":
        if not has_id:
            return _error(request, None, INVALID_REQUEST, "initialize must be a request (with an id)", 400)
        params = msg.get("params") or {}
        version = params.get("protocolVersion") if isinstance(params, dict) else None
        session_id = secrets.token_hex(16)
        state.mcp_open(session_id)
        result = {
            "protocolVersion": version if isinstance(version, str) and version else PROTOCOL_VERSION,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": SERVER_INFO,
            "instructions": "perftui demo MCP server: tools echo, get_time, get_user_info.",
        }
        return _reply(request, {"jsonrpc": "2.0", "id": req_id, "result": result}, headers={"Mcp-Session-Id": session_id})

    session_id = request.headers.get(SESSION_HEADER)
    if not session_id:
        return _error(request, req_id, SESSION_ERROR, "Bad Request: missing Mcp-Session-Id header", status=400)
    if not state.mcp_touch(session_id):
        return _error(request, req_id, SESSION_ERROR, "Session not found (expired or terminated)", status=404)

    if not isinstance(method, str):
        if "result" in msg or "error" in msg:  # a client's response to a server request
            return Response(status_code=202)
        return _error(request, req_id, INVALID_REQUEST, "Invalid Request: missing method", status=400)
    if not has_id:  # notification: notifications/initialized, notifications/cancelled, ...
        return Response(status_code=202)

    params = msg.get("params")
    if params is None:
        params = {}
    try:
        if not isinstance(params, dict):
            raise _RpcError(INVALID_PARAMS, "params must be an object")
        if method == "ping":
            result: dict[str, Any] = {}
        elif method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "tools/call":
            result = _call_tool(params)
        else:
            raise _RpcError(METHOD_NOT_FOUND, f"Method not found: {method}")
    except _RpcError as exc:
        return _error(request, req_id, exc.code, exc.message)
    return _reply(request, {"jsonrpc": "2.0", "id": req_id, "result": result})


async def handle_delete(request: Request, state: DemoState) -> Response:
    """DELETE /mcp: end the session named by the header."""
    session_id = request.headers.get(SESSION_HEADER)
    if not session_id:
        return _error(request, None, SESSION_ERROR, "Bad Request: missing Mcp-Session-Id header", status=400)
    if not state.mcp_close(session_id):
        return _error(request, None, SESSION_ERROR, "Session not found (expired or terminated)", status=404)
    return Response(status_code=200)
