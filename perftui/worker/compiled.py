"""Compiled steps: a plan step turned, once per worker, into what runs per request.

``CompiledStep`` holds what every kind needs (endpoint recorder, ``if``, think, timeout) and, for
HTTP, GraphQL and MCP steps, the pre-rendered request (origin, path, query, headers, body; a fully
static request is serialized once); ``compile_checks`` the captures and expectations applied to a
response or message. ``perftui.worker.scenario.compile_step`` decides, from the step's type, which
parts a step gets; the protocol modules (``perftui.worker.ws``, ``perftui.worker.rpc``) attach their
own compiled action. ``StepRunner`` is what those modules may use of the runner.

Imported by ``scenario``, ``ws``, ``rpc`` and ``h2transport`` (for types); imports none of them,
so the engine has no import circle.
"""

from __future__ import annotations

import re
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import msgspec

from perftui.jsonpath import compile_path
from perftui.plan import Defaults, GraphQLStep, HttpStep, McpStep, Plan, Step, duration_s
from perftui.template import compile_template
from perftui.worker.stats import EndpointRecorder, McpStats, WsStats
from perftui.worker.transport import HttpPool, build_request


class StepRunner(Protocol):
    """What the protocol modules (``ws``, ``rpc``) use of the scenario runner
    (``perftui.worker.scenario.ScenarioRunner``)."""

    ws_stats: WsStats
    mcp_stats: McpStats
    errors_sample: deque[str]
    """The last few error descriptions, shipped with snapshots."""

    def pool_for(self, origin: Origin) -> HttpPool:
        """The connection pool of an origin (made on first use)."""
        ...

    def tls_context(self) -> ssl.SSLContext:
        """The worker's TLS context (``[defaults].tls_verify`` applied)."""
        ...

    def check_and_capture(self, step: CompiledStep, resp: Any, vars: dict) -> str | None:
        """Apply a step's captures and expectations to a response or message (``resp.body``,
        ``resp.headers``); the first failed check's description, or None."""
        ...

    def recorder_for(self, name: str) -> EndpointRecorder:
        """The recorder of an endpoint (made on first use)."""
        ...


class Origin(msgspec.Struct, frozen=True):
    scheme: str
    host: str
    port: int

    @classmethod
    def from_url(cls, url: str) -> "Origin":
        parts = urlsplit(url)
        scheme = parts.scheme or "http"
        port = parts.port or (443 if scheme == "https" else 80)
        return cls(scheme, parts.hostname or "127.0.0.1", port)

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def compile_query(step: Step) -> list[tuple[str, Any]]:
    """A step's ``query`` as (name, template) pairs; booleans as ``true``/``false``."""
    return [(k, compile_template(str(v).lower() if isinstance(v, bool) else str(v))) for k, v in step.query.items()]


def merged_headers(defaults: Defaults, step: Step) -> dict[str, tuple[str, str]]:
    """``[defaults].headers`` overlaid with the step's, case-insensitively: lower name -> (name, value)."""
    merged: dict[str, tuple[str, str]] = {}
    for k, v in defaults.headers.items():
        merged[k.lower()] = (k, v)
    for k, v in step.headers.items():
        merged[k.lower()] = (k, v)
    return merged


