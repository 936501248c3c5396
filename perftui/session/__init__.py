"""The session: the document a run leaves behind, and the live record that fills it.

- ``perftui.session.schema``: the session document's Structs (``SessionDocument``,
  ``TimelineRow``, ``PhaseRecord``, ``Event``, ``GeneratorState``, the protocol summaries) — the
  contract of the JSON session file, documented in docs/session.md.
- ``perftui.session.record``: ``SessionRecord``, the live, constant-memory record the coordinator
  (or an attached viewer's replica) feeds and the dashboard and headless reporter read.
- ``perftui.session.protocols``: WebSocket / GraphQL / MCP figures from the record's aggregates.
- ``perftui.session.endpoint_points``: the per-endpoint figures of each timeline row
  (``EndpointPoint``, at most ``ENDPOINTS_PER_ROW`` per row).
- ``perftui.session.observer``: ``SessionObserver``, the Protocol of the objects the record tells
  about everything that enters it (journal, attach server, ...).

The run layer (``perftui.run``) and ``perftui.journal`` sit above this package; viewers read it;
it never imports them. The names below are re-exported so ``from perftui.session import ...``
reaches either half.
"""

from __future__ import annotations

from perftui.session.endpoint_points import ENDPOINTS_PER_ROW, EndpointPoint
from perftui.session.observer import SessionObserver
from perftui.session.record import GAUGE_EXTRA, TIMELINE_MAX_ROWS, WINDOW_SECONDS, SessionRecord, new_session_id
from perftui.session.schema import (
    SCHEMA_VERSION, Event, GeneratorState, GraphQLSummary, McpSummary, PhaseRecord, ProtocolSummary,
    SessionDocument, TimelineRow, WsSummary, merge_rows,
)

__all__ = [
    "ENDPOINTS_PER_ROW", "EndpointPoint", "GAUGE_EXTRA", "SCHEMA_VERSION", "TIMELINE_MAX_ROWS", "WINDOW_SECONDS", "Event", "GeneratorState",
    "GraphQLSummary", "McpSummary", "PhaseRecord", "ProtocolSummary", "SessionDocument", "SessionObserver",
    "SessionRecord", "TimelineRow", "WsSummary", "merge_rows", "new_session_id",
]
