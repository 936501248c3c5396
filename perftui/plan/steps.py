"""Step kinds: one msgspec Struct per kind of ``[[scenarios.steps]]`` table.

A step's kind is the action key its table holds (``graphql``, ``mcp``, ``ws_connect``,
``ws_send``, ``ws_request``, ``ws_expect``, ``ws_hold``, ``ws_close``, ``sql`` or ``transaction``); without one it is an HTTP
request (``url``) or a pause (only ``think``). ``step_type`` picks the Struct from the keys;
each Struct declares only the keys that apply to its kind (``forbid_unknown_fields``), so a key
that does not apply is rejected by msgspec itself, and each kind knows its endpoint name
(``endpoint``) and the endpoints it records into (``endpoints``).

Plans carry no tag field, so ``Scenario.steps`` turns plain tables into kinds in its
``__post_init__`` (``step_from_dict``): a plan decoded from msgpack (in a worker), converted from
a session file's plain data or built in memory gets the same Structs. Used by the loader
(``perftui.planload``), the engine (``perftui.worker``), the importers and the UI.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType, field

from perftui.plan.common import Capture, Duration, Expect, Scalar, _Strict

MCP_INITIALIZE = "MCP initialize"
"""Endpoint of every MCP session handshake (``initialize`` + ``notifications/initialized``)."""
MCP_TERMINATE = "MCP terminate"
"""Endpoint of the ``DELETE`` that ends an open-model virtual user's MCP session."""


def _strip_url(url: str) -> str:
    return url.split("#", 1)[0].split("?", 1)[0]


class StepBase(_Strict, kw_only=True):
    """What every step kind shares. ``kind`` is the action key (``"http"``, ``"think"`` for the
    two kinds without one); ``role`` the endpoint role its requests record under."""

    kind: ClassVar[str] = ""
    role: ClassVar[str] = ""
    headers: ClassVar[dict[str, str]] = {}
    capture: ClassVar[list[Capture]] = []
    expect: ClassVar[Expect | UnsetType] = UNSET
    timeout: ClassVar[Duration | UnsetType] = UNSET
    """Kinds that do not take ``headers``, ``capture``, ``expect`` or ``timeout`` read as having
    none (class attributes, not keys: a table that sets them is still rejected)."""

    name: str | UnsetType = UNSET
    """Metric name the request is grouped under; defaults to ``"METHOD url"`` with templates kept
    as written, so ``/api/bounties/{{ id }}`` is one endpoint."""

    def default_name(self) -> str:
        """The endpoint name without ``name``."""
        raise NotImplementedError

    @property
    def endpoint(self) -> str:
        """The metric name this step's requests are grouped under: ``name``, or the kind's default."""
        return self.name if self.name is not UNSET and self.name else self.default_name()

    def endpoints(self) -> list[tuple[str, str]]:
        """``(endpoint name, role)`` for every endpoint this step records into."""
        return [(self.endpoint, self.role)]


class HttpStep(StepBase, kw_only=True):
    """An HTTP request: ``url`` and no action key."""

    kind: ClassVar[str] = "http"
    role: ClassVar[str] = "http"
    method: str = "GET"
    """HTTP method."""
    url: str
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
    """Pause after this step."""
    timeout: Duration | UnsetType = UNSET
    """Overrides ``[defaults].timeout`` for this step."""

    def default_name(self) -> str:
        return f"{self.method.upper()} {_strip_url(self.url)}"


class ThinkStep(_Strict, kw_only=True):
    """A pause: a step with only ``think``. Records nothing."""

    kind: ClassVar[str] = "think"
    role: ClassVar[str] = ""
    headers: ClassVar[dict[str, str]] = {}
    name: ClassVar[UnsetType] = UNSET
    if_: ClassVar[UnsetType] = UNSET

    think: Duration
    """How long to pause."""

    @property
    def endpoint(self) -> str:
        return "think"

    def endpoints(self) -> list[tuple[str, str]]:
        return []


_GQL_OPERATION = re.compile(r"(?:^|[\s}])(query|mutation|subscription)\b\s*([A-Za-z_][A-Za-z0-9_]*)?")
_GQL_COMMENT = re.compile(r"#[^\n]*")


