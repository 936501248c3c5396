"""Probing the system under test: health checks and metrics scrapes over HTTP.

Runs in the perftui process (the coordinator's event loop), never in the workers, with its own
httpx ``AsyncClient``: a handful of requests per second does not need the engine's fast
transport, and must not compete with it. Each health URL and the metrics URL has its own loop,
so a URL that hangs until its timeout delays nobody else. Results become ``HealthSample`` and
``MetricsSample`` objects handed to ``apply`` (``MonitorState.apply``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from perftui.monitor.metrics import Scrape, SeriesReader, parse_selector
from perftui.monitor.model import HealthSample, MetricsSample, Sample, SeriesInfo

__all__ = ["TargetProbe", "resolve_url", "flatten"]

MAX_HEALTH_BODY = 1 << 20
MAX_METRICS_BODY = 32 << 20
MAX_FIELDS = 60
_RSS = parse_selector("process_resident_memory_bytes")

httpx: Any = None
"""The httpx module, imported when probing starts (``TargetProbe.run``): ~0.1 s of CPU at every
start that a run without health or metrics URLs has no use for."""


def _httpx() -> Any:
    global httpx
    if httpx is None:
        import httpx as module
        import sniffio  # noqa: F401 - httpcore imports it on every request; a failed import costs a sys.path scan (ENGINE.md)

        httpx = module
    return httpx


def resolve_url(url: str, target: str) -> str:
    """A plan URL against the (resolved) target: ``/health`` -> ``http://127.0.0.1:8080/health``."""
    if url.lower().startswith(("http://", "https://")):
        return url
    return target.rstrip("/") + ("" if url.startswith("/") else "/") + url


def flatten(obj: Any, limit: int = MAX_FIELDS) -> dict[str, Any]:
    """A JSON document as dotted keys with scalar values: ``{"checks": {"db": {"status": "up"}}}``
    -> ``{"checks.db.status": "up"}``. Lists use ``[i]``; strings are cut at 200 characters."""
    out: dict[str, Any] = {}

    def walk(v: Any, key: str, depth: int) -> None:
        if len(out) >= limit:
            return
        if isinstance(v, dict):
            if depth > 6:
                return
            for k, item in v.items():
                walk(item, f"{key}.{k}" if key else str(k), depth + 1)
        elif isinstance(v, list):
            if depth > 6:
                return
            for i, item in enumerate(v[:20]):
                walk(item, f"{key}[{i}]", depth + 1)
        elif isinstance(v, str):
            out[key or "$"] = v if len(v) <= 200 else v[:197] + "..."
        elif v is None or isinstance(v, (bool, int, float)):
            out[key or "$"] = v

    walk(obj, "", 0)
    return out


