"""HTTP/2 for plans that ask for it (``[defaults] http2 = true``), through httpx.

perftui's own transport speaks HTTP/1.1 only; HTTP/2 goes through httpx (with ``h2``), which
multiplexes a VU's requests over a few connections. It costs far more CPU per request than the
HTTP/1.1 path (see ENGINE notes in the README), so it is opt-in. ``https://`` targets negotiate
HTTP/2 with ALPN (falling back to HTTP/1.1 if the server refuses); ``http://`` targets use
cleartext HTTP/2 with prior knowledge (h2c).

``Http2Client.request`` returns a ``transport.Response`` and raises
``transport.TransportError`` with the same error kinds, so the scenario runner treats both alike.
"""

from __future__ import annotations

import ssl
import time

import httpx

from perftui.engine.transport import Response, TransportError

_now = time.monotonic


def _kind(exc: Exception) -> str:
    text = str(exc).lower()
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect_timeout"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.TooManyRedirects):
        return "redirect_loop"
    if isinstance(exc, httpx.ConnectError):
        if isinstance(exc.__cause__, ssl.SSLError) or "ssl" in text or "certificate" in text:
            return "tls"
        if "name or service" in text or "nodename" in text or "getaddrinfo" in text:
            return "dns"
        return "connect_refused"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "reset" if "disconnect" in text or "closed" in text else "protocol"
    if isinstance(exc, (httpx.ReadError, httpx.WriteError)):
        return "reset"
    return "protocol"


class Http2Client:
    """One per worker: an httpx client for https (ALPN) and one for cleartext h2c."""

    def __init__(self, *, connect_timeout: float, tls_verify: bool, follow_redirects: bool, max_redirects: int):
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        common = dict(limits=limits, verify=tls_verify, follow_redirects=follow_redirects,
                      max_redirects=max_redirects, trust_env=False)
        self._tls = httpx.AsyncClient(http2=True, **common)
        self._clear = httpx.AsyncClient(http1=False, http2=True, **common)
        self.connect_timeout = connect_timeout

    async def request(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None, *,
                      timeout: float, want_body: bool) -> Response:
        client = self._tls if url.startswith("https:") else self._clear
        t0 = _now()
        try:
            resp = await client.request(method, url, headers=headers, content=body,
                                        timeout=httpx.Timeout(timeout, connect=min(timeout, self.connect_timeout)))
        except httpx.HTTPError as exc:
            raise TransportError(_kind(exc), f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
        t1 = _now()
        content = resp.content
        headers_raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers.multi_items()]
        return Response(resp.status_code, headers_raw, content if want_body else None, len(content), t0, t1)

    async def close(self) -> None:
        await self._tls.aclose()
        await self._clear.aclose()