class GraphQLStep(StepBase, kw_only=True):
    """``graphql``: a GraphQL document POSTed as JSON through the HTTP engine."""

    kind: ClassVar[str] = "graphql"
    role: ClassVar[str] = "graphql"
    url: str | UnsetType = UNSET
    """Where to POST (default ``/graphql``)."""
    headers: dict[str, str] = {}
    capture: list[Capture] = []
    expect: Expect | UnsetType = UNSET
    if_: str | UnsetType = field(name="if", default=UNSET)
    think: Duration | UnsetType = UNSET
    timeout: Duration | UnsetType = UNSET
    graphql: str
    """A GraphQL document (``query GetUsers { ... }``) POSTed as ``{"query", "variables",
    "operationName"}`` to ``url`` (default ``/graphql``). A 200 answer with ``errors`` fails with
    kind ``graphql_error``."""
    variables: dict[str, Any] | UnsetType = UNSET
    """GraphQL variables (templating allowed; ``"{{ x }}"`` keeps x's type)."""
    operation: str | UnsetType = UNSET
    """GraphQL ``operationName``; also names the endpoint (``GraphQL <operation>``)."""

    @property
    def operation_name(self) -> str:
        """``operation``, else the name in the document (``query GetUsers ...`` -> ``GetUsers``),
        else ``query``/``mutation``/``subscription``."""
        if isinstance(self.operation, str) and self.operation:
            return self.operation
        m = _GQL_OPERATION.search(_GQL_COMMENT.sub("", self.graphql))
        if m is None:
            return "query"  # the "{ ... }" shorthand
        return m.group(2) or m.group(1)

    def default_name(self) -> str:
        return f"GraphQL {self.operation_name}"


class McpStep(StepBase, kw_only=True):
    """``mcp``: one JSON-RPC call to an MCP server over Streamable HTTP."""

    kind: ClassVar[str] = "mcp"
    role: ClassVar[str] = "mcp"
    url: str | UnsetType = UNSET
    """The MCP endpoint (default ``/mcp``)."""
    headers: dict[str, str] = {}
    capture: list[Capture] = []
    expect: Expect | UnsetType = UNSET
    if_: str | UnsetType = field(name="if", default=UNSET)
    think: Duration | UnsetType = UNSET
    timeout: Duration | UnsetType = UNSET
    mcp: str
    """JSON-RPC method sent to the MCP server at ``url`` (default ``/mcp``): ``tools/call``,
    ``tools/list``, ``resources/list``, ``prompts/list``, ``ping``, ... The session
    (``initialize`` + ``notifications/initialized``) is opened per virtual user on its first MCP step."""
    tool: str | UnsetType = UNSET
    """``tools/call``: the tool's name."""
    arguments: dict[str, Any] | UnsetType = UNSET
    """``tools/call``: the tool's arguments (templating allowed)."""
    params: dict[str, Any] | UnsetType = UNSET
    """Other methods: the JSON-RPC ``params`` (templating allowed)."""

    def default_name(self) -> str:
        if self.mcp == "tools/call" and isinstance(self.tool, str):
            return f"MCP tools/call:{self.tool}"
        return f"MCP {self.mcp}"

    def endpoints(self) -> list[tuple[str, str]]:
        return [(self.endpoint, "mcp"), (MCP_INITIALIZE, "mcp.initialize"), (MCP_TERMINATE, "mcp.terminate")]


class WsConnectStep(StepBase, kw_only=True):
    """``ws_connect``: open this virtual user's WebSocket."""

    kind: ClassVar[str] = "ws_connect"
    role: ClassVar[str] = "ws.connect"
    headers: dict[str, str] = {}
    """Headers of the opening handshake."""
    query: dict[str, Scalar] = {}
    if_: str | UnsetType = field(name="if", default=UNSET)
    think: Duration | UnsetType = UNSET
    timeout: Duration | UnsetType = UNSET
    """The handshake time (default ``[defaults].connect_timeout``)."""
    ws_connect: str
    """A path on the target (``/ws``; ws:// or wss:// from the target's scheme) or an absolute
    ``ws://``/``wss://`` URL. Templating allowed."""
    subprotocols: list[str] | UnsetType = UNSET
    """Subprotocols to offer (``Sec-WebSocket-Protocol``)."""

    def default_name(self) -> str:
        return f"WS connect {_strip_url(self.ws_connect)}"


def _message_type(body: Any) -> str:
    """A message's literal ``type`` field, for endpoint names ("" when absent or templated)."""
    mtype = body.get("type") if isinstance(body, dict) else None
    return mtype if isinstance(mtype, str) and mtype and "{{" not in mtype else ""


class WsSendStep(StepBase, kw_only=True):
    """``ws_send``: send one message."""

    kind: ClassVar[str] = "ws_send"
    role: ClassVar[str] = "ws.send"
    if_: str | UnsetType = field(name="if", default=UNSET)
    think: Duration | UnsetType = UNSET
    ws_send: Any
    """A string is sent as text, a table or array as JSON text (templating allowed)."""

    def default_name(self) -> str:
        label = _message_type(self.ws_send)
        return f"WS send {label}" if label else "WS send"


