"""Scenario execution inside a worker: compiles a plan's scenarios once, then runs iterations.

An *iteration* is one pass through one scenario (picked by weight) for one virtual user. In the
open model every arrival is a new virtual user running one iteration; in the closed model each
virtual user runs iterations back to back and keeps its variables (captures) between them.

Timing: the first request of an open-model iteration is measured from the iteration's *intended*
start (its slot in the schedule), so time spent queued behind a slow target counts (no coordinated
omission). Later requests of the flow are measured from when their step began. Service time is
always measured from the moment the request bytes were written.

Failure rules: a transport failure (refused, timeout, reset, ...) ends the iteration, since later
steps usually depend on it; an HTTP error status or a failed expectation is counted and the flow
goes on (the step's ``if`` guards handle missing captures).

Steps are compiled once (``compile_step``, which dispatches on the step's type to
``perftui.worker.compiled.CompiledStep`` and the protocol modules' actions).

Protocol steps: ``graphql`` steps are HTTP requests with a GraphQL body (``perftui.worker.rpc``);
``mcp`` steps and WebSocket steps run in ``perftui.worker.rpc`` / ``perftui.worker.ws`` and
follow the same rules (the first operation of an open-model iteration is timed from the intended
start; a WebSocket failure, a failed MCP session setup or an MCP transport failure ends the
iteration; a JSON-RPC or GraphQL error is counted and the flow goes on). An iteration of a
scenario with WebSocket steps owns at most one connection, closed when the iteration ends; an
MCP session belongs to the virtual user (kept in its variables as ``$mcp``).
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections import deque
from typing import Any
from urllib.parse import urljoin, urlsplit

import msgspec

from perftui.jsonpath import MISSING
from perftui.plan import (
    MCP_INITIALIZE, MCP_TERMINATE, DataFile, GraphQLStep, HttpStep, McpStep, Plan, SqlStep, Step, ThinkStep,
    WsCloseStep, WsConnectStep, WsExpectStep, WsHoldStep, WsRequestStep, WsSendStep, duration_s,
)
from perftui.template import compile_json
from perftui.worker import h2transport, rpc, sql, ws
from perftui.worker.compiled import CompiledStep, Origin
from perftui.worker.datafeed import data_feeds
from perftui.worker.stats import EndpointRecorder, McpStats, WsStats
from perftui.worker.transport import HttpPool, TransportError

_json_decode = msgspec.json.decode
_REDIRECTS = frozenset((301, 302, 303, 307, 308))
_now = time.monotonic
_SAME_START = 0.00005
"""A closed-model request written within 50 us of its step's start (a free connection, no
connect) has latency = service time: the gap is the client's own serialization, which wrk does
not count either, and recording one value lets the statistics keep one histogram per request."""


def compile_step(step: Step, plan: Plan, recorder_for, default_origin: Origin, base_path: str = "",
                 sql_pool_for=None) -> CompiledStep:
    """Compile one step for the engine: the step's type decides, here and once, which parts it
    gets and which module runs it (``ScenarioRunner._request``, ``rpc.run_mcp_step``,
    ``ws.run_step``); nothing per request looks at the kind again but the runner's branch."""
    cs = CompiledStep(step, plan, recorder_for)
    d = plan.defaults
    match step:
        case ThinkStep():
            pass
        case HttpStep():
            body_json = compile_json(step.json) if step.json is not msgspec.UNSET else None
            body = step.body if body_json is None and step.body is not msgspec.UNSET else None
            cs.compile_request(step, plan, default_origin, base_path, url=step.url, method=step.method.upper(),
                               content_type_json=body_json is not None, body_json=body_json, body=body)
        case GraphQLStep():
            cs.graphql = True
            variables = step.variables if step.variables is not msgspec.UNSET else None
            operation = step.operation if step.operation is not msgspec.UNSET else None
            cs.compile_request(step, plan, default_origin, base_path,
                               url=step.url if step.url is not msgspec.UNSET else "/graphql", method="POST",
                               content_type_json=True, body_json=rpc.GraphQLBody(step.graphql, variables, operation))
            cs.want_body = True  # to see "errors"
        case McpStep():
            url = step.url if step.url is not msgspec.UNSET else "/mcp"
            cs.compile_request(step, plan, default_origin, base_path, url=url, method="POST", content_type_json=True)
            cs.mcp = rpc.McpAction(step, recorder_for(MCP_INITIALIZE), recorder_for(MCP_TERMINATE))
            cs.mcp_key = (cs.origin, url)
            return cs
        case WsConnectStep() | WsSendStep() | WsRequestStep() | WsExpectStep() | WsHoldStep() | WsCloseStep():
            cs.compile_checks(step)
            cs.ws = ws.WsAction(step, d, default_origin)
            return cs
        case SqlStep():
            pool = sql_pool_for(step.database if isinstance(step.database, str) else next(iter(plan.databases)))
            cs.sql = sql.SqlAction(step, pool, pool.stats, cs.name)
            return cs
    if cs.kind != "think":
        if cs.http2:
            h2transport.prepare_step(cs)
        else:
            cs.recorder.protocol = "http/1.1"
    return cs


