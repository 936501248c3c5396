"""The help screen (``?``): every key, and how to read the dashboard."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

READING = """\
[b]Charts[/b]: the load chart compares like with like: iterations started per second against
the arrival target (an iteration may send several requests), and VUs on the right in closed
phases; the throughput chart has requests/s, and the error rate on its own axis on the right.
x is time since the run started. Blue vertical lines are phase changes, yellow ones
annotations; small marks along the bottom of the rate chart are other control actions
(‖ pause, ▸ resume, ↕ rate/VU change, ⤓ export, ■ stop). A [red]red band[/] along the bottom of the
load and latency charts marks seconds in which perftui itself was the bottleneck: suspect numbers.
[b]Target[/b] (with a \\[monitor] plan section): health per URL, the server process and its RSS trend,
and one sparkline per metric series on the charts' time axis (scaled per series, value now right).
[b]Latency[/b] is measured from each request's intended start (open model), so it includes time
spent waiting behind a slow target (coordinated omission corrected). [b]Service time[/b] is
measured from the moment the request was actually sent.
[b]Late starts[/b]: arrivals that began later than planned (the generator fell behind).
[b]Dropped[/b]: arrivals skipped because max_in_flight was reached.
[b]Thresholds[/b] on a count (requests > 1000, errors < 10) show "wait" while the run can still
change their verdict; latencies and rates show their verdict as it stands."""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close")]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, what in self.keys:
            table.add_row(key, what)
        with VerticalScroll(id="help", classes="dialog"):
            yield Static(Text("perftui — keys", style="bold"), classes="dialog-title")
            yield Static(table)
            yield Static(READING, id="help-reading")
            yield Static("escape / ? : close", classes="dialog-hint")

    async def action_dismiss(self, result=None) -> None:
        self.dismiss(None)