def describe_error(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    httpx = _httpx()
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        low = text.lower()
        if "refused" in low or "all connection attempts failed" in low:
            return "connection refused"
        return f"connect failed: {text}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"connection closed: {text}"
    return f"{type(exc).__name__}: {text}"


class _TooLarge(Exception):
    pass


class TargetProbe:
    def __init__(self, *, health: list[tuple[str, str]], metrics_url: str | None, metrics_format: str,
                 reader: SeriesReader, interval: float, timeout: float, headers: dict[str, str],
                 verify: bool, clock: Callable[[], float], apply: Callable[[Sample], None],
                 warn: Callable[[str], None] | None = None):
        self.health = health
        self.metrics_url = metrics_url
        self.metrics_format = metrics_format
        self.reader = reader
        self.interval = interval
        self.timeout = timeout
        self.headers = {"User-Agent": "perftui-monitor", **headers}
        self.verify = verify
        self.clock = clock
        self.apply = apply
        self.warn = warn or (lambda message: None)
        self._sent_series: list[SeriesInfo] | None = None
        self.client: httpx.AsyncClient | None = None

    async def run(self) -> None:
        httpx = _httpx()
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout), headers=self.headers, verify=self.verify, trust_env=False,
            follow_redirects=True,
            # A fresh connection per probe, as a load balancer's health check makes: a server that
            # still answers on an old keep-alive connection but accepts no new ones is down.
            limits=httpx.Limits(max_connections=len(self.health) + 2, max_keepalive_connections=0),
        )
        try:
            loops = [self._every(lambda u=u, r=r: self.probe_health(u, r), u) for u, r in self.health]
            if self.metrics_url:
                loops.append(self._every(self.scrape, self.metrics_url))
            await asyncio.gather(*loops)
        finally:
            await self.client.aclose()

    async def _every(self, fn: Callable[[], Awaitable[None]], what: str) -> None:
        """Call ``fn`` every ``interval`` on a fixed grid; a call that overruns skips slots."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        k = 0
        warned = False
        while True:
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a probe bug must not end monitoring
                if not warned:
                    warned = True
                    self.warn(f"monitor: probing {what} failed inside perftui: {type(exc).__name__}: {exc}")
            now = loop.time()
            k = max(k + 1, int((now - start) / self.interval) + 1)
            await asyncio.sleep(start + k * self.interval - now)

    async def _get(self, url: str, limit: int) -> tuple[httpx.Response, bytes]:
        assert self.client is not None
        async with asyncio.timeout(self.timeout), self.client.stream("GET", url) as r:
            chunks, size = [], 0
            async for chunk in r.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise _TooLarge(f"body larger than {limit >> 20} MiB")
                chunks.append(chunk)
            return r, b"".join(chunks)

    async def probe_health(self, url: str, resolved: str) -> None:
        t0 = time.perf_counter()
        try:
            r, body = await self._get(resolved, MAX_HEALTH_BODY)
        except (httpx.HTTPError, _TooLarge, OSError, TimeoutError) as exc:
            self.apply(HealthSample(url=url, t=self.clock(), up=False, error=describe_error(exc),
                                    latency_ms=None))
            return
        latency = round((time.perf_counter() - t0) * 1000, 3)
        fields: dict[str, Any] = {}
        ctype = r.headers.get("content-type", "")
        if "json" in ctype or body.lstrip()[:1] in (b"{", b"["):
            try:
                fields = flatten(msgspec.json.decode(body))
            except msgspec.DecodeError:
                fields = {}
        up = 200 <= r.status_code < 400
        self.apply(HealthSample(url=url, t=self.clock(), up=up, status=r.status_code, latency_ms=latency,
                                error=None if up else f"HTTP {r.status_code}", fields=fields))

    async def scrape(self) -> None:
        assert self.metrics_url is not None
        try:
            r, body = await self._get(self.metrics_url, MAX_METRICS_BODY)
        except (httpx.HTTPError, _TooLarge, OSError, TimeoutError) as exc:
            self.apply(MetricsSample(t=self.clock(), ok=False, error=describe_error(exc)))
            return
        t = self.clock()
        if r.status_code >= 400:
            self.apply(MetricsSample(t=t, ok=False, error=f"HTTP {r.status_code}"))
            return
        fmt = self.metrics_format
        if fmt == "auto":
            fmt = "json" if "json" in r.headers.get("content-type", "") or body.lstrip()[:1] in (b"{", b"[") else "prometheus"
        rss = None
        try:
            if fmt == "json":
                doc = msgspec.json.decode(body)
                values, missing, _ = self.reader.read_json(t, doc)
            else:
                text = body.decode("utf-8", "replace")
                # prometheus-client's parser is pure Python: keep big expositions off the loop
                scrape = await asyncio.to_thread(Scrape.parse, text) if len(text) > 8192 else Scrape.parse(text)
                values, missing, _ = self.reader.read_prometheus(t, scrape)
                hit = scrape.select(_RSS)
                rss = hit[0] if hit else None
        except (ValueError, msgspec.DecodeError) as exc:
            self.apply(MetricsSample(t=t, ok=False, error=f"unreadable {fmt} metrics: {exc}"))
            return
        infos = self.reader.infos()
        series = infos if infos != self._sent_series else None
        self._sent_series = infos
        self.apply(MetricsSample(t=t, ok=True, values=values, missing=missing, series=series, rss_bytes=rss))
