"""``SessionObserver``: what the session record tells the objects that follow a run.

The record (``SessionRecord``) calls every registered observer, in registration order, with each
worker snapshot it ingests, each second it closes, each event it records and each monitoring
sample its ``MonitorState`` applies; and, once the run has drawn its conclusions from a closed
second (thresholds evaluated) and once more when the run has ended, with the record itself: the
interval snapshot every viewer reads (``on_interval``).

Observers: the journal (``perftui.journal.JournalWriter``, rows and events to disk), the attach
server (``perftui.run.attach.ControlServer``, everything to attached viewers), the dashboard's
controller and the headless reporter (``on_interval``: redraw, print a progress line), the
Prometheus exporter (``perftui.export.prometheus.MetricsExporter``: a copy of the figures for
scrapes). Adding one is one line: ``session.add_observer(obj)``; ``OnInterval(fn)`` is an
observer of intervals only.

Subclass ``SessionObserver`` to get a no-op for each hook you do not need; any object with the
five methods also fits the Protocol (a static checker verifies it at the ``add_observer`` call).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from perftui.monitor.model import Sample
    from perftui.session.schema import Event, TimelineRow
    from perftui.worker.messages import Snapshot

__all__ = ["OnInterval", "SessionObserver"]


class SessionObserver(Protocol):
    """Told about everything that enters a session record, as it enters. Hooks run inside the
    coordinator's event loop (or an attached viewer's): they must not block, and an exception
    in one propagates to whoever fed the record."""

    def on_ingest(self, snap: Snapshot) -> None:
        """A worker snapshot, before it is merged (``SessionRecord.ingest``)."""

    def on_tick(self, now: float, phase: str, target_rps: float, target_vus: int, final: bool,
                row: TimelineRow) -> None:
        """A second closed (``SessionRecord.tick``): the arguments it was closed with and the
        timeline row it produced (the row as built, before any coarsening)."""

    def on_event(self, event: Event) -> None:
        """An event recorded (``SessionRecord.event`` / ``add_event``), already masked."""

    def on_monitor(self, sample: Sample) -> None:
        """A monitoring sample applied to ``SessionRecord.monitor`` (health, metrics, processes)."""

    def on_interval(self, session: Any, state: str) -> None:
        """The run's figures after a closed second, with everything it derives from them (the
        thresholds' verdicts), and once more when the run has ended (after the session file is
        written). ``session`` is the ``SessionRecord`` (not imported here: it imports this
        module); ``state`` is the run's: ``idle``, ``running``, ``paused`` or ``finished``."""


class OnInterval(SessionObserver):
    """An observer of intervals only: ``OnInterval(fn)`` calls ``fn(session, state)``."""

    def __init__(self, fn: Callable[[Any, str], None]) -> None:
        self.fn = fn

    def on_interval(self, session: Any, state: str) -> None:
        self.fn(session, state)