class CompiledScenario:
    def __init__(self, name: str, steps: list[CompiledStep]):
        self.name = name
        self.steps = steps
        self.uses_ws = any(s.ws is not None for s in steps)
        """Iterations hold per-iteration state (a WebSocket), closed when they end."""
        self.simple = (len(steps) == 1 and steps[0].kind == "http" and steps[0].if_var is None
                       and not steps[0].think)
        """One unconditional HTTP step without think time: the runner calls it directly."""


class ScenarioRunner:
    """Runs iterations for one worker; owns the connection pools and endpoint recorders. The
    protocol modules see it as a ``perftui.worker.compiled.StepRunner``."""

    def __init__(self, plan: Plan, target: str, *, worker_index: int = 0, seed: int = 0, worker_count: int = 1):
        self.plan = plan
        self.worker_index = worker_index
        self.worker_count = worker_count
        self.sql_stats = sql.SqlStats()
        self.errors_sample: deque[str] = deque(maxlen=5)
        self.rng = random.Random(seed * 1000 + worker_index)
        self.recorders: dict[str, EndpointRecorder] = {}
        self.default_origin = Origin.from_url(target)
        self.base_path = urlsplit(target).path.rstrip("/")
        """The target's path ("/base" of "http://h:8080/base"), put before every relative URL."""
        self.connect_timeout = duration_s(plan.defaults.connect_timeout)
        self.pools: dict[Origin, HttpPool] = {}
        self.max_connections: int | None = plan.defaults.max_connections or None
        """The plan's bound on connections per origin (None: the worker picks one per model)."""
        self.connection_limit = 0
        self.adaptive_connections = False
        self.late_threshold = duration_s(plan.defaults.late_threshold)
        self.ssl_context: ssl.SSLContext | None = None
        self.scenarios = [
            CompiledScenario(s.name, [compile_step(st, plan, self.recorder_for, self.default_origin, self.base_path,
                                                   self.sql_pool_for)
                                      for st in s.steps])
            for s in plan.scenarios
        ]
        self.on_start = (CompiledScenario("on_start", [compile_step(st, plan, self.recorder_for, self.default_origin,
                                                                     self.base_path, self.sql_pool_for)
                                                        for st in plan.on_start])
                         if plan.on_start else None)
        """``[[on_start]]``: run once per virtual user before its first iteration."""
        weights = [max(0.0, float(s.weight)) for s in plan.scenarios]
        self.cum_weights = []
        acc = 0.0
        for w in weights:
            acc += w
            self.cum_weights.append(acc)
        self.constants = {k: v for k, v in plan.variables.items() if not isinstance(v, (list, DataFile))}
        self.lists = {k: v for k, v in plan.variables.items() if isinstance(v, list) and v}
        self.vu_feeds, self.iteration_feeds = data_feeds(plan.variables, worker_index, worker_count, self.rng)
        self.h2: h2transport.H2Client | None = None  # made on first use
        self.iterations = 0
        self.vu_counter = 0
        self.ws_stats = WsStats()
        self.mcp_stats = McpStats()
        self.uses_ws = any(sc.uses_ws for sc in self.scenarios)
        self.single = len(self.scenarios) == 1
        self.uses_mcp = any(st.mcp is not None for sc in self.scenarios for st in sc.steps)
        first = self.scenarios[0].steps[0] if self.single and self.scenarios[0].simple else None
        self.single_request: CompiledStep | None = (first if first is not None and not first.http2
                                                    and self.on_start is None else None)
        """The step, if the plan is one scenario of one plain HTTP/1.1 request (no think time, no
        condition, no ``[[on_start]]``): the open model's gate on its pool and the closed
        model's chains (``perftui.worker.main``, ``perftui.worker.chain``) work on it."""

    def take_extra(self) -> dict[str, float]:
        """Protocol counters since the last call, for ``Snapshot.extra`` (``ws.*`` counts per
        interval plus the ``ws.open_connections`` gauge; ``mcp.*`` counts); {} for HTTP-only plans."""
        out: dict[str, float] = {}
        if self.uses_ws:
            out.update(self.ws_stats.take())
        if self.uses_mcp:
            out.update(self.mcp_stats.take())
        if self.sql_stats.pools:
            out.update(self.sql_stats.take())
        return out

    def sql_pool_for(self, name: str) -> sql.SqlPool:
        """The pool of a ``[databases.NAME]`` entry in this worker (this worker's share of ``pool``)."""
        pool = self.sql_stats.pools.get(name)
        if pool is None:
            db = self.plan.databases[name]
            size = sql.pool_share(db.pool, self.worker_count, self.worker_index)
            pool = self.sql_stats.pools[name] = sql.SqlPool(name, db, size, self.errors_sample)
            pool.stats = self.sql_stats
            pool.min_connections = (min(size, sql.pool_share(db.min_connections, self.worker_count, self.worker_index))
                                    if db.min_connections else 0)
        return pool

    def warm_sql(self) -> None:
        """Open each SQL pool's ``min_connections`` in the background (call on the running loop)."""
        for pool in self.sql_stats.pools.values():
            pool.warm(pool.min_connections)

    def recorder_for(self, name: str) -> EndpointRecorder:
        rec = self.recorders.get(name)
        if rec is None:
            rec = self.recorders[name] = EndpointRecorder(name)
        return rec

    def new_vu(self) -> dict[str, Any]:
        """Variables of a fresh virtual user: constants plus one pick from each list."""
        self.vu_counter += 1
        vars = dict(self.constants)
        for k, values in self.lists.items():
            vars[k] = values[self.rng.randrange(len(values))]
        for k, feed in self.vu_feeds:
            vars[k] = feed.next()
        vars["$vu"] = self.vu_counter
        vars["$worker"] = self.worker_index
        vars["$iteration"] = 0
        return vars

    def pool_for(self, origin: Origin) -> HttpPool:
        pool = self.pools.get(origin)
        if pool is None:
            ctx = None
            if origin.scheme == "https":
                ctx = self.tls_context()
            pool = self.pools[origin] = HttpPool(
                origin.scheme, origin.host, origin.port, connect_timeout=self.connect_timeout,
                ssl_context=ctx, keep_alive=self.plan.defaults.keep_alive)
            pool.set_limit(self.connection_limit, self.adaptive_connections)
        return pool

    def set_connection_limit(self, limit: int, adaptive: bool = False) -> None:
        """Connections per origin from now on (0 = unlimited), for existing and new pools;
        ``adaptive``: grown toward ``limit`` while that completes more (``HttpPool.set_limit``).
        Connections above a lowered limit close as they finish their request."""
        self.connection_limit = limit
        self.adaptive_connections = adaptive
        for pool in self.pools.values():
            pool.set_limit(limit, adaptive)

    def _bind_pool(self, step: CompiledStep) -> HttpPool:
        """A step's origin never changes: look its pool up once, not on every request."""
        step.pool = self.pool_for(step.origin)
        return step.pool

    def tls_context(self) -> ssl.SSLContext:
        if self.ssl_context is None:
            ctx = ssl.create_default_context()
            if not self.plan.defaults.tls_verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self.ssl_context = ctx
        return self.ssl_context

    @property
    def open_connections(self) -> int:
        h2 = self.h2.open_connections if self.h2 is not None else 0
        db = sum(p.open for p in self.sql_stats.pools.values())
        return sum(p.open_connections for p in self.pools.values()) + self.ws_stats.open + h2 + db

    def pick(self) -> CompiledScenario:
        cw = self.cum_weights
        if len(cw) == 1:
            return self.scenarios[0]
        return self.rng.choices(self.scenarios, cum_weights=cw)[0]

    async def iteration(self, vars: dict[str, Any], intended: float | None,
                        scenario: CompiledScenario | None = None) -> None:
        """Run one iteration. ``intended`` is the scheduled start (open model) or None;
        ``scenario`` a given one (a benchmark's) instead of one picked by weight."""
        if self.on_start is not None and "$started" not in vars:
            if not await self._on_start(vars, intended):
                return
            intended = None
        self.iterations += 1
        vars["$iteration"] += 1
        if self.iteration_feeds:
            for k, feed in self.iteration_feeds:
                vars[k] = feed.next()
        if scenario is None:
            scenario = self.scenarios[0] if self.single else self.pick()
        if not scenario.uses_ws:
            if scenario.simple:
                # one plain HTTP step: no step loop, one coroutine frame less (~0.5 us/request)
                step = scenario.steps[0]
                try:
                    await self._request(step, vars, intended)
                except asyncio.CancelledError:
                    step.recorder.failure("interrupted")  # as in _steps: counted, never dropped
                    raise
            else:
                await self._steps(scenario, vars, intended, None)
        else:
            it = ws.IterationState()
            try:
                await self._steps(scenario, vars, intended, it)
            except BaseException:
                it.abort()
                raise
            await it.finish()
        if intended is not None and self.uses_mcp and "$mcp" in vars:
            await rpc.end_sessions(self, vars)  # an open-model virtual user ends with its iteration

    async def _on_start(self, vars: dict[str, Any], intended: float | None) -> bool:
        """A virtual user's ``[[on_start]]``: True when every step went through (its captures are
        then the user's for good). After a failure the user's iteration is not run and it tries
        again before the next one, a closed-model user after a second's pause (not in a loop
        against a target that refuses it)."""
        vars.pop("$failed", None)
        if await self._steps(self.on_start, vars, intended, None) and "$failed" not in vars:
            vars["$started"] = True
            return True
        if intended is None:
            await asyncio.sleep(1.0)
        return False

    async def run_step(self, step: CompiledStep, vars: dict[str, Any], intended: float | None = None) -> bool:
        """One HTTP, GraphQL or MCP step (a setup's or teardown's, one at a time)."""
        if step.mcp is not None:
            return await rpc.run_mcp_step(self, step, vars, intended)
        return await self._request(step, vars, intended)

    async def _steps(self, scenario: CompiledScenario, vars: dict[str, Any], intended: float | None,
                     it: ws.IterationState | None) -> bool:
        """The flow's steps; False when one ended it (a transport failure)."""
        for step in scenario.steps:
            if step.if_var is not None and not vars.get(step.if_var):
                continue
            if step.kind != "think":
                try:
                    if step.ws is not None:
                        ok = await ws.run_step(self, step, it, vars, intended)
                    elif step.mcp is not None:
                        ok = await rpc.run_mcp_step(self, step, vars, intended)
                    elif step.sql is not None:
                        ok = await sql.run_sql_step(self, step, vars, intended)
                    else:
                        ok = await self._request(step, vars, intended)
                except asyncio.CancelledError:
                    # still in flight when the run ended and its grace period ran out: counted,
                    # never silently dropped (a hold cut short is no failed request)
                    if step.kind != "ws_hold":
                        step.recorder.failure("interrupted")
                    raise
                intended = None  # only an iteration's first action is timed from its schedule slot
                if not ok:
                    return False
            if step.think:
                await asyncio.sleep(step.think)
        return True

    async def _request(self, step: CompiledStep, vars: dict, intended: float | None) -> bool:
        started = _now()
        if intended is not None and intended < started:
            started = intended  # an arrival that fired a moment early is timed from its send
        rec = step.recorder
        try:
            if step.http2:
                resp = await (self.h2 or self._http2()).request(step, vars)
            else:
                pool = step.pool or self._bind_pool(step)
                resp = await pool.request(step.request_bytes(vars), timeout=step.timeout, head=step.head,
                                          want_body=step.want_body, want_headers=step.want_headers)
        except TransportError as exc:
            rec.failure(exc.kind)
            self.errors_sample.append(f"{exc.kind}: {step.name}: {exc}")
            return False
        kind = None
        if step.max_redirects and resp.status in _REDIRECTS:
            try:
                resp, kind = await self._follow(step, vars, resp)
            except TransportError as exc:
                rec.failure(exc.kind)
                self.errors_sample.append(f"{exc.kind}: {step.name} (after a redirect): {exc}")
                return False
        self.judge(step, vars, started, resp, kind, intended)
        return True

    def judge(self, step: CompiledStep, vars: dict, started: float, resp, kind: str | None = None,
              intended: float | None = None) -> None:
        """Count a step's final response: its error kind (status, ``expect_status``, checks,
        GraphQL errors), captures, latency from ``started`` (the scheduled start ``intended``
        in the open model) and service time from the send."""
        rec = step.recorder
        status = resp.status
        if kind is None and (status not in step.expect_status if step.expect_status is not None else status >= 400):
            kind = "http_5xx" if status >= 500 else "http_4xx" if status >= 400 else "expect_failed"
        if step.has_checks:
            failed = self.check_and_capture(step, resp, vars)
            if failed and kind is None:
                kind = "expect_failed"
                self.errors_sample.append(f"expect_failed: {step.name}: {failed}")
        if step.graphql and kind is None and status < 300:
            gql = rpc.graphql_errors(resp.body)
            if gql is not None:
                kind = "graphql_error"
                self.errors_sample.append(f"graphql_error: {step.name}: {gql}")
        if kind is not None and kind not in ("expect_failed", "graphql_error", "redirect_loop"):
            self.errors_sample.append(f"{kind}: {step.name}: HTTP {status}")
        service_us = int((resp.t_done - resp.t_sent) * 1e6)
        if intended is None and resp.t_sent - started < _SAME_START:
            latency_us = service_us  # sent at once on a free connection: one measurement
        else:
            latency_us = int((resp.t_done - started) * 1e6)
        rec.response(status, latency_us, service_us, resp.body_size, kind)
        if kind is not None:
            vars["$failed"] = kind  # what an on_start reads (perftui.worker.stages for setup)

    async def _follow(self, step: CompiledStep, vars: dict, resp) -> tuple[Any, str | None]:
        """Follow a redirect chain; returns the final response (with ``t_sent`` of the first
        request, so service time covers the chain) and ``"redirect_loop"`` past the limit."""
        first_sent = resp.t_sent
        origin = step.origin
        url = f"{origin.scheme}://{origin.host_header}{step.target(vars)}"
        for hop in range(step.max_redirects + 1):
            location = None
            for k, v in resp.headers or ():
                if k.lower() == b"location":
                    location = v.decode("latin-1")
                    break
            if resp.status not in _REDIRECTS or location is None:
                resp.t_sent = first_sent
                return resp, None
            if hop == step.max_redirects:
                break
            url = urljoin(url, location)
            origin = Origin.from_url(url)
            parts = urlsplit(url)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            if step.http2:
                resp = await self.h2.redirect(step, vars, resp.status, origin, target)
                continue
            data = step.redirect_bytes(vars, resp.status, origin, target)
            resp = await self.pool_for(origin).request(data, timeout=step.timeout, head=step.head,
                                                       want_body=step.want_body, want_headers=True)
        self.errors_sample.append(f"redirect_loop: {step.name}: more than {step.max_redirects} redirects (last to {url})")
        resp.t_sent = first_sent
        return resp, "redirect_loop"

    def check_and_capture(self, step: CompiledStep, resp, vars: dict) -> str | None:
        """Apply captures and expectations; return a description of the first failed check."""
        doc: Any = MISSING
        body = resp.body or b""
        if step.json_equals or step.json_exists or any(kind == "json" for _, kind, _ in step.captures):
            try:
                doc = _json_decode(body) if body else MISSING
            except msgspec.DecodeError:
                doc = MISSING
        for name, kind, how in step.captures:
            if kind == "json":
                value = how.find(doc) if doc is not MISSING else MISSING
                if value is not MISSING:
                    vars[name] = value
            elif kind == "header":
                for k, v in resp.headers or ():
                    if k.lower() == how:
                        vars[name] = v.decode("latin-1")
                        break
            else:
                m = how.search(body.decode("utf-8", "replace"))
                if m:
                    vars[name] = m.group(1) if m.groups() else m.group(0)
        if doc is MISSING and (step.json_equals or step.json_exists):
            return "response body is not JSON"
        for path, expected in step.json_equals:
            got = path.find(doc)
            if got != expected:
                return f"{path.source} = {got!r}, expected {expected!r}" if got is not MISSING else f"{path.source} missing"
        for path in step.json_exists:
            if path.find(doc) is MISSING:
                return f"{path.source} missing"
        if step.body_contains is not None and step.body_contains not in body:
            return f"body does not contain {step.body_contains.decode()!r}"
        return None

    def _http2(self):
        if self.h2 is None:
            d = self.plan.defaults
            self.h2 = h2transport.H2Client(connect_timeout=self.connect_timeout, tls_verify=d.tls_verify,
                                           max_streams=d.h2_streams, notes=self.errors_sample)
        return self.h2

    async def close(self) -> None:
        for pool in self.pools.values():
            await pool.close()
        for db in self.sql_stats.pools.values():
            await db.close()
        if self.h2 is not None:
            await self.h2.close()