class CompiledStep:
    """One step, pre-compiled; a fully static request is serialized once and reused."""

    def __init__(self, step: Step, plan: Plan, recorder_for: Callable[[str], EndpointRecorder]):
        """What every kind has (name, ``if``, think, recorder, timeout); the kind's own part is
        added by ``compile_request`` / ``compile_checks`` and the protocol modules, as
        ``perftui.worker.scenario.compile_step`` decides from the step's type."""
        d = plan.defaults
        self.kind = step.kind
        self.name = step.endpoint
        self.if_var = step.if_ if isinstance(step.if_, str) else None
        self.think = duration_s(step.think) if step.think is not msgspec.UNSET else 0.0
        self.graphql = False
        # HTTP and GraphQL steps run through ScenarioRunner._request; MCP and WebSocket steps
        # through their modules (self.mcp / self.ws); pure pauses (kind "think") have neither.
        self.mcp: Any = None
        """``perftui.worker.rpc.McpAction`` of an ``mcp`` step."""
        self.ws: Any = None
        """``perftui.worker.ws.WsAction`` of a WebSocket step."""
        self.sql: Any = None
        """``perftui.worker.sql.SqlAction`` of a ``sql`` / ``transaction`` step."""
        if self.kind == "think":
            return
        self.recorder: EndpointRecorder = recorder_for(self.name)
        self.timeout = duration_s(step.timeout if step.timeout is not msgspec.UNSET else d.timeout)
        self.keep_alive = d.keep_alive

    def compile_request(self, step: HttpStep | GraphQLStep | McpStep, plan: Plan, default_origin: Origin,
                        base_path: str, *, url: str, method: str, content_type_json: bool = False,
                        body_json: Any = None, body: str | None = None) -> None:
        """The HTTP request of an ``http``, ``graphql`` or ``mcp`` step: origin, path, query,
        headers, body, checks, redirects; a fully static request is serialized here, once."""
        d = plan.defaults
        self.method = method
        self.head = self.method == "HEAD"
        if url.startswith(("http://", "https://")) and "{{" not in url.split("/", 3)[2]:
            self.origin = Origin.from_url(url)
            parts = urlsplit(url)
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
        else:
            self.origin = default_origin
            # relative to the target, base path included: "http://h/base" + "/p" -> GET /base/p
            path = base_path + (url if url.startswith("/") else "/" + url)
        self.path = compile_template(path)
        self.pool: HttpPool | None = None
        """Bound by the runner on first use (``ScenarioRunner._bind_pool``)."""
        self.query = compile_query(step) if isinstance(step, HttpStep) else []
        merged = merged_headers(d, step)
        if content_type_json:
            merged.setdefault("content-type", ("Content-Type", "application/json"))
        self.body_json = body_json
        self.body = compile_template(body) if body is not None else None
        self.headers = [(k, compile_template(v)) for k, v in merged.values()]
        self.compile_checks(step)
        self.http2 = d.http2 and self.kind in ("http", "graphql")
        self.max_redirects = d.max_redirects if d.follow_redirects and self.kind == "http" else 0
        # A redirect's headers (Location) come with any 3xx answer: the HTTP/1.1 transport
        # re-parses them only then, so following redirects costs nothing per ordinary request.
        # HTTP/2 hands over a response's headers only when asked for them.
        if self.max_redirects and self.http2:
            self.want_headers = True
        self.static_request = None
        if (self.kind != "mcp" and self.path.static and all(t.static for _, t in self.query)
                and all(t.static for _, t in self.headers)
                and (self.body is None or self.body.static) and (self.body_json is None or self.body_json.static)):
            self.static_request = self._serialize({})

    def compile_checks(self, step: Step) -> None:
        """Captures and expectations (on an HTTP response, a WebSocket message, a JSON-RPC answer)."""
        self.captures = []
        want_body = want_headers = False
        for c in step.capture:
            if c.json is not msgspec.UNSET:
                self.captures.append((c.as_, "json", compile_path(c.json)))
                want_body = True
            elif c.header is not msgspec.UNSET:
                self.captures.append((c.as_, "header", c.header.lower().encode()))
                want_headers = True
            else:
                self.captures.append((c.as_, "regex", re.compile(c.regex)))
                want_body = True
        exp = step.expect if step.expect is not msgspec.UNSET else None
        self.expect_status: frozenset[int] | None = None
        self.json_equals: list = []
        self.json_exists: list = []
        self.body_contains: bytes | None = None
        if exp is not None:
            if exp.status is not msgspec.UNSET:
                self.expect_status = frozenset(exp.status if isinstance(exp.status, list) else [exp.status])
            self.json_equals = [(compile_path(p), v) for p, v in exp.json_equals.items()]
            self.json_exists = [compile_path(p) for p in exp.json_exists]
            if exp.body_contains is not msgspec.UNSET:
                self.body_contains = exp.body_contains.encode()
            want_body = want_body or bool(self.json_equals or self.json_exists or self.body_contains)
        self.want_body = want_body
        self.want_headers = want_headers
        self.has_checks = want_body or want_headers
        """Captures or expectations to apply to each response (not: headers wanted for redirects)."""

    def target(self, vars: dict) -> str:
        """Path and query of the request, rendered."""
        target = self.path.render(vars)
        if self.query:
            qs = "&".join(f"{quote(k, safe='')}={quote(t.render(vars), safe='')}" for k, t in self.query)
            target += ("&" if "?" in target else "?") + qs
        return target

    def redirected(self, vars: dict, status: int, origin: "Origin") -> tuple[str, list[tuple[str, str]], bytes | None]:
        """Method, headers and body of the request after a redirect: 303 (and 301/302 after a
        POST) become a GET without a body, as browsers and curl do; credentials are not sent to
        another origin. Used by HTTP/1.1 (``redirect_bytes``) and HTTP/2 alike."""
        keep_method = status in (307, 308) or self.method in ("GET", "HEAD")
        method = self.method if keep_method else "GET"
        drop = {"content-type", "content-length"} if not keep_method else set()
        if origin != self.origin:
            drop |= {"authorization", "cookie", "proxy-authorization"}
        headers = [(k, t.render(vars)) for k, t in self.headers if k.lower() not in drop]
        body = None
        if keep_method:
            if self.body_json is not None:
                body = self.body_json.render(vars)
            elif self.body is not None:
                body = self.body.render(vars).encode()
        return method, headers, body

    def redirect_bytes(self, vars: dict, status: int, origin: "Origin", target: str) -> bytes:
        """The HTTP/1.1 request to send after a redirect (see ``redirected``)."""
        method, headers, body = self.redirected(vars, status, origin)
        return build_request(method, target, origin.host_header, headers, body, keep_alive=self.keep_alive)

    def render(self, vars: dict) -> tuple[str, list[tuple[str, str]], bytes | None]:
        """(target, headers, body) of the request, rendered."""
        headers = [(k, t.render(vars)) for k, t in self.headers]
        if self.body_json is not None:
            body = self.body_json.render(vars)
        elif self.body is not None:
            body = self.body.render(vars).encode()
        else:
            body = None
        return self.target(vars), headers, body

    def _serialize(self, vars: dict) -> bytes:
        target, headers, body = self.render(vars)
        return build_request(self.method, target, self.origin.host_header, headers, body, keep_alive=self.keep_alive)

    def request_bytes(self, vars: dict) -> bytes:
        return self.static_request if self.static_request is not None else self._serialize(vars)
