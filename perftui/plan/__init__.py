"""Test plans: the msgspec Structs a TOML plan is validated into.

The field docstrings are the user documentation (``docs/plans.md`` follows them). Loading,
``${ENV}`` substitution and error messages in TOML words live in ``perftui.planload``; this module
only declares the shape so that the engine, the coordinator and the UI can share it without
importing the loader. Step kinds (one Struct per kind, with their endpoint names) are in
``perftui.plan.steps``; the shared small types in ``perftui.plan.common``. Value ranges are declared
with ``msgspec.Meta`` (``extra["range"]`` holds the loader's message for a value outside it).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from perftui.plan.common import Capture, Duration, Expect, Scalar, StatusCode, _Strict, duration_s
from perftui.plan.rules import Slo, SloAlert, ThresholdSpec, threshold_expr, threshold_label
from perftui.plan.stages import Benchmark, is_benchmark
from perftui.plan.data import DataFile
from perftui.plan.limit import FindLimit
from perftui.plan.steps import (
    ACTION_STEPS, MCP_INITIALIZE, MCP_TERMINATE, PROTOCOL_ACTIONS, STEP_TYPES, GraphQLStep, HttpStep, McpStep, Step,
    StepBase, ThinkStep, WsCloseStep, WsConnectStep, WsExpectStep, WsHoldStep, WsRequestStep, WsSendStep,
    SqlCapture, SqlExpect, SqlStatement, SqlStep, endpoint_name, graphql_operation, step_endpoints, step_from_dict, step_kind, step_type,
)

__all__ = [
    "ACTION_STEPS", "MCP_INITIALIZE", "MCP_TERMINATE", "PROTOCOL_ACTIONS", "STEP_TYPES", "Benchmark", "Capture", "DataFile",
    "Database", "Defaults", "DemoOptions", "Duration", "Expect", "FindLimit", "GeneratorLimits", "GraphQLStep", "HttpStep", "McpStep",
    "MetricSeries", "Monitor", "Phase", "Plan", "Profile", "Scalar", "Scenario", "Slo", "SloAlert", "SqlCapture", "SqlExpect",
    "SqlStatement", "SqlStep", "StatusCode", "Step", "StepBase", "ThinkStep", "ThresholdSpec", "WsCloseStep",
    "threshold_expr", "threshold_label",
    "WsConnectStep", "WsExpectStep", "WsHoldStep", "WsRequestStep", "WsSendStep", "duration_s", "endpoint_name",
    "graphql_operation", "is_benchmark", "phase_model", "shown_target", "protocol_endpoints", "step_endpoints",
    "step_from_dict", "step_kind", "step_type",
]

# Sanity limits: far above anything one machine can drive, low enough to catch a typo (and to
# keep every number inside msgpack's 64-bit integers).
MAX_RATE = 10_000_000.0
MAX_VUS = 1_000_000
MAX_IN_FLIGHT = 10_000_000
MAX_REDIRECTS = 100
MAX_WEIGHT = 1_000_000.0
MAX_PID = 4_194_304  # Linux's pid_max ceiling


def _range(ge=None, le=None, gt=None, lt=None, message: str = "") -> Meta:
    """A range the loader enforces through msgspec; ``message`` (``{value}`` for the value) is
    what a plan author reads when a value falls outside it."""
    return Meta(ge=ge, le=le, gt=gt, lt=lt, extra={"range": message})


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
    max_connections: Annotated[int, _range(ge=0, message="must be 0 (automatic) or more, got {value}")] = 0
    """Connections per origin per worker process; past it requests wait for a free one (their
    latency keeps counting). 0: 1024 in the open model, one per virtual user in the closed one."""
    late_threshold: Duration = "10ms"
    """Open model: an arrival that starts later than this after its scheduled time is a late start."""
    tls_verify: bool = True
    """Verify TLS certificates for ``https://`` targets."""
    follow_redirects: bool = True
    """Follow 301/302/303/307/308 answers (as k6, Artillery and Locust do); the request's latency
    covers the whole chain and the final answer's status is the one recorded."""
    max_redirects: Annotated[int, _range(ge=0, le=MAX_REDIRECTS, message=f"must be from 0 (no redirect followed) to {MAX_REDIRECTS}, got {{value}}")] = 10
    """More redirects than this in one request is an error of kind ``redirect_loop``."""
    http2: bool = False
    """Send HTTP and GraphQL steps over HTTP/2 (``perftui.worker.h2transport``): ALPN for
    ``https://`` (HTTP/1.1 if the server picks it), cleartext prior knowledge (h2c) for ``http://``."""
    h2_streams: Annotated[int, _range(ge=1, le=10_000, message="must be a number of streams from 1 to 10000, got {value}")] = 100
    """HTTP/2: most concurrent streams per connection (lowered to the server's
    SETTINGS_MAX_CONCURRENT_STREAMS); a request that finds every connection full opens another."""
    setup_timeout: Duration = "60s"
    """The most ``[[setup]]`` may take; past it the run stops before any load (k6's ``setupTimeout``)."""
    teardown_timeout: Duration = "10s"
    """The most ``[[teardown]]`` may take after the load, also after Ctrl-C (k6's ``teardownTimeout``)."""


