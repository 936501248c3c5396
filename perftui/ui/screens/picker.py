"""The plan picker (``perftui`` with no arguments): plans in ``./plans`` and the examples.

The highlighted plan is previewed: target, phases with a sketch of the load over time, scenarios,
headers, monitoring and thresholds; a plan that fails validation shows its problems instead.
Enter opens the dashboard on a valid plan. Everything shown comes from ``PlanEntry.shown``
(credentials and ``${ENV}`` values masked as ``***``), never from the plan as loaded.
"""

from __future__ import annotations

from msgspec import UNSET
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from perftui.plan import endpoint_name, is_benchmark, threshold_label
from perftui.run.clock import phase_specs, plan_specs
from perftui.ui.messages import PlanChosen
from perftui.ui.plans import PlanEntry, discover, is_monitored
from perftui.ui.widgets import PlanSketch
from perftui.units import format_duration


def entry_prompt(entry: PlanEntry) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    if entry.ok:
        t.append("✓ ", "green")
        t.append(entry.name, "bold")
        if entry.profile:
            t.append(f" [{entry.profile}]", "bold cyan")
        if entry.shown.find_limit is not None:
            t.append("  find limit", "dim")
        elif is_benchmark(entry.shown):
            t.append("  benchmark", "dim")
        else:
            total = sum(s.duration for s in phase_specs(entry.shown.phases))
            t.append(f"  {format_duration(total)}", "dim")
        if entry.profile_names and not entry.profile:
            t.append(f"  {len(entry.profile_names)} profile{'s' if len(entry.profile_names) != 1 else ''}", "dim")
    else:
        t.append("✗ ", "red")
        t.append(entry.name, "bold red")
        t.append("  invalid", "red")
    t.append(f"\n  {entry.origin}{'' if entry.origin.endswith('/') else '/'}{entry.path.name}", "dim")
    return t


def target_text(plan) -> Text:
    t = Text()
    if plan.target == "demo":
        t.append("demo", "bold")
        bits = ["the embedded demo target, started for you"]
        if plan.demo.latency not in ("0ms", "0", ""):
            bits.append(f"latency {plan.demo.latency}")
        if plan.demo.error_rate:
            bits.append(f"{plan.demo.error_rate * 100:g} % errors")
        t.append(f"  ({', '.join(bits)})", "dim")
    else:
        t.append(plan.target or "(none)", "bold")
    return t


def profiles_text(entry: PlanEntry) -> Text | None:
    """The plan's profiles, the chosen one highlighted, with its load and description."""
    if not entry.profile_names or entry.base is None:
        return None
    from perftui.planload.profiles import profile_summary

    t = Text()
    t.append("profile ", "dim")
    for name in ["", *entry.profile_names]:
        t.append(" ")
        t.append(f" {name or 'none'} ", "bold black on cyan" if name == entry.profile else "")
    t.append("   p: next", "dim")
    if entry.profile:  # its description replaces the plan's, on the next line
        text = profile_summary(entry.base.plan, entry.profile, target=False)
        if text:
            t.append(f"\n         {text}", "italic")
    return t