class WsRequestStep(StepBase, kw_only=True):
    """``ws_request``: send a JSON message and wait for its reply."""

    kind: ClassVar[str] = "ws_request"
    role: ClassVar[str] = "ws.request"
    capture: list[Capture] = []
    expect: Expect | UnsetType = UNSET
    if_: str | UnsetType = field(name="if", default=UNSET)
    think: Duration | UnsetType = UNSET
    timeout: Duration | UnsetType = UNSET
    """The time to wait for the reply (default ``[defaults].timeout``)."""
    ws_request: Any
    """The message (a table, sent as JSON); the reply carrying the same ``match`` field ends the
    round trip."""
    match: str | UnsetType = UNSET
    """The correlation field (a key such as ``id``, or a JSON path); default ``"id"``."""

    def default_name(self) -> str:
        return f"WS {_message_type(self.ws_request) or 'request'}"


class WsExpectStep(StepBase, kw_only=True):
    """``ws_expect``: wait for a message."""

    kind: ClassVar[str] = "ws_expect"
    role: ClassVar[str] = "ws.expect"
    capture: list[Capture] = []
    expect: Expect | UnsetType = UNSET
    if_: str | UnsetType = field(name="if", default=UNSET)
    think: Duration | UnsetType = UNSET
    timeout: Duration | UnsetType = UNSET
    """The time to wait for the message (default ``[defaults].timeout``)."""
    ws_expect: Any
    """A table of ``field = value`` pairs (keys, or JSON paths starting with ``$``) that must all
    match, or a string the text must contain."""

    def default_name(self) -> str:
        label = _message_type(self.ws_expect)
        return f"WS expect {label}" if label else "WS expect"


class WsHoldStep(StepBase, kw_only=True):
    """``ws_hold``: keep the connection open, counting the messages that arrive."""

    kind: ClassVar[str] = "ws_hold"
    role: ClassVar[str] = "ws.hold"
    if_: str | UnsetType = field(name="if", default=UNSET)
    think: Duration | UnsetType = UNSET
    ws_hold: Duration
    """How long to hold."""

    def default_name(self) -> str:
        return "WS hold"


class WsCloseStep(StepBase, kw_only=True):
    """``ws_close = true``: close the connection (normal closure, code 1000)."""

    kind: ClassVar[str] = "ws_close"
    role: ClassVar[str] = "ws.close"
    if_: str | UnsetType = field(name="if", default=UNSET)
    think: Duration | UnsetType = UNSET
    ws_close: bool

    def default_name(self) -> str:
        return "WS close"


# ---- SQL (perftui.worker.sql) ----------------------------------------------------------------

_SQL_SPACE = re.compile(r"\s+")


def sql_label(sql: str, limit: int = 60) -> str:
    """A statement as one line of at most ``limit`` characters, for endpoint names."""
    text = _SQL_SPACE.sub(" ", sql).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class SqlCapture(_Strict, kw_only=True):
    """One SQL ``capture`` entry: a column of the first row returned into a variable."""

    as_: str = field(name="as")
    """Variable name to store the value in."""
    column: str | int
    """Column name (as the statement returns it), or its 0-based position."""


class SqlExpect(_Strict, kw_only=True):
    """``expect`` of a SQL step: checks on the rows. A failed check counts the statement as an
    error of kind ``expect_failed``. Rows are the rows returned (``fetch = "all"``), else the
    count of the command tag (``INSERT 0 1`` -> 1, ``UPDATE 5`` -> 5)."""

    rows: Annotated[int, Meta(ge=0)] | UnsetType = UNSET
    """Exactly this many rows."""
    min_rows: Annotated[int, Meta(ge=0)] | UnsetType = UNSET
    """At least this many rows."""
    max_rows: Annotated[int, Meta(ge=0)] | UnsetType = UNSET
    """At most this many rows."""


class SqlStatement(_Strict, kw_only=True):
    """One statement of a ``transaction``."""

    sql: str
    params: list[Any] = []
    fetch: Literal["none", "one", "all"] = "all"
    capture: list[SqlCapture] = []
    expect: SqlExpect | UnsetType = UNSET


