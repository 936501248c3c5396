"""The live dashboard: one screen with header, phase strip, charts and number panels.

Drawing runs on two timers of its own: numbers at ``refresh`` Hz, charts at most once a second
(and never faster than numbers). Each numbers tick builds one ``RunView`` of the run
(``perftui.ui.view.build_view``) and hands every widget its part; the widgets title themselves
and never read the controller. The numbers and charts only redraw when the controller's
``version`` moved (a closed second or a control action), except the clocks in the header and
phase strip. The key actions drive the coordinator through the controller (its ``RunControl``).
Nothing here runs inside the coordinator's callbacks. The keys and their help: ``ui/keys.py``.

Layout (wide): charts on the left; latency, thresholds and the load generator on the right, then
one flexible panel; the endpoints table and a 72-column corner panel at the bottom. Which panel
goes where depends on the plan: the target panel takes the corner when the target is monitored
(its sparklines need the room) and errors move up; a plan with WebSocket/GraphQL/MCP steps gets
the protocols panel; otherwise the corner shows errors and the target panel says how to monitor.
A benchmark plan shows its table (``BenchmarkTable``) across the bottom, errors in the flexible panel.

Attached to a run in another process (``controller.remote``), q detaches instead of quitting and
x asks before stopping the background run.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import var
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer

from perftui.ui import controller as ctl
from perftui.ui.messages import RunEnded
from perftui.ui.widgets.benchmark import BenchmarkTable
from perftui.ui.widgets import (
    EndpointsTable, ErrorChart, ErrorsPanel, GeneratorPanel, HeaderBar, LatencyChart, LatencyTable, PhaseStrip,
    ProtocolsPanel, RateChart, TargetPanel, ThresholdsPanel,
)
from perftui.ui.format import fmt_target
from perftui.ui.keys import DASHBOARD_BINDINGS, key_help
from perftui.ui.view import NumbersView, RunView, build_view
from perftui.units import format_duration

SCALE_STEP = 0.10

class DashboardScreen(Screen):
    AUTO_FOCUS = "#body"
    BINDINGS = DASHBOARD_BINDINGS

    run_state = var(("", ""))
    """(controller status, coordinator state): not drawn itself; changes refresh the footer."""

    def __init__(self, controller: ctl.RunController, *, start: bool = False, refresh: float = 4.0) -> None:
        super().__init__()
        self.controller = controller
        self.start_on_ready = start
        self.refresh_hz = refresh
        self._numbers_version = -1
        self._charts_version = -1
        self._end_handled = False
        self._events_seen = 0
        self._warnings_seen = 0
        self._draw_timers: list[Timer] = []
        self.view: RunView | None = None
        """The last tick's view (``perftui.ui.view.build_view``)."""
        self.cores: int | None = None

    def compose(self) -> ComposeResult:
        monitored, protocols = self.controller.monitored, self.controller.protocols
        benchmark = self.controller.benchmark  # its table takes the whole bottom row
        self.set_class(monitored, "-monitored")
        self.set_class(protocols, "-protocols")
        yield HeaderBar(id="header")
        yield PhaseStrip(id="phases")
        with VerticalScroll(id="body"):
            with Horizontal(id="top"):
                with Vertical(id="charts"):
                    yield RateChart(id="rate-chart")
                    yield LatencyChart(id="latency-chart")
                    yield ErrorChart(id="error-chart")
                with Vertical(id="side"):
                    yield LatencyTable(id="latency")
                    yield ThresholdsPanel(id="thresholds")
                    yield GeneratorPanel(id="generator")
                    if monitored or protocols or benchmark:
                        yield ErrorsPanel(id="errors", classes="fill")
                        if monitored and protocols:
                            yield ProtocolsPanel(id="protocols", classes="fill", monitored=monitored)
                    else:
                        yield TargetPanel(id="target", classes="fill", monitored=monitored)
            with Horizontal(id="bottom"):
                yield BenchmarkTable(id="endpoints") if self.controller.benchmark else EndpointsTable(id="endpoints")
                if monitored:
                    yield TargetPanel(id="target", classes="corner", monitored=monitored)
                elif protocols:
                    yield ProtocolsPanel(id="protocols", classes="corner", monitored=monitored)
                elif not benchmark:
                    yield ErrorsPanel(id="errors", classes="corner")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # Widget references are kept: a timer may fire while the app tears down, when
        # query_one would raise NoMatches.
        self.header = self.query_one(HeaderBar)
        self.phase_strip = self.query_one(PhaseStrip)
        self.charts = [self.query_one(RateChart), self.query_one(LatencyChart), self.query_one(ErrorChart)]
        self.latency = self.query_one(LatencyTable)
        self.thresholds = self.query_one(ThresholdsPanel)
        self.generator = self.query_one(GeneratorPanel)
        targets = self.query(TargetPanel)
        self.target = targets.first() if targets else None
        protocols = self.query(ProtocolsPanel)
        self.protocols = protocols.first() if protocols else None
        self.endpoints = self.query_one("#endpoints", EndpointsTable)
        self.errors = self.query_one(ErrorsPanel)
        c = self.controller
        self.cores = c.backend.cpu_count()
        if c.remote and c.coord is not None:  # what happened before we attached is not news
            seen = self.current_view().numbers
            self._events_seen = len(seen.events)
            self._warnings_seen = len(seen.generator_warnings)
        numbers = 1.0 / self.refresh_hz
        charts = max(1.0, numbers)
        self._draw_timers = [self.set_interval(numbers, self.tick_numbers), self.set_interval(charts, self.tick_charts)]
        self.tick_numbers()
        if self.controller.status == ctl.PREPARING and self.controller.coord is None:
            self.prepare()

    def on_unmount(self) -> None:
        for t in self._draw_timers:
            t.stop()
        self._draw_timers = []

    # ---- view -> widgets --------------------------------------------------------------

    def current_view(self) -> RunView:
        """This tick's view of the run (its numbers reused while the data version stands)."""
        self.view = build_view(self.controller, self.view, cores=self.cores)
        return self.view

    def tick_numbers(self) -> None:
        c = self.controller
        view = self.current_view()
        self.header.show_view(view.header)
        self.phase_strip.show_view(view.phases)
        self.run_state = (view.status, view.state)
        if view.numbers.version != self._numbers_version:
            self._numbers_version = view.numbers.version
            self.update_numbers(view.numbers)
        if c.ended and not self._end_handled:
            self._end_handled = True
            self.run_ended()

    def update_numbers(self, n: NumbersView) -> None:
        if self.target is not None:
            self.target.show_view(n.target)
        self.thresholds.show_view(n.thresholds)
        if not n.has_run:
            return
        self.announce(n.events)
        self.announce_monitor(n)
        self.latency.show_view(n)
        self.errors.show_view(n)
        self.generator.show_view(n.generator)
        self.endpoints.show_rows(n.benchmark if self.controller.benchmark else n.endpoints)

    def announce(self, events) -> None:
        """Engine trouble (a worker died, a warning), an SLO alert and an abort pop up once; the
        event log keeps them."""
        for ev in events[self._events_seen:]:
            if ev.kind in ("worker", "warning", "slo", "threshold"):
                self.notify(ev.message, title=ev.kind, severity="warning", timeout=10)
        self._events_seen = len(events)

    def announce_monitor(self, n: NumbersView) -> None:
        """A new generator-limited interval pops up. (A health URL going down does not: the
        header's TARGET DOWN badge and the target panel say it, and a toast would cover that panel.)"""
        warnings = n.generator_warnings
        if len(warnings) > self._warnings_seen:
            latest = warnings[-1]
            if latest.end is None:
                what = (n.generator_warning or latest.reason or "").removeprefix("generator-limited: ")
                self.notify(f"{what}\nload and latency numbers from {format_duration(latest.start)} are suspect",
                            title="perftui is the bottleneck", severity="warning", timeout=8)
            self._warnings_seen = len(warnings)

    def tick_charts(self, force: bool = False) -> None:
        c = self.controller
        if c.coord is None or (c.version == self._charts_version and not force):
            return
        n = self.view.numbers if self.view is not None and self.view.numbers.version == c.version \
            else self.current_view().numbers
        self._charts_version = n.version
        for chart in self.charts:
            chart.draw(n.timeline, n.events)
        if self.protocols is not None and n.protocols is not None:
            # merged histograms: drawn at the charts' pace (at most once a second)
            self.protocols.show_summary(n.protocols)

    def watch_run_state(self) -> None:
        self.refresh_bindings()

    def run_ended(self) -> None:
        c = self.controller
        self.tick_charts(force=True)
        path = None
        try:
            written = c.write_final()
            path = str(written) if written else None
        except OSError:
            self.notify(c.write_error, severity="error", timeout=10)
        self.post_message(RunEnded(path))

    # ---- workers ----------------------------------------------------------------------

    @work(exclusive=True, group="prepare")
    async def prepare(self) -> None:
        c = self.controller
        await c.prepare()
        if c.status == ctl.FAILED:
            self.notify(c.error, severity="error", timeout=15)
            return
        self.tick_numbers()
        self.tick_charts(force=True)
        if self.start_on_ready or c.start_wanted:
            self.start_run()

    @work(exclusive=True, group="start")
    async def start_run(self) -> None:
        c = self.controller
        if await c.start():
            self.tick_numbers()
        elif c.status == ctl.FAILED:
            self.notify(c.error, severity="error", timeout=15)

    @work(exclusive=True, group="stop")
    async def stop_run(self, reason: str, then_quit: bool = False) -> None:
        await self.controller.stop(reason)
        self.tick_numbers()
        if then_quit:
            self.app.exit()

    # ---- actions ----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        c = self.controller
        state, status = c.state, c.status
        active = c.active and status != ctl.STOPPING
        if action == "quit":
            return not c.remote
        if action == "detach":
            return c.remote
        if action == "start":
            if c.remote:
                return False  # the background run started itself
            return state == "idle" and status in (ctl.PREPARING, ctl.READY) or None
        if action in ("pause", "next_phase", "prev_phase"):
            return active or None
        if action == "scale":
            spec = c.coord.current if c.coord is not None else None
            return (active and spec is not None and spec.kind != "pause") or None
        if action == "annotate":
            return (c.coord is not None and not c.ended and status != ctl.STOPPING) or None
        if action == "export":
            return c.started or None
        if action == "stop":
            return active or None
        if action == "results":
            return c.ended  # hidden from the footer until there are results
        return True

    def action_start(self) -> None:
        if self.controller.coord is None:
            self.controller.start_wanted = True
            self.notify("starting as soon as the target is up…")
            return
        self.start_run()

    def action_pause(self) -> None:
        coord = self.controller.coord
        coord.toggle_pause()
        self.controller.touch()
        self.tick_numbers()

    def action_next_phase(self) -> None:
        coord = self.controller.coord
        if coord.phase_index + 1 >= len(coord.specs):  # past the last phase is the end of the run
            from perftui.ui.screens.prompts import ConfirmEndRun

            def done(yes: bool | None) -> None:
                if yes and coord.state in ("running", "paused"):
                    self._next_phase()

            self.app.push_screen(ConfirmEndRun(), done)
            return
        self._next_phase()

    def _next_phase(self) -> None:
        self.controller.coord.next_phase()
        self.controller.touch()
        self.tick_numbers()

    def action_prev_phase(self) -> None:
        self.controller.coord.prev_phase()
        self.controller.touch()
        self.tick_numbers()

    def action_scale(self, direction: int) -> None:
        coord = self.controller.coord
        spec = coord.current
        ramp = coord.override is None and spec.start_value != spec.end_value
        new = coord.scale_load(1 + SCALE_STEP if direction > 0 else 1 - SCALE_STEP)
        self.controller.touch()
        if new is None:
            self.notify("nothing to scale in this phase", severity="warning")
            return
        what = "target rate" if spec.kind == "open" else "virtual users"
        if ramp and coord.current is not spec:  # the coordinator scaled both ends of the ramp
            self.notify(f"{what} ramp → {coord.current.describe()} (now {fmt_target(new, spec.kind)})",
                        title="load changed")
        elif ramp:  # a run in another process takes a flat value: say that the ramp is gone
            self.notify(f"{what} → {fmt_target(new, spec.kind)}, held flat: the rest of the ramp"
                        f" ({spec.describe()}) is replaced; b restarts the phase", title="load changed")
        else:
            self.notify(f"{what} → {fmt_target(new, spec.kind)}", title="load changed")
        self.tick_numbers()

    def action_annotate(self) -> None:
        from perftui.ui.screens.prompts import AnnotatePrompt

        def done(text: str | None) -> None:
            if text:
                coord = self.controller.coord
                coord.annotate(text)
                self.controller.touch()
                at = format_duration(max(0.0, self.controller.elapsed()))
                self.notify(f"note at {at}: {text}", title="annotation")

        self.app.push_screen(AnnotatePrompt(), done)

    def action_export(self) -> None:
        try:
            path = self.controller.export()
        except OSError:
            self.notify(self.controller.write_error, severity="error", timeout=10)
            return
        self.notify(f"session exported to {path}", title="export", timeout=6)

    def action_stop(self) -> None:
        if not self.controller.remote:
            self.stop_run("stopped by user")
            return
        from perftui.ui.screens.prompts import ConfirmStop

        def done(yes: bool | None) -> None:
            if yes:
                self.notify("asking the background run to stop…")
                self.stop_run("stopped by user (attached viewer)")

        self.app.push_screen(ConfirmStop(), done)

    def action_sort(self) -> None:
        key = self.endpoints.cycle_sort()
        self.notify(f"endpoints sorted by {key}", timeout=2)

    def action_results(self) -> None:
        from perftui.ui.screens.results import ResultsScreen

        if not isinstance(self.app.screen, ResultsScreen):
            self.app.push_screen(ResultsScreen(self.controller))

    def action_help(self) -> None:
        from perftui.ui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(key_help(self.controller.remote)))

    def action_detach(self) -> None:
        """Attached: leave without stopping the run (``serve`` detaches on the way out)."""
        self.app.exit()

    def action_quit(self) -> None:
        from perftui.ui.screens.prompts import ConfirmQuit

        c = self.controller
        if c.active or c.status == ctl.STOPPING:
            def done(yes: bool | None) -> None:
                if yes:
                    self.notify("stopping the run and writing the session…")
                    self.stop_run("stopped by user (quit)", then_quit=True)

            self.app.push_screen(ConfirmQuit(), done)
            return
        self.app.exit()
