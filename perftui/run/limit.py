"""The breaking-point search of a ``[find_limit]`` plan (``perftui find-limit PLAN``).

``LimitFinder`` drives the ordinary open-model engine: the coordinator runs one open phase
(``search_plan`` puts it in place of the plan's phases) and the finder moves its rate with the
same live control the dashboard's ``+``/``-`` use (``Coordinator.set_rate``), so every step is a
``rate`` event in the session and a mark on the charts. It reads the run one closed second at a
time: a ``SessionObserver`` that keeps each second's aggregate (for the step's exact
percentiles) and a coordinator listener that decides once the second's row is complete.

The search: steps of ``settle`` + ``step_duration`` at one rate, raising it (``step_factor`` or
``step_size``) until a step breaks a criterion, then bisecting between the highest rate that held
and the lowest that broke until they are within ``precision``. After every step that broke, the
load drops to ``recovery_rate`` and the finder waits until the criteria hold for
``RECOVERED_AFTER`` seconds in a row (how fast the target recovered), up to ``recovery``; this
also lets the next step start on a drained target. A step in which perftui itself was the
bottleneck (it broke a criterion with ``TimelineRow.generator_limited`` set for a third of its
seconds, or started fewer arrivals than asked with nothing queued) is ``generator-limited``:
repeated once, and never taken for the target's limit. Late starts that perftui's own scheduler
caused never count against the target.

The steps and the result live in ``SessionRecord.find_limit`` (``perftui.session.limit``), kept
up to date as the search goes, so the dashboard, the headless reporter, checkpoints and the final
document all read the same thing.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Protocol

import msgspec
from msgspec import UNSET

from perftui.aggregate import Aggregate
from perftui.plan import FindLimit, Phase, Plan, duration_s
from perftui.session.limit import FindLimitDocument, LimitStep, Recovery
from perftui.units import format_duration, format_ms

if TYPE_CHECKING:  # pragma: no cover
    from perftui.session.record import SessionRecord
    from perftui.session.schema import TimelineRow


class Driven(Protocol):
    """What the finder uses of the coordinator that runs it (``perftui.run.coordinator``, which
    imports this module: no import back)."""

    plan: Plan
    session: SessionRecord

    @property
    def state(self) -> str: ...

    @property
    def override(self) -> float | None: ...

    def set_rate(self, rate: float) -> float | None: ...

    async def stop(self, reason: str = "stopped", *, grace: float | None = None) -> None: ...

__all__ = ["LimitFinder", "search_plan", "step_table", "RECOVERED_AFTER", "SEARCH_PHASE"]

SEARCH_PHASE = "find limit"
RECOVERED_AFTER = 2
"""Seconds in a row that must hold the criteria again for the target to count as recovered."""
SHORTFALL = 0.9
"""Fewer iterations started than this fraction of the asked rate, with nothing queued behind
busy lanes: perftui did not deliver the rate (the target cannot slow an open model's starts)."""
LIMITED_SHARE = 1 / 3
"""A step is generator-limited when at least this share of its seconds were."""
MIN_RATE = 0.1


def search_plan(plan: Plan) -> Plan:
    """The plan as the coordinator runs it: one open phase at ``start_rate``, long enough for
    every step the search may take (the finder ends the run when it is done)."""
    fl = plan.find_limit
    assert fl is not None
    per_step = duration_s(fl.settle) + duration_s(fl.step_duration) + duration_s(fl.recovery)
    length = math.ceil(fl.max_steps * per_step + 60)
    phase = Phase(name=SEARCH_PHASE, duration=length, arrival_rate=nice_rate(fl.start_rate))
    return msgspec.structs.replace(plan, phases=[phase])


def nice_rate(rate: float) -> float:
    """Three significant digits (187.5 -> 188, 1234.5 -> 1230): steps read as rates people type."""
    if rate <= 0:
        return MIN_RATE
    digits = 3 - int(math.floor(math.log10(rate))) - 1
    return max(MIN_RATE, round(rate, digits))


def _pct(x: float) -> str:
    return f"{x * 100:.3g}%"


class LimitFinder:
    """Searches for the highest rate the target holds (see the module docstring). Created by the
    coordinator for a plan with ``[find_limit]``; it registers itself and acts on closed seconds."""

    def __init__(self, coord: Driven, config: FindLimit):
        self.coord = coord
        self.cfg = config
        self.settle_s = max(0, math.ceil(duration_s(config.settle) - 1e-9))
        self.measure_s = max(1, math.ceil(duration_s(config.step_duration) - 1e-9))
        self.recovery_s = duration_s(config.recovery)
        self.p99_ms = duration_s(config.p99) * 1000.0
        self.late_threshold_ms = duration_s(coord.plan.defaults.late_threshold) * 1000.0
        self.health = config.health and bool(coord.plan.monitor.health)
        self.doc = FindLimitDocument(criteria=self._criteria(), settings=self._settings())
        coord.session.find_limit = self.doc
        self.rate = nice_rate(config.start_rate)
        self.stage = "raise"
        self.held: float | None = None
        self.broke: float | None = None
        self.repeated = False
        self.step: LimitStep | None = None
        self.agg = Aggregate()
        self.rows: list[TimelineRow] = []
        self.waiting = 0
        """Seconds still to settle before the current step's measurement starts."""
        self.recovery: Recovery | None = None
        self.passes = 0
        self.first_pass_t: float | None = None
        self.done = False
        self._pending: list[tuple[TimelineRow, Aggregate | None]] = []
        self._spare: list[Aggregate] = []
        coord.session.add_observer(self)

    # ---- what the search reads (SessionObserver) -----------------------------------------

    def on_tick(self, now, phase, target_rps, target_vus, final, row) -> None:
        if final or self.done:
            return
        window = self.coord.session.window
        second = None
        if window:
            second = self._spare.pop() if self._spare else Aggregate()
            second.clear()
            second.merge(window[-1][1])
        self._pending.append((row, second))

    def on_ingest(self, snap) -> None:
        pass

    def on_event(self, event) -> None:
        pass

    def on_monitor(self, sample) -> None:
        pass

    # ---- the search ----------------------------------------------------------------------

    def on_interval(self, session, state: str) -> None:
        """A second was closed and thresholds judged (the coordinator's per-interval call)."""
        self._on_second()

    def _on_second(self) -> None:
        coord = self.coord
        if coord.state == "finished":
            self._stopped()
            return
        pending, self._pending = self._pending, []
        for row, second in pending:
            if not self.done:
                self._second(row, second)
            if second is not None:
                self._spare.append(second)

    def _second(self, row: TimelineRow, second: Aggregate | None) -> None:
        if self.coord.state != "running" or row.target_rps <= 0:
            if self.step is not None and self.step.verdict in ("settling", "measuring"):
                self._restart_step()  # a pause: the step starts over when the run resumes
            return
        if self.step is None and self.recovery is None:
            self._begin_step()  # the phase already runs at start_rate
            return
        if self.recovery is not None:
            self._watch_recovery(row)
            return
        step = self.step
        assert step is not None
        if self.waiting > 0:
            self.waiting -= 1
            if self.waiting == 0:
                step.verdict = "measuring"
                step.start = row.t
            return
        self.rows.append(row)
        if second is not None:
            self.agg.merge(second)
        self._fill(step)
        if step.seconds >= self.measure_s:
            self._judge(step)

    def _begin_step(self, *, stage: str | None = None) -> None:
        if len(self.doc.steps) >= self.cfg.max_steps:
            self._finish(note=f"max_steps ({self.cfg.max_steps}) reached")
            return
        if self.coord.override != self.rate:
            self.coord.set_rate(self.rate)
        self.agg.clear()
        self.rows = []
        self.waiting = self.settle_s
        t = round(self.coord.session.elapsed(), 3)
        self.step = LimitStep(index=len(self.doc.steps), stage=stage or self.stage, rate=self.rate, start=t,
                              verdict="settling" if self.waiting else "measuring")
        self.doc.steps.append(self.step)
        self.doc.state = "searching"
        if not self.waiting:
            self.step.start = t

    def _restart_step(self) -> None:
        step = self.step
        assert step is not None
        self.agg.clear()
        self.rows = []
        self.waiting = self.settle_s + 1  # the second the run resumes in is partly paused
        step.verdict = "settling"
        step.seconds = 0

    def _fill(self, step: LimitStep) -> None:
        """The step's figures from its measured seconds so far."""
        a, rows = self.agg, self.rows
        n = len(rows)
        step.seconds = n
        step.end = rows[-1].t if rows else None
        step.requests, step.errors = a.requests, a.errors
        step.error_rate = a.errors / a.requests if a.requests else 0.0
        step.error_kinds = dict(a.error_kinds)
        step.late, step.dropped = a.late_starts, a.dropped
        asked = step.rate * n
        step.late_rate = (a.late_starts + a.dropped) / asked if asked else 0.0
        step.started_rps = round(sum(r.started_rps for r in rows) / n, 3) if n else 0.0
        step.rps = round(sum(r.rps for r in rows) / n, 3) if n else 0.0
        h = a.latency
        if h.total_count:
            pct = h.get_percentile_to_value_dict([50.0, 95.0, 99.0])
            step.p50_ms, step.p95_ms, step.p99_ms = pct[50.0] / 1000, pct[95.0] / 1000, pct[99.0] / 1000
            step.max_ms = h.get_max_value() / 1000
        else:
            step.p50_ms = step.p95_ms = step.p99_ms = step.max_ms = None
        step.generator_limited_s = sum(1 for r in rows if r.generator_limited)
        step.health_down_s = sum(1 for r in rows if _down(r)) if self.health else 0

    def _criteria(self) -> list[str]:
        c = self.cfg
        out = [f"p99 <= {format_ms(duration_s(c.p99) * 1000)}", f"errors <= {_pct(c.error_rate)}",
               f"late or dropped arrivals <= {_pct(c.late_rate)}"]
        if c.health:
            out.append("health checks up" if self.coord.plan.monitor.health else "health checks up (none in [monitor])")
        return out

    def _settings(self) -> dict[str, float]:
        c = self.cfg
        out = {"start_rate": c.start_rate, "max_rate": c.max_rate, "step_duration_s": float(self.measure_s),
               "settle_s": float(self.settle_s), "precision": c.precision, "recovery_s": self.recovery_s,
               "p99_ms": self.p99_ms, "error_rate": c.error_rate, "late_rate": c.late_rate,
               "max_steps": float(c.max_steps)}
        if c.step_size is not UNSET:
            out["step_size"] = c.step_size
        else:
            out["step_factor"] = c.step_factor
        if c.recovery_rate is not UNSET:
            out["recovery_rate"] = c.recovery_rate
        return out

    def _broken(self, step: LimitStep, *, per_second: TimelineRow | None = None) -> list[tuple[str, str]]:
        """(criterion, evidence) for every criterion ``step`` (or one second) breaks."""
        c = self.cfg
        out: list[tuple[str, str]] = []
        if per_second is not None:
            r = per_second
            p99, err, requests = r.p99_ms, r.error_rate, r.requests
            if requests == 0:
                out.append(("p99", "no request completed"))
            elif p99 is not None and p99 > self.p99_ms:
                out.append(("p99", f"p99 {format_ms(p99)} > {format_ms(self.p99_ms)}"))
            if err > c.error_rate:
                out.append(("error_rate", f"errors {_pct(err)} > {_pct(c.error_rate)}"))
            if self.health and _down(r):
                out.append(("health", "health check down"))
            return out
        if step.requests == 0:
            out.append(("p99", f"no request completed in {step.seconds}s"))
        elif step.p99_ms is not None and step.p99_ms > self.p99_ms:
            out.append(("p99", f"p99 {format_ms(step.p99_ms)} > {format_ms(self.p99_ms)}"))
        if step.error_rate > c.error_rate:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(step.error_kinds.items(), key=lambda kv: -kv[1])[:3])
            out.append(("error_rate", f"errors {_pct(step.error_rate)} > {_pct(c.error_rate)}" + (f" ({kinds})" if kinds else "")))
        if step.late_rate > c.late_rate:
            out.append(("late_rate", f"late {step.late} + dropped {step.dropped} of ~{step.rate * step.seconds:,.0f} "
                                     f"arrivals ({_pct(step.late_rate)}) > {_pct(c.late_rate)}"))
        if step.health_down_s:
            out.append(("health", f"health check down in {step.health_down_s} of {step.seconds}s"))
        return out

    def _generator_reasons(self, step: LimitStep, broken: list[tuple[str, str]]
                           ) -> tuple[list[str], list[str], list[tuple[str, str]]]:
        """Why perftui, not the target, limited ``step`` (empty: it did not); perftui's own
        artefacts that do not make it the generator's step (late starts its scheduler caused);
        and the broken criteria that remain the target's."""
        rows = self.rows
        limiting, notes = [], []
        if step.generator_limited_s and step.generator_limited_s >= LIMITED_SHARE * step.seconds:
            limiting.append(f"perftui was the bottleneck in {step.generator_limited_s} of {step.seconds}s "
                            f"(worker loop lag up to {format_ms(max(r.loop_lag_ms for r in rows))})")
        queued = max((r.queued for r in rows), default=0)
        if step.started_rps < SHORTFALL * step.rate and not queued and not step.dropped:
            limiting.append(f"started {step.started_rps:,.1f}/s of {step.rate:,.4g}/s asked")
        sched = max((r.schedule_lag_ms for r in rows), default=0.0)
        if any(c == "late_rate" for c, _ in broken) and sched > self.late_threshold_ms and not step.dropped:
            # an open-model arrival starts late only when perftui's scheduler or its 10,000 lanes
            # per worker were behind: with the scheduler late, not the target's doing
            notes.append(f"{step.late} late starts: perftui's scheduler was up to {format_ms(sched)} late")
            broken = [b for b in broken if b[0] != "late_rate"]
        return limiting, notes, broken

    def _judge(self, step: LimitStep) -> None:
        broken = self._broken(step)
        limiting, notes, target_broken = self._generator_reasons(step, broken)
        short = step.started_rps < SHORTFALL * step.rate
        if limiting and (broken or short):
            step.verdict = "generator-limited"
            step.note = "; ".join(limiting + notes)
            step.broke = [e for _, e in broken]
            self.coord.session.event("limit", f"step {step.index + 1}: {step.rate:,.4g}/s generator-limited — {step.note}")
            if not self.repeated:
                self.repeated = True
                self._begin_step(stage="repeat")
                return
            self.doc.generator_limited_rps = step.rate
            self._finish(note=f"perftui itself could not go on at {step.rate:,.4g}/s")
            return
        self.repeated = False
        if limiting or notes:
            step.note = "; ".join(limiting + notes)
        if target_broken:
            step.verdict = "broke"
            step.broke = [e for _, e in target_broken]
            if self.broke is None or step.rate <= self.broke:
                self.broke = step.rate
                self.doc.broke_rps = step.rate
                self.doc.criterion = target_broken[0][0]
                self.doc.evidence = list(step.broke)
                self.doc.broke_step = step.index
            self.coord.session.event("limit", f"step {step.index + 1}: {step.rate:,.4g}/s broke — " + "; ".join(step.broke))
            self._drop(step)
            return
        step.verdict = "held"
        self.held = step.rate if self.held is None else max(self.held, step.rate)
        self.doc.limit_rps = self.held
        self.coord.session.event("limit", f"step {step.index + 1}: {step.rate:,.4g}/s held — p99 {format_ms(step.p99_ms)}, "
                                          f"errors {_pct(step.error_rate)}, started {step.started_rps:,.1f}/s")
        self._next()

    def _next(self) -> None:
        """Choose the next rate, or end the search."""
        c = self.cfg
        held, broke = self.held, self.broke
        if broke is None:
            if held is not None and held >= c.max_rate:
                self._finish()
                return
            base = held if held is not None else self.rate
            up = base + c.step_size if c.step_size is not UNSET else base * c.step_factor
            self.rate = nice_rate(min(c.max_rate, up))
            self.stage = "raise"
        elif held is None:
            down = self.broke - c.step_size if c.step_size is not UNSET else self.broke / c.step_factor
            if c.step_size is not UNSET and down <= 0:
                down = self.broke / 2
            if down < max(MIN_RATE, c.start_rate / 100):
                self._finish(note=f"no rate held, down to {self.broke:,.4g}/s")
                return
            self.rate = nice_rate(down)
            self.stage = "raise"
        else:
            if (broke - held) / held <= c.precision:
                self._finish()
                return
            mid = nice_rate((held + broke) / 2)
            if mid <= held or mid >= broke:
                self._finish()
                return
            self.rate = mid
            self.stage = "narrow"
        self._begin_step()

    # ---- recovery ------------------------------------------------------------------------

    def _recovery_rate(self, broke_at: float) -> float:
        c = self.cfg
        if c.recovery_rate is not UNSET:
            return nice_rate(min(c.recovery_rate, broke_at))
        if self.held is not None:
            return nice_rate(self.held / 2)
        return nice_rate(broke_at / (2 * c.step_factor))

    def _drop(self, step: LimitStep) -> None:
        rate = self._recovery_rate(step.rate)
        t = round(self.coord.session.elapsed(), 3)
        self.recovery = step.recovery = Recovery(after_rps=step.rate, rate=rate, start=t)
        self.doc.recovery = self.recovery
        self.doc.state = "recovering"
        self.passes = 0
        self.first_pass_t = None
        self.coord.set_rate(rate)

    def _watch_recovery(self, row: TimelineRow) -> None:
        rec = self.recovery
        assert rec is not None
        rec.watched_s = round(max(0.0, row.t - rec.start), 3)
        if self._broken(LimitStep(index=-1, stage="", rate=rec.rate, start=0.0), per_second=row):
            self.passes, self.first_pass_t = 0, None
        else:
            if self.passes == 0:
                self.first_pass_t = row.t - 1.0
            self.passes += 1
        if self.passes >= RECOVERED_AFTER:
            rec.recovered = True
            rec.seconds = float(round(max(0.0, (self.first_pass_t or row.t) - rec.start)))
            self.coord.session.event("limit", f"recovered {rec.seconds:g}s after the drop to "
                                              f"{rec.rate:,.4g}/s (from {rec.after_rps:,.4g}/s)")
            self.recovery = None
            self._next()
        elif rec.watched_s >= self.recovery_s:
            rec.recovered = False
            self.coord.session.event("limit", f"not recovered {format_duration(rec.watched_s)} after the drop to "
                                              f"{rec.rate:,.4g}/s (from {rec.after_rps:,.4g}/s)")
            self.recovery = None
            self._finish(note=f"the target did not recover within {format_duration(self.recovery_s)}")

    # ---- the end -------------------------------------------------------------------------

    def _finish(self, note: str = "") -> None:
        self.done = True
        self._conclude(note)
        self.doc.state = "done"
        self.coord.session.event("limit", self.doc.verdict)
        asyncio.ensure_future(self.coord.stop("completed"))

    def _stopped(self) -> None:
        """The run ended before the search did (Ctrl-C, ``q``, every worker died)."""
        if self.done:
            return
        self.done = True
        if self.step is not None and self.step.verdict in ("settling", "measuring"):
            self.step.verdict = "stopped"
        self._conclude("the run stopped before the search ended")
        self.doc.state = "stopped"

    def _conclude(self, note: str) -> None:
        d = self.doc
        # a rate held and a higher one broke the target (a generator limit met while narrowing
        # between them leaves both standing)
        d.found = self.held is not None and self.broke is not None and self.broke > self.held
        d.limit_rps, d.broke_rps = self.held, self.broke
        rec = d.recovery
        if d.found:
            text = (f"limit {self.held:,.4g}/s: held at {self.held:,.4g}/s, broke at {self.broke:,.4g}/s "
                    f"({'; '.join(d.evidence)})")
            if rec is not None:
                if rec.recovered:
                    text += f"; recovered {rec.seconds or 0:g}s after the drop to {rec.rate:,.4g}/s"
                elif rec.recovered is False:
                    text += f"; did not recover within {format_duration(rec.watched_s)} at {rec.rate:,.4g}/s"
        elif d.generator_limited_rps is not None:
            text = (f"no limit found: perftui itself was the bottleneck at {d.generator_limited_rps:,.4g}/s"
                    + (f"; the target held up to {self.held:,.4g}/s" if self.held is not None else ""))
        elif self.broke is None and self.held is not None:
            text = f"no limit found: the target held every step up to {self.held:,.4g}/s"
        elif self.broke is not None:
            text = f"no rate held: the target broke at {self.broke:,.4g}/s ({'; '.join(d.evidence)})"
        else:
            text = "no limit found: no step completed"
        if note and note not in text:
            text += f" [{note}]"
        d.verdict = text