class DemoOptions(_Strict, kw_only=True):
    """``[demo]``: how the embedded demo target behaves when ``target = "demo"``."""

    latency: str = "0ms"
    """Added server latency: ``"20ms"``, ``"uniform:5ms:50ms"``, ``"normal:20ms:5ms"``, ``"exp:20ms"``."""
    error_rate: Annotated[float, _range(ge=0, le=1, message="must be a fraction from 0 to 1 (0.05 = 5%), got {value:g}")] = 0.0
    """Fraction (0..1) of ``/api/*`` requests answered with HTTP 500."""
    port: Annotated[int, _range(ge=0, le=65535, message="must be a TCP port from 0 to 65535 (0 = any free port), got {value}")] = 0
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
    max_in_flight: Annotated[int, _range(gt=0, le=MAX_IN_FLIGHT, message="must be greater than 0, got {value}")] | UnsetType = UNSET
    """Open model: at most this many iterations in flight; arrivals beyond it are dropped (counted)."""
    pause: bool = False
    """A pause phase: no load for ``duration``."""


class Scenario(_Strict, kw_only=True):
    """``[[scenarios]]``: a flow of steps; each iteration picks one scenario by weight."""

    name: str = ""
    weight: Annotated[float, _range(ge=0, le=MAX_WEIGHT, message=f"must be from 0 to {MAX_WEIGHT:g}, got {{value:g}}")] = 1
    """Relative share of iterations that run this scenario."""
    steps: list[Any] = []
    """The steps, each a step kind (``perftui.plan.steps``). Declared ``Any`` because plans carry
    no tag field for msgspec to pick a kind by: plain tables are turned into kinds here."""
    benchmark: Benchmark | UnsetType = UNSET
    """Run this scenario as a benchmark: exact sample counts instead of phases (``Benchmark``)."""

    def __post_init__(self) -> None:
        if any(not isinstance(st, STEP_TYPES) for st in self.steps):
            self.steps = [step_from_dict(st) for st in self.steps]


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
    quantile: Annotated[float, _range(gt=0, lt=1, message="must be between 0 and 1 (0.99 for p99), got {value:g}")] | UnsetType = UNSET
    """For a Prometheus histogram (``select`` its base name, e.g.
    ``demo_http_request_duration_seconds{route="/api/users"}``): this quantile (0..1) of what it
    observed between two scrapes, interpolated in the buckets like PromQL's ``histogram_quantile``."""


class GeneratorLimits(_Strict, kw_only=True):
    """``[monitor.generator]``: when perftui itself, not the target, is the bottleneck. Seconds
    that cross a limit are flagged ``generator_limited`` in the timeline and reported as suspect."""

    cpu_percent: Annotated[float, _range(gt=0, le=100, message="must be a percentage of one core above 0 and at most 100, got {value:g}")] = 90
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
    process: str | Annotated[int, _range(gt=0, le=MAX_PID, message=f"a pid is a whole number from 1 to {MAX_PID}, got {{value}}")] | UnsetType = UNSET
    """A process of the system under test on this machine, sampled with psutil (CPU %, RSS,
    threads, connections; children included): a pid, a process name or command-line substring,
    or ``"target"`` for the process listening on the target's port."""
    generator: GeneratorLimits = msgspec.field(default_factory=GeneratorLimits)
    postgres: str | list[str] = []
    """PostgreSQL servers to watch (``perftui.monitor.pg``): names of ``[databases.NAME]``
    entries. Every ``interval`` perftui reads ``pg_stat_activity`` (connections by state, against
    ``max_connections``) and ``pg_stat_database`` (commits, rollbacks, deadlocks, blocks read and
    hit) over its own connection, as monitor series named ``db.NAME.*``."""


class Output(_Strict, kw_only=True):
    """``[output]``: what a run serves or writes besides its session (``perftui.export``)."""

    metrics_port: Annotated[int, _range(ge=1, le=65535, message="must be a TCP port from 1 to 65535, got {value}")] | None = None
    """Serve perftui's live metrics for Prometheus on 127.0.0.1:PORT (as ``--metrics-port``)."""