class SqlStep(StepBase, kw_only=True):
    """``sql`` (one statement) or ``transaction`` (several, in one transaction) against a
    ``[databases.NAME]`` entry. Statements are prepared once per connection and sent with
    ``params`` (``$1``, ``$2``, ...), rendered per iteration."""

    kind: ClassVar[str] = "sql"
    role: ClassVar[str] = "sql"
    database: str | UnsetType = UNSET
    """The ``[databases.NAME]`` entry to run against; may be left out when the plan has one."""
    sql: str | UnsetType = UNSET
    """One statement, with ``$1``, ``$2``, ... for ``params``. Not a template: values go in params."""
    params: list[Any] = []
    """Values of ``$1``, ``$2``, ...: templates (``"{{ id }}"`` keeps the variable's type) or
    TOML values; each is converted to its parameter's type (``"42"`` for an ``integer``)."""
    fetch: Literal["none", "one", "all"] = "all"
    """``all``: read every row; ``one``: the server stops after the first row; ``none``: rows
    are read and dropped (only the command tag's count is kept)."""
    transaction: list[SqlStatement] | UnsetType = UNSET
    """Several statements run as one transaction (``BEGIN`` ... ``COMMIT``; ``ROLLBACK`` on the
    first failure), measured as one operation of this step's endpoint. Each statement has
    ``sql``, ``params``, ``fetch``, ``capture``, ``expect``; captures are visible to the
    statements after it."""
    capture: list[SqlCapture] = []
    """Columns of the first row into variables."""
    expect: SqlExpect | UnsetType = UNSET
    """Checks on the rows."""
    if_: str | UnsetType = field(name="if", default=UNSET)
    think: Duration | UnsetType = UNSET
    timeout: Duration | UnsetType = UNSET
    """Time for the statement (or the whole transaction), the wait for a pooled connection
    included; overrides ``[defaults].timeout``. A statement past it is cancelled on the server."""

    def default_name(self) -> str:
        if isinstance(self.sql, str):
            return f"SQL {sql_label(self.sql)}"
        if isinstance(self.transaction, list) and self.transaction:
            first = self.transaction[0]
            label = sql_label(first.sql, 40) if isinstance(first, SqlStatement) else "?"
            return f"SQL transaction ({len(self.transaction)}): {label}"
        return "SQL"


Step = (HttpStep | ThinkStep | GraphQLStep | McpStep | WsConnectStep | WsSendStep | WsRequestStep | WsExpectStep
        | WsHoldStep | WsCloseStep | SqlStep)
"""Any step kind."""

ACTION_STEPS: dict[str, type] = {
    cls.kind: cls
    for cls in (GraphQLStep, McpStep, WsConnectStep, WsSendStep, WsRequestStep, WsExpectStep, WsHoldStep, WsCloseStep,
                SqlStep)
}
ACTION_STEPS["transaction"] = SqlStep  # a SQL step with several statements
"""Action key -> the step kind it makes (at most one action key per step)."""
PROTOCOL_ACTIONS = tuple(ACTION_STEPS)
"""Step keys that make a step a protocol step."""
STEP_TYPES: tuple[type, ...] = (HttpStep, ThinkStep, *dict.fromkeys(ACTION_STEPS.values()))


def step_type(keys: Any) -> type:
    """The step kind a table's keys make: the first action key's, else ``HttpStep`` with ``url``,
    else ``ThinkStep`` with ``think``, else ``HttpStep`` (whose missing ``url`` is then reported)."""
    for action, cls in ACTION_STEPS.items():
        if action in keys:
            return cls
    if "url" not in keys and "think" in keys:
        return ThinkStep
    return HttpStep


def step_from_dict(data: Any) -> Any:
    """A plain step table -> its kind's Struct (``msgspec.ValidationError`` if it does not fit)."""
    if not isinstance(data, dict):
        return data if isinstance(data, STEP_TYPES) else msgspec.convert(data, HttpStep)
    return msgspec.convert(data, step_type(data))


# ---- the step helpers callers used before steps were typed ----------------------------------


def endpoint_name(step: Step) -> str:
    """The metric name a step's requests are grouped under: ``step.name``, or ``"METHOD url"``
    with the URL as written (templates kept) and without its query string. Protocol steps:
    ``GraphQL <operation>``, ``MCP <method>`` / ``MCP tools/call:<tool>``, ``WS connect <url>``,
    ``WS <type>`` (ws_request), ``WS send <type>``, ``WS expect <type>``, ``WS hold``."""
    return step.endpoint


def step_kind(step: Step) -> str:
    """``"http"``, ``"think"``, or the protocol action (one of ``PROTOCOL_ACTIONS``)."""
    return step.kind


def graphql_operation(step: GraphQLStep) -> str:
    """The operation a GraphQL step names (see ``GraphQLStep.operation_name``)."""
    return step.operation_name


def step_endpoints(step: Step) -> list[tuple[str, str]]:
    """``(endpoint name, role)`` for every endpoint a step records into. Roles: ``http``,
    ``graphql``, ``mcp``, ``mcp.initialize``, ``mcp.terminate``, ``ws.connect``, ``ws.send``, ``ws.request``,
    ``ws.expect``, ``ws.hold``, ``ws.close``, ``sql``. Pauses record nothing."""
    return step.endpoints()
