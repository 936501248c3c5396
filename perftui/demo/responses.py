"""Small, fast response helpers (msgspec JSON encoding) shared by the demo handlers."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

_encode = msgspec.json.encode
_decode = msgspec.json.decode
DecodeError = msgspec.DecodeError

JSON = "application/json"


class FastJSONResponse(Response):
    media_type = JSON

    def render(self, content: Any) -> bytes:
        return _encode(content)


def json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(content), status_code=status, headers=headers, media_type=JSON)


def raw_json(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A response from an already-encoded JSON body."""
    return Response(body, status_code=status, headers=headers, media_type=JSON)


def error(message: str, status: int) -> Response:
    return Response(_encode({"error": message}), status_code=status, media_type=JSON)


def decode(body: bytes) -> Any:
    """Decode a JSON request body; raises ``ValueError`` on empty or malformed input."""
    if not body:
        raise ValueError("empty body")
    try:
        return _decode(body)
    except DecodeError as exc:
        raise ValueError(str(exc)) from None


encode = _encode