def _down(row: TimelineRow) -> bool:
    mon = row.monitor
    return mon is not None and any(not h.up for h in mon.health.values())


def step_table(doc: FindLimitDocument) -> list[str]:
    """The steps as a text table (the headless summary, ``perftui open``-style reports)."""
    head = (f"{'step':>4}  {'stage':<7} {'asked':>9} {'started':>9} {'req/s':>9} {'p50':>8} {'p95':>8} "
            f"{'p99':>8} {'err %':>6} {'late %':>6}  verdict")
    out = [head, "─" * len(head)]
    for s in doc.steps:
        verdict = s.verdict
        if s.broke and s.verdict in ("broke", "generator-limited"):
            verdict += ": " + "; ".join(s.broke)
        if s.note and s.verdict != "broke":
            verdict += f" ({s.note})"
        out.append(f"{s.index + 1:>4}  {s.stage:<7} {s.rate:>7,.4g}/s {s.started_rps:>7,.1f}/s {s.rps:>7,.1f}/s "
                   f"{format_ms(s.p50_ms):>8} {format_ms(s.p95_ms):>8} {format_ms(s.p99_ms):>8} "
                   f"{s.error_rate * 100:>6.2f} {s.late_rate * 100:>6.2f}  {verdict}")
        if s.recovery is not None:
            r = s.recovery
            what = (f"recovered in {r.seconds or 0:g}s" if r.recovered
                    else "not recovered" if r.recovered is False else "watching")
            out.append(f"{'':>4}  {'drop':<7} {r.rate:>7,.4g}/s {'':>9} {'':>9} {'':>8} {'':>8} {'':>8} {'':>6} {'':>6}  "
                       f"{what} ({format_duration(r.watched_s)} watched)")
    return out


def summary_lines(doc: FindLimitDocument | None) -> list[str]:
    """The search's block of a headless summary: criteria, the step table, the verdict."""
    if doc is None:
        return []
    out = ["", "breaking point · a step breaks on: " + ", ".join(doc.criteria)]
    out.extend(step_table(doc))
    out.append(("✓ " if doc.found else "✗ ") + doc.verdict)
    return out


def plan_line(plan: Plan) -> str:
    """What a search plan will do, in one line (the headless header, ``perftui validate``)."""
    fl = plan.find_limit
    if fl is None:
        return ""
    how = f"+{fl.step_size:g}/s" if fl.step_size is not UNSET else f"×{fl.step_factor:g}"
    return (f"breaking-point search {nice_rate(fl.start_rate):g}/s {how} up to {fl.max_rate:g}/s, "
            f"steps of {format_duration(duration_s(fl.settle))} + {format_duration(duration_s(fl.step_duration))}")