def preview_head(entry: PlanEntry) -> Group:
    lines: list = [Text(entry.name, style="bold"), Text(str(entry.path), style="dim")]
    profiles = profiles_text(entry)
    if profiles is not None:
        lines.append(profiles)
    if not entry.ok:
        lines.append(Text(""))
        n = len(entry.problems)
        lines.append(Text(f"✗ this plan does not validate ({n} problem{'s' if n != 1 else ''}):", style="bold red"))
        for p in entry.problems:
            where = f"line {p.line}" if p.line is not None else ""
            head = Text(f"  {where:<9}", style="dim")
            if p.path:
                head.append(p.path + ": ", style="bold")
            head.append(p.message)
            lines.append(head)
        lines.append(Text(""))
        lines.append(Text("Fix the file and press r to reload.", style="italic"))
        return Group(*lines)
    plan = entry.shown
    if plan.description:
        lines.append(Text(plan.description.strip()))
    lines.append(Text.assemble(("target  ", "dim"), target_text(plan)))
    if plan.find_limit is not None:
        from perftui.run.limit import plan_line

        lines.append(Text.assemble(("load    ", "dim"), plan_line(plan), ("  (perftui find-limit)", "dim")))
        return Group(*lines)
    specs = phase_specs(plan.phases)
    total = sum(s.duration for s in specs)
    if is_benchmark(plan):
        n = len(plan.scenarios)
        lines.append(Text.assemble(("load    ", "dim"), f"benchmark of {n} operation{'s' if n != 1 else ''}: exact "
                                   "samples after a warm-up, one scenario after another"))
        return Group(*lines)
    lines.append(Text.assemble(("load    ", "dim"), f"{len(specs)} phase{'s' if len(specs) != 1 else ''}, ",
                               (format_duration(total), "bold"), " planned   ",
                               ("━", "color(39)"), " rate/s  ", ("━", "color(141)"), " VUs"))
    return Group(*lines)


def headers_text(plan) -> Text | None:
    """Request headers (defaults, then those of steps), as shown: secrets are ``***`` already."""
    seen: dict[tuple[str, str], None] = {}
    for k, v in plan.defaults.headers.items():
        seen[(k, v)] = None
    for sc in plan.scenarios:
        for st in sc.steps:
            for k, v in st.headers.items():
                seen[(k, v)] = None
    if not seen:
        return None
    t = Text("headers\n", style="bold")
    for k, v in seen:
        t.append(f"  {k}: ", style="dim")
        t.append(f"{v}\n")
    return t


def monitor_text(plan) -> Text:
    m = plan.monitor
    t = Text("monitoring\n", style="bold")
    if not is_monitored(plan):
        t.append('  target not monitored (add [monitor] health = "/health", metrics = "/metrics")\n', style="dim")
        return t
    health = [m.health] if isinstance(m.health, str) else list(m.health)
    if health:
        t.append("  health   ", style="dim")
        t.append(", ".join(health) + "\n")
    if m.metrics:
        t.append("  metrics  ", style="dim")
        t.append(m.metrics + (f"  ({len(m.series)} series)" if m.series else "  (default series)") + "\n")
    if m.process is not UNSET:
        t.append("  process  ", style="dim")
        t.append(f"{m.process}\n")
    return t


def data_text(entry: PlanEntry) -> Text | None:
    """The plan's data files: rows, columns and how they are handed out."""
    from perftui.planload.datacheck import data_summary

    try:
        lines = data_summary(entry.loaded.plan)
    except Exception:  # noqa: BLE001 - a display nicety; the file was read when the plan loaded
        return None
    if not lines:
        return None
    t = Text("data files\n", style="bold")
    for line in lines:
        t.append(f"  {line}\n")
    return t


def preview_body(entry: PlanEntry) -> Group:
    plan = entry.shown
    specs = plan_specs(plan)
    phases = Table(box=None, padding=(0, 1), header_style="dim", title="phases", title_justify="left",
                   title_style="bold")
    phases.add_column("#", justify="right")
    phases.add_column("name")
    phases.add_column("model")
    phases.add_column("load")
    phases.add_column("duration", justify="right")
    for i, s in enumerate(specs):
        phases.add_row(str(i + 1), s.name, s.kind, s.describe(),
                       ("≤ " if s.kind == "benchmark" else "") + format_duration(s.duration))
    scen = Table(box=None, padding=(0, 1), header_style="dim", title="scenarios", title_justify="left",
                 title_style="bold")
    scen.add_column("name", no_wrap=True)
    scen.add_column("weight", justify="right")
    scen.add_column("steps")
    for i, sc in enumerate(plan.scenarios):
        steps = [endpoint_name(st) for st in sc.steps]
        scen.add_row(sc.name or f"scenario {i + 1}", f"{sc.weight:g}", Text(" → ".join(steps), overflow="fold"))
    parts: list = ([Text("")] if plan.find_limit is not None else [phases, Text("")]) + [scen, Text("")]
    headers = headers_text(plan)
    if headers is not None:
        parts.append(headers)
    parts.append(monitor_text(plan))
    data = data_text(entry)
    if data is not None:
        parts.append(data)
    th = Text("thresholds\n", style="bold")
    for slo in plan.slos:
        th.append(f"  SLO {slo.name}: {slo.objective:g}% {slo.sli}" + (f" on {slo.endpoint}" if slo.endpoint else "") + "\n")
    if plan.thresholds:
        for expr in plan.thresholds:
            th.append(f"  {threshold_label(expr)}\n", style="")
    elif not plan.slos:
        th.append("  none\n", style="dim")
    parts.append(th)
    return Group(*parts)


class PickerScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "open plan", priority=True),
        Binding("p", "profile", "profile"),
        Binding("r", "reload", "reload"),
        Binding("q,escape", "quit", "quit"),
    ]
    AUTO_FOCUS = "#plan-list"

    def __init__(self, dirs=None) -> None:
        super().__init__()
        self.dirs = dirs
        self.entries: list[PlanEntry] = []

    def compose(self) -> ComposeResult:
        yield Static(Text.assemble((" perftui ", "bold reverse"), "  choose a plan", ("  ↑↓ move · enter open · p profile", "dim")),
                     id="picker-title")
        with Horizontal(id="picker"):
            yield OptionList(id="plan-list")
            with VerticalScroll(id="preview"):
                yield Static(id="preview-head")
                yield PlanSketch(id="sketch")
                yield Static(id="preview-body")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.plan_list = self.query_one(OptionList)
        self.head = self.query_one("#preview-head", Static)
        self.sketch = self.query_one(PlanSketch)
        self.body = self.query_one("#preview-body", Static)
        self.plan_list.border_title = "plans"
        self.query_one("#preview").border_title = "preview"
        self.load_entries()

    def load_entries(self) -> None:
        self.entries = discover(self.dirs)
        self.plan_list.clear_options()
        if not self.entries:
            self.head.update(Text("No plans found in ./plans or the package examples.\n"
                                  "Run a plan file with: perftui run PLAN.toml", style="italic"))
            self.sketch.display = False
            self.body.update("")
            return
        self.plan_list.add_options([Option(entry_prompt(e), id=str(i)) for i, e in enumerate(self.entries)])
        self.plan_list.highlighted = 0
        self.show_preview(self.entries[0])

    def show_preview(self, entry: PlanEntry) -> None:
        self.head.update(preview_head(entry))
        if entry.ok:
            self.sketch.display = entry.shown.find_limit is None  # a search has no load profile to draw
            self.sketch.sketch(phase_specs(entry.shown.phases))
            self.body.update(preview_body(entry))
        else:
            self.sketch.display = False
            self.body.update("")

    def selected(self) -> PlanEntry | None:
        i = self.plan_list.highlighted
        return self.entries[i] if i is not None and 0 <= i < len(self.entries) else None

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        entry = self.selected()
        if entry is not None:
            self.show_preview(entry)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        entry = self.selected()
        if entry is None:
            return
        if not entry.ok:
            self.notify(f"{entry.path.name} does not validate: fix it first (problems shown on the right)",
                        severity="error")
            return
        self.post_message(PlanChosen(entry.loaded))

    def action_profile(self) -> None:
        """The highlighted plan's next profile (none, then each ``[profiles.NAME]`` in turn)."""
        entry = self.selected()
        if entry is None:
            return
        if not entry.profile_names:
            self.notify(f"{entry.path.name} has no profiles ([profiles.NAME] sections)", timeout=3)
            return
        entry.next_profile()
        i = self.plan_list.highlighted
        if i is not None:
            self.plan_list.replace_option_prompt_at_index(i, entry_prompt(entry))
        self.show_preview(entry)

    def action_reload(self) -> None:
        current = self.plan_list.highlighted or 0
        self.load_entries()
        if self.entries:
            self.plan_list.highlighted = min(current, len(self.entries) - 1)
        self.notify("plans reloaded", timeout=2)

    def action_quit(self) -> None:
        self.app.exit()
