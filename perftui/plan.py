"""Test plans: the msgspec Structs a TOML plan is validated into.

The field docstrings are the user documentation (``docs/plans.md`` follows them). Loading,
``${ENV}`` substitution and error messages in TOML words live in ``perftui.planload``; this module
only declares the shape so that the engine, the coordinator and the UI can share it without
importing the loader.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, Struct, UnsetType, field

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
    late_threshold: Duration = "10ms"
    """Open model: an arrival that starts later than this after its scheduled time is a late start."""
    tls_verify: bool = True
    """Verify TLS certificates for ``https://`` targets."""


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
    """``[[scenarios.steps]]``: one request, or a pure think-time step (only ``think``)."""

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
    """Overrides ``[defaults].timeout`` for this step."""


class Scenario(_Strict, kw_only=True):
    """``[[scenarios]]``: a flow of steps; each iteration picks one scenario by weight."""

    name: str = ""
    weight: float = 1
    """Relative share of iterations that run this scenario."""
    steps: list[Step] = []


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


def phase_model(phase: Phase) -> Literal["open", "closed", "pause"]:
    if phase.pause:
        return "pause"
    if phase.vus is not UNSET:
        return "closed"
    return "open"
