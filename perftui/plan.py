"""Test plans: the msgspec Structs a TOML plan is validated into.

The field docstrings are the user documentation (``docs/plans.md`` follows them). Loading,
``${ENV}`` substitution and error messages in TOML words live in ``perftui.planload``; this module
only declares the shape so that the engine, the coordinator and the UI can share it without
importing the loader.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec
from msgspec import UNSET, Struct, UnsetType, field

from perftui.units import parse_duration

# A duration is "30s", "5m", "1h30m", "250ms" or a number of seconds.
Duration = str | int | float
Scalar = str | int | float | bool


class _Strict(Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    pass


class Defaults(_Strict, kw_only=True):
    """``[defaults]``: applied to every request step unless the step overrides it."""

    timeout: Duration = "30s"
    """Total time for one request (connect + send + full response)."""
    connect_timeout: Duration = "10s"
    """Time allowed to open a TCP (and TLS) connection."""
    headers: dict[str, str] = {}
    """Headers added to every request (templating allowed)."""
    keep_alive: bool = True
    """Reuse connections (HTTP/1.1 keep-alive). ``false`` sends ``Connection: close``."""
    graceful_stop: Duration = "3s"
    """When the run ends (or a phase is skipped past the last): how long requests in flight may
    still finish. Those still going then are cancelled and counted as errors of kind
    ``interrupted`` (k6's ``gracefulStop``). A signal stops with a 1 s grace instead."""
    max_connections: int = 0
    """Connections per origin per worker process; past it requests wait for a free one (their
    latency keeps counting). 0: 1024 in the open model, one per virtual user in the closed one."""
    late_threshold: Duration = "10ms"
    """Open model: an arrival that starts later than this after its scheduled time is a late start."""
    tls_verify: bool = True
    """Verify TLS certificates for ``https://`` targets."""
    follow_redirects: bool = True
    """Follow 301/302/303/307/308 answers (as k6, Artillery and Locust do); the request's latency
    covers the whole chain and the final answer's status is the one recorded."""
    max_redirects: int = 10
    """More redirects than this in one request is an error of kind ``redirect_loop``."""
    http2: bool = False
    """Send HTTP and GraphQL steps over HTTP/2 (``perftui.worker.h2transport``): ALPN for
    ``https://`` (HTTP/1.1 if the server picks it), cleartext prior knowledge (h2c) for ``http://``."""
    h2_streams: int = 100
    """HTTP/2: most concurrent streams per connection (lowered to the server's
    SETTINGS_MAX_CONCURRENT_STREAMS); a request that finds every connection full opens another."""


class DemoOptions(_Strict, kw_only=True):
    """``[demo]``: how the embedded demo target behaves when ``target = "demo"``."""

    latency: str = "0ms"
    """Added server latency: ``"20ms"``, ``"uniform:5ms:50ms"``, ``"normal:20ms:5ms"``, ``"exp:20ms"``."""
    error_rate: float = 0.0
    """Fraction (0..1) of ``/api/*`` requests answered with HTTP 500."""
    port: int = 0
    """Port to listen on; 0 picks a free one."""


class Phase(_Strict, kw_only=True):
    """``[[phases]]``: one stage of the load profile. Exactly one of ``arrival_rate`` (open model),
    ``vus`` (closed model) or ``pause = true``."""

    name: str = ""
    """Shown on the dashboard and in the session; defaults to "phase N"."""
    duration: Duration
    """How long the phase lasts."""
    arrival_rate: float | UnsetType = UNSET
    """Open model: new scenario iterations started per second (across all workers)."""
    vus: int | UnsetType = UNSET
    """Closed model: virtual users, each running scenario iterations back to back."""
    ramp_to: float | UnsetType = UNSET
    """Ramp linearly from ``arrival_rate``/``vus`` to this value over the phase."""
    arrivals: Literal["uniform", "poisson"] = "uniform"
    """Open model: evenly spaced arrivals, or a Poisson process with the same mean rate."""
    max_in_flight: int | UnsetType = UNSET
    """Open model: at most this many iterations in flight; arrivals beyond it are dropped (counted)."""
    pause: bool = False
    """A pause phase: no load for ``duration``."""


class Capture(_Strict, kw_only=True):
    """One ``capture`` entry: take a value from the response into a variable."""

    as_: str = field(name="as")
    """Variable name to store the value in."""
    json: str | UnsetType = UNSET
    """JSON path into the response body, e.g. ``$.token`` or ``$.data.items[0].id``."""
    header: str | UnsetType = UNSET
    """Response header name (case-insensitive)."""
    regex: str | UnsetType = UNSET
    """Regular expression on the body; group 1 (or the whole match) is captured."""


class Expect(_Strict, kw_only=True):
    """``expect``: checks on the response. A failed check counts the request as an error of kind
    ``expect_failed`` (unless the status itself is the failure)."""

    status: int | list[int] | UnsetType = UNSET
    """Accepted status code(s). Without it, 2xx and 3xx are success, 4xx/5xx are errors."""
    json_equals: dict[str, Any] = {}
    """JSON path -> expected value, e.g. ``{ "$.status" = "ok" }``."""
    json_exists: list[str] = []
    """JSON paths that must be present."""
    body_contains: str | UnsetType = UNSET
    """Text the body must contain."""


class Step(_Strict, kw_only=True):
    """``[[scenarios.steps]]``: one request, or a pure think-time step (only ``think``), or one
    protocol action (``graphql``, ``mcp``, ``ws_connect``, ``ws_send``, ``ws_request``,
    ``ws_expect``, ``ws_hold``, ``ws_close``)."""

    name: str | UnsetType = UNSET
    """Metric name the request is grouped under; defaults to ``"METHOD url"`` with templates kept
    as written, so ``/api/bounties/{{ id }}`` is one endpoint."""
    method: str = "GET"
    """HTTP method."""
    url: str | UnsetType = UNSET
    """Path relative to the target (``/api/users``) or an absolute ``http(s)://`` URL. Templating allowed."""
    headers: dict[str, str] = {}
    """Request headers (templating allowed); merged over ``[defaults].headers``."""
    query: dict[str, Scalar] = {}
    """Query string parameters (templating allowed in string values)."""
    json: Any = UNSET
    """JSON body (any TOML value; templating allowed in strings). Sets ``Content-Type: application/json``."""
    body: str | UnsetType = UNSET
    """Raw body text (templating allowed)."""
    capture: list[Capture] = []
    """Values to capture from the response into variables."""
    expect: Expect | UnsetType = UNSET
    """Checks on the response."""
    if_: str | UnsetType = field(name="if", default=UNSET)
    """Run this step only if the named variable is set and not empty."""
    think: Duration | UnsetType = UNSET
    """Pause after this step (or, in a step without ``url``, just pause)."""
    timeout: Duration | UnsetType = UNSET
    """Overrides ``[defaults].timeout`` for this step. For ``ws_connect`` the handshake time
    (default ``[defaults].connect_timeout``); for ``ws_request``/``ws_expect`` the time to wait
    for the reply."""

    # -- GraphQL (POSTed as JSON through the HTTP engine) --
    graphql: str | UnsetType = UNSET
    """A GraphQL document (``query GetUsers { ... }``) POSTed as ``{"query", "variables",
    "operationName"}`` to ``url`` (default ``/graphql``). A 200 answer with ``errors`` fails with
    kind ``graphql_error``."""
    variables: dict[str, Any] | UnsetType = UNSET
    """GraphQL variables (templating allowed; ``"{{ x }}"`` keeps x's type)."""
    operation: str | UnsetType = UNSET
    """GraphQL ``operationName``; also names the endpoint (``GraphQL <operation>``)."""

    # -- MCP / JSON-RPC over Streamable HTTP --
    mcp: str | UnsetType = UNSET
    """JSON-RPC method sent to the MCP server at ``url`` (default ``/mcp``): ``tools/call``,
    ``tools/list``, ``resources/list``, ``prompts/list``, ``ping``, ... The session
    (``initialize`` + ``notifications/initialized``) is opened per virtual user on its first MCP step."""
    tool: str | UnsetType = UNSET
    """``tools/call``: the tool's name."""
    arguments: dict[str, Any] | UnsetType = UNSET
    """``tools/call``: the tool's arguments (templating allowed)."""
    params: dict[str, Any] | UnsetType = UNSET
    """Other methods: the JSON-RPC ``params`` (templating allowed)."""

    # -- WebSocket --
    ws_connect: str | UnsetType = UNSET
    """Open this virtual user's WebSocket: a path on the target (``/ws``; ws:// or wss:// from
    the target's scheme) or an absolute ``ws://``/``wss://`` URL. Templating allowed."""
    subprotocols: list[str] | UnsetType = UNSET
    """``ws_connect``: subprotocols to offer (``Sec-WebSocket-Protocol``)."""
    ws_send: Any = UNSET
    """Send one message: a string is sent as text, a table or array as JSON text (templating allowed)."""
    ws_request: Any = UNSET
    """Send a JSON message and wait for the reply carrying the same ``match`` field; the time
    between is the message round trip."""
    match: str | UnsetType = UNSET
    """``ws_request``: the correlation field (a key such as ``id``, or a JSON path); default ``"id"``."""
    ws_expect: Any = UNSET
    """Wait for a message: a table of ``field = value`` pairs (keys, or JSON paths starting with
    ``$``) that must all match, or a string the text must contain."""
    ws_hold: Duration | UnsetType = UNSET
    """Keep the connection open this long, counting the messages that arrive (subscriptions)."""
    ws_close: bool | UnsetType = UNSET
    """``ws_close = true``: close the connection (normal closure, code 1000)."""


class Scenario(_Strict, kw_only=True):
    """``[[scenarios]]``: a flow of steps; each iteration picks one scenario by weight."""

    name: str = ""
    weight: float = 1
    """Relative share of iterations that run this scenario."""
    steps: list[Step] = []


class MetricSeries(_Strict, kw_only=True):
    """One ``[monitor].series`` entry written as a table (a plain string is a Prometheus selector).
    Exactly one of ``select`` or ``json``."""

    select: str | UnsetType = UNSET
    """Prometheus selector: a metric name with optional label matchers (``=``, ``!=``, ``=~``,
    ``!~``), e.g. ``demo_http_requests_total{route="/api/users"}``. Matching samples are summed
    over the labels not named."""
    json: str | UnsetType = UNSET
    """JSON path into a JSON metrics document, e.g. ``$.process.rss_bytes``."""
    name: str = ""
    """Name in the timeline and on the chart; defaults to the selector or path as written."""
    rate: bool | UnsetType = UNSET
    """Chart the per-second rate instead of the value. Default: true for Prometheus counters
    (and histogram/summary ``_count``, ``_sum``, ``_bucket``), false for everything else."""
    scale: float = 1.0
    """Multiply by this: ``100`` turns CPU seconds per second into percent, ``1000`` seconds into ms."""
    quantile: float | UnsetType = UNSET
    """For a Prometheus histogram (``select`` its base name, e.g.
    ``demo_http_request_duration_seconds{route="/api/users"}``): this quantile (0..1) of what it
    observed between two scrapes, interpolated in the buckets like PromQL's ``histogram_quantile``."""


class GeneratorLimits(_Strict, kw_only=True):
    """``[monitor.generator]``: when perftui itself, not the target, is the bottleneck. Seconds
    that cross a limit are flagged ``generator_limited`` in the timeline and reported as suspect."""

    cpu_percent: float = 90
    """A perftui process (a worker or the coordinator) using at least this much of one core ..."""
    cpu_for: Duration = "2s"
    """... for at least this long."""
    loop_lag: Duration = "50ms"
    """A worker's event loop waking up later than this (it is too busy to send on time)."""
    schedule_lag: Duration = "50ms"
    """Open model: an arrival starting later than this after its slot."""


class Monitor(_Strict, kw_only=True):
    """``[monitor]``: watch the system under test while the load runs. perftui always watches its
    own processes and the machine; this section adds the target's health checks, its metrics and
    a local server process, and tunes the generator-bottleneck limits."""

    health: str | list[str] = []
    """Health-check URL(s), polled with GET every ``interval``: paths on the target (``/health``)
    or absolute URLs. Up means a 2xx/3xx answer within ``timeout``; a JSON body's fields (e.g.
    ``status``, ``checks.database.status``) are recorded."""
    metrics: str = ""
    """Metrics URL: Prometheus text exposition (``/metrics``) or a JSON document."""
    metrics_format: Literal["auto", "prometheus", "json"] = "auto"
    """``auto`` reads JSON when the answer is JSON, Prometheus text otherwise."""
    series: list[str | MetricSeries] = []
    """Metric series to record and chart: Prometheus selectors as strings, or tables (see
    ``MetricSeries``). Empty: process CPU %, RSS, open fds, request rates and request/connection
    gauges, whichever the target exposes (for JSON: its numeric fields)."""
    interval: Duration = "1s"
    """How often health URLs and the metrics URL are polled."""
    timeout: Duration = "2s"
    """Longest wait for one health or metrics answer; slower counts as down."""
    headers: dict[str, str] = {}
    """Headers sent with health and metrics requests (e.g. ``Authorization``; redacted in session files)."""
    process: str | int | UnsetType = UNSET
    """A process of the system under test on this machine, sampled with psutil (CPU %, RSS,
    threads, connections; children included): a pid, a process name or command-line substring,
    or ``"target"`` for the process listening on the target's port."""
    generator: GeneratorLimits = msgspec.field(default_factory=GeneratorLimits)


class Output(_Strict, kw_only=True):
    """``[output]``: what a run serves or writes besides its session (``perftui.export``)."""

    metrics_port: int | None = None
    """Serve perftui's live metrics for Prometheus on 127.0.0.1:PORT (as ``--metrics-port``)."""


class Plan(_Strict, kw_only=True):
    """A whole test plan (one TOML file)."""

    name: str = ""
    """Shown in the picker, the dashboard header and the session file. Defaults to the file name."""
    description: str = ""
    target: str = ""
    """Base URL of the system under test, or ``"demo"`` to start the embedded demo target."""
    defaults: Defaults = msgspec.field(default_factory=Defaults)
    demo: DemoOptions = msgspec.field(default_factory=DemoOptions)
    variables: dict[str, Scalar | list[Scalar]] = {}
    """Constants, or lists (one value picked at random per virtual user)."""
    phases: list[Phase] = []
    scenarios: list[Scenario] = []
    thresholds: list[str] = []
    """Pass/fail rules, e.g. ``"p95 < 200ms"``, ``"error_rate < 1%"``, ``"p99{GET /api/users} < 500ms"``."""
    monitor: Monitor = msgspec.field(default_factory=Monitor)
    """Target health and metrics, a local server process, generator-bottleneck limits."""
    output: Output = msgspec.field(default_factory=Output)


def phase_model(phase: Phase) -> Literal["open", "closed", "pause"]:
    if phase.pause:
        return "pause"
    if phase.vus is not UNSET:
        return "closed"
    return "open"


# ---- what the engine and the session need to know about steps ------------------------------


def duration_s(value: str | int | float) -> float:
    """Seconds for a plan duration (``"30s"``, ``"1m30s"``, ``250ms``, ``45``)."""
    return parse_duration(value)


def endpoint_name(step: Step) -> str:
    """The metric name a step's requests are grouped under: ``step.name``, or ``"METHOD url"``
    with the URL as written (templates kept) and without its query string. Protocol steps:
    ``GraphQL <operation>``, ``MCP <method>`` / ``MCP tools/call:<tool>``, ``WS connect <url>``,
    ``WS <type>`` (ws_request), ``WS send <type>``, ``WS expect <type>``, ``WS hold``."""
    if step.name is not UNSET and step.name:
        return step.name
    kind = step_kind(step)
    if kind == "http":
        url = step.url.split("#", 1)[0].split("?", 1)[0]
        return f"{step.method.upper()} {url}"
    if kind == "think":
        return "think"
    if kind == "graphql":
        return f"GraphQL {graphql_operation(step)}"
    if kind == "mcp":
        if step.mcp == "tools/call" and isinstance(step.tool, str):
            return f"MCP tools/call:{step.tool}"
        return f"MCP {step.mcp}"
    if kind == "ws_connect":
        return f"WS connect {step.ws_connect.split('#', 1)[0].split('?', 1)[0]}"
    if kind == "ws_hold":
        return "WS hold"
    if kind == "ws_close":
        return "WS close"
    body = step.ws_request if kind == "ws_request" else step.ws_send if kind == "ws_send" else step.ws_expect
    mtype = body.get("type") if isinstance(body, dict) else None
    label = mtype if isinstance(mtype, str) and mtype and "{{" not in mtype else ""
    if kind == "ws_request":
        return f"WS {label or 'request'}"
    verb = "send" if kind == "ws_send" else "expect"
    return f"WS {verb} {label}" if label else f"WS {verb}"


PROTOCOL_ACTIONS = ("graphql", "mcp", "ws_connect", "ws_send", "ws_request", "ws_expect", "ws_hold", "ws_close")
"""Step keys that make a step a protocol step (at most one per step)."""


def step_kind(step: Step) -> str:
    """``"http"``, ``"think"``, or the protocol action (one of ``PROTOCOL_ACTIONS``)."""
    for action in PROTOCOL_ACTIONS:
        if getattr(step, action) is not UNSET:
            return action
    return "http" if step.url is not UNSET else "think"


_GQL_OPERATION = re.compile(r"(?:^|[\s}])(query|mutation|subscription)\b\s*([A-Za-z_][A-Za-z0-9_]*)?")
_GQL_COMMENT = re.compile(r"#[^\n]*")


def graphql_operation(step: Step) -> str:
    """The operation a GraphQL step names: ``operation``, else the name in the document
    (``query GetUsers ...`` -> ``GetUsers``), else ``query``/``mutation``/``subscription``."""
    if isinstance(step.operation, str) and step.operation:
        return step.operation
    doc = _GQL_COMMENT.sub("", step.graphql if isinstance(step.graphql, str) else "")
    m = _GQL_OPERATION.search(doc)
    if m is None:
        return "query"  # the "{ ... }" shorthand
    return m.group(2) or m.group(1)


def step_endpoints(step: Step) -> list[tuple[str, str]]:
    """``(endpoint name, role)`` for every endpoint a step records into. Roles: ``http``,
    ``graphql``, ``mcp``, ``mcp.initialize``, ``mcp.terminate``, ``ws.connect``, ``ws.send``, ``ws.request``,
    ``ws.expect``, ``ws.hold``, ``ws.close``. Pauses record nothing."""
    kind = step_kind(step)
    if kind == "think":
        return []
    name = endpoint_name(step)
    if kind == "mcp":
        return [(name, "mcp"), (MCP_INITIALIZE, "mcp.initialize"), (MCP_TERMINATE, "mcp.terminate")]
    if kind.startswith("ws_"):
        return [(name, "ws." + kind[3:])]
    return [(name, kind)]


MCP_INITIALIZE = "MCP initialize"
"""Endpoint of every MCP session handshake (``initialize`` + ``notifications/initialized``)."""
MCP_TERMINATE = "MCP terminate"
"""Endpoint of the ``DELETE`` that ends an open-model virtual user's MCP session."""


def protocol_endpoints(plan: Plan) -> dict[str, str]:
    """Endpoint name -> role for every protocol endpoint of a plan (see ``step_endpoints``);
    plain HTTP endpoints are left out. The first role wins if two steps share a name."""
    roles: dict[str, str] = {}
    for sc in plan.scenarios:
        for st in sc.steps:
            for name, role in step_endpoints(st):
                if role != "http":
                    roles.setdefault(name, role)
    return roles
