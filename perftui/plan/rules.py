"""Plan types for the rules a run is judged by: thresholds written as tables (a window, abort on
fail) and ``[[slos]]`` with their error budget and burn-rate alerts.

A threshold is still usually a string (``"p95 < 200ms"``); the table form adds what a string
cannot say. Both parse with ``perftui.thresholds.parse_threshold``; ``threshold_expr`` gives the
expression of either. The evaluation lives in ``perftui.run.judge`` and ``perftui.slo``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType, field

from perftui.plan.common import Duration, _Strict, duration_s
from perftui.units import format_duration

__all__ = ["Slo", "SloAlert", "ThresholdSpec", "threshold_expr", "threshold_label"]


class ThresholdSpec(_Strict, kw_only=True):
    """One ``[[thresholds]]`` table (or an inline table in ``thresholds = [...]``), k6's
    ``{ threshold, abortOnFail, delayAbortEval }`` plus a window."""

    threshold: str
    """The expression, as in the string form: ``"p95 < 300ms"``."""
    window: Duration | UnsetType = UNSET
    """Judge the metric over the last ``window`` (``"1m"``) as the run goes, instead of over the
    whole run: the threshold fails if any window fails."""
    abort_on_fail: bool = False
    """Stop the run as soon as the threshold fails (exit 1)."""
    delay_abort_eval: Duration = "0s"
    """Do not abort during the first ``delay_abort_eval`` of the run (warm-up)."""


def threshold_expr(entry: str | ThresholdSpec) -> str:
    """The expression of a ``thresholds`` entry, either form."""
    return entry if isinstance(entry, str) else entry.threshold


def threshold_label(entry: str | ThresholdSpec) -> str:
    """How a threshold is named in results, panels and reports: the expression, plus its window
    and abort setting for a table (``p95 < 300ms [1m window, abort after 10s]``)."""
    if isinstance(entry, str):
        return entry
    notes = []
    if entry.window is not UNSET:
        notes.append(f"{format_duration(duration_s(entry.window))} window")
    if entry.abort_on_fail:
        delay = duration_s(entry.delay_abort_eval)
        notes.append("abort" + (f" after {format_duration(delay)}" if delay else ""))
    return entry.threshold + (f" [{', '.join(notes)}]" if notes else "")


_Factor = Annotated[float, Meta(gt=0, le=1_000_000, extra={"range": "must be a burn rate above 0 (1 = spending the budget exactly over its window), got {value:g}"})]
_Percent = Annotated[float, Meta(ge=0, le=100, extra={"range": "must be a percentage from 0 to 100, got {value:g}"})]


class SloAlert(_Strict, kw_only=True):
    """``[slos.critical]`` / ``[slos.warning]``: when an SLO alerts. It fires when the burn rate
    over **both** the long and the short window is above ``burn_rate`` (the SRE Workbook's
    multi-window scheme), or when less than ``budget_left`` percent of the budget remains."""

    burn_rate: _Factor | UnsetType = UNSET
    """Burn-rate level (critical 5, warning 2 by default; the Workbook's page/ticket levels are 14.4 and 6)."""
    long: Duration | UnsetType = UNSET
    """Long window; default: a tenth of the budget window (critical), half of it (warning)."""
    short: Duration | UnsetType = UNSET
    """Short window; default: a twelfth of the long window, at least 2 s."""
    budget_left: _Percent | UnsetType = UNSET
    """Also fire when the budget left falls below this many percent (critical 10, warning 20)."""


class Slo(_Strict, kw_only=True):
    """One ``[[slos]]`` entry: a service level objective with its error budget."""

    name: str
    """Letters, digits, ``_`` and ``-``: thresholds name it as ``slo.<name>.burn_rate``."""
    sli: Literal["latency", "availability", "error_rate"]
    """``latency``: good = answered without error within ``latency``; ``availability``: good =
    not a server-side or network failure (5xx, refused, reset, timeout...); ``error_rate``:
    good = no error of any kind."""
    objective: Annotated[float, Meta(gt=0, lt=100, extra={"range": "must be a percentage above 0 and below 100 (99.5 for 99.5 %), got {value:g}"})]
    """Share of good requests, in percent: ``99.5``."""
    latency: Duration | UnsetType = UNSET
    """For ``sli = "latency"``: the bound a good request is answered within (``"300ms"``)."""
    endpoint: str = ""
    """One endpoint by name; empty: every request."""
    window: Duration | UnsetType = UNSET
    """The budget window; default: the plan's planned length."""
    critical: SloAlert = field(default_factory=SloAlert)
    warning: SloAlert = field(default_factory=SloAlert)
