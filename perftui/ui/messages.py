"""Messages the UI's screens send to the app."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from perftui.planload import LoadedPlan


@dataclass
class PlanChosen(Message):
    """The picker's Enter on a valid plan: open the dashboard on it."""

    loaded: LoadedPlan


@dataclass
class RunEnded(Message):
    """The run finished and its session was written (or could not be): show the results."""

    path: str | None