class Database(_Strict, kw_only=True):
    """``[databases.NAME]``: a PostgreSQL database that SQL steps (``sql``, ``transaction``) run
    against through a pool of connections (``perftui.worker.sql``; ``pip install 'perftui[sql]'``)."""

    dsn: str
    """``postgresql://user:${PGPASSWORD}@host:5432/dbname`` (libpq URI; ``?sslmode=...`` and the
    other asyncpg query options apply). The password, and any ``${ENV}`` value, is masked in
    sessions and messages."""
    pool: Annotated[int, _range(ge=1, le=10_000, message="must be a number of connections from 1 to 10000, got {value}")] = 10
    """Connections for the whole run, shared out between the worker processes (at least one
    each). Past it, virtual users wait for a free connection; the wait counts in their latency."""
    connect_timeout: Duration = "10s"
    """Time allowed to open one connection."""
    min_connections: Annotated[int, _range(ge=0, le=10_000, message="must be a number of connections from 0 to 10000, got {value}")] = 0
    """Connections opened as the workers start, before the first phase (shared out like
    ``pool``); the others are opened on demand. Set it to ``pool`` for a pool that is full from
    the start, as an application's usually is, so a cold start does not open them all at once."""


class Plan(_Strict, kw_only=True):
    """A whole test plan (one TOML file)."""

    name: str = ""
    """Shown in the picker, the dashboard header and the session file. Defaults to the file name."""
    description: str = ""
    target: str = ""
    """Base URL of the system under test, or ``"demo"`` to start the embedded demo target."""
    defaults: Defaults = msgspec.field(default_factory=Defaults)
    demo: DemoOptions = msgspec.field(default_factory=DemoOptions)
    variables: dict[str, Scalar | list[Scalar] | DataFile] = {}
    """Constants, lists (one value picked at random per virtual user), or tables reading a CSV or
    JSON file (``perftui.plan.data.DataFile``)."""
    phases: list[Phase] = []
    scenarios: list[Scenario] = []
    thresholds: list[str | ThresholdSpec] = []
    """Pass/fail rules, e.g. ``"p95 < 200ms"``, ``"error_rate < 1%"``, ``"p99{GET /api/users} < 500ms"``,
    or tables with a window and abort on fail (``perftui.plan.rules.ThresholdSpec``)."""
    slos: list[Slo] = []
    """Service level objectives with error budgets and burn-rate alerts (``perftui.plan.rules.Slo``)."""
    monitor: Monitor = msgspec.field(default_factory=Monitor)
    """Target health and metrics, a local server process, generator-bottleneck limits."""
    output: Output = msgspec.field(default_factory=Output)
    """Live metrics and other outputs of a run."""
    databases: dict[str, Database] = {}
    """PostgreSQL databases for SQL steps, by name (``[databases.NAME]``)."""

    setup: list[Any] = []
    """``[[setup]]``: steps run once before the load (k6's ``setup()``); what they capture is
    given, read-only, to every virtual user (one login token for all). A failure stops the run."""
    on_start: list[Any] = []
    """``[[on_start]]``: steps each virtual user runs once before its first iteration (Locust's
    ``on_start``); their captures stay with that user."""
    teardown: list[Any] = []
    """``[[teardown]]``: steps run once after the load (also after Ctrl-C, within
    ``defaults.teardown_timeout``), with the setup's captures."""

    profiles: dict[str, Profile] = {}
    """``[profiles.NAME]``: named variants of the plan (``perftui run PLAN --profile NAME``), see
    ``perftui.plan.profile``."""
    profile: str = ""
    """The profile this plan runs with, set by the loader (``--profile``); not written in plans."""

    find_limit: FindLimit | None = None
    """``[find_limit]``: search for the target's breaking point instead of running ``phases``
    (``perftui.plan.limit``)."""

    def __post_init__(self) -> None:
        for key in ("setup", "on_start", "teardown"):
            steps = getattr(self, key)
            if any(not isinstance(st, STEP_TYPES) for st in steps):
                setattr(self, key, [step_from_dict(st) for st in steps])


def shown_target(plan: Plan, target: str | None = None) -> str:
    """What to call a run's target in one line: its URL, else (a plan of SQL steps alone) its
    databases, as ``postgres: metrics``."""
    target = plan.target if target is None else target
    if target or not plan.databases:
        return target
    return "postgres: " + ", ".join(plan.databases)


from perftui.plan.profile import Profile  # noqa: E402 - it is made of the tables above


def phase_model(phase: Phase) -> Literal["open", "closed", "pause"]:
    if phase.pause:
        return "pause"
    if phase.vus is not UNSET:
        return "closed"
    return "open"


def protocol_endpoints(plan: Plan) -> dict[str, str]:
    """Endpoint name -> role for every protocol endpoint of a plan (see ``step_endpoints``);
    plain HTTP endpoints are left out. The first role wins if two steps share a name."""
    roles: dict[str, str] = {}
    for steps in [plan.on_start, *(sc.steps for sc in plan.scenarios)]:
        for st in steps:
            for name, role in step_endpoints(st):
                if role != "http":
                    roles.setdefault(name, role)
    return roles
