"""Small modal prompts: confirm quitting a running test, confirm stopping a run one is attached
to, type an annotation."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class ConfirmQuit(ModalScreen[bool]):
    BINDINGS = [
        Binding("y,enter", "answer(True)", "stop and quit"),
        Binding("n,escape,q", "answer(False)", "keep running"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-quit", classes="dialog"):
            yield Label("A test is running.", classes="dialog-title")
            yield Label("Stop it, write the session file and quit?")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Stop and quit (y)", id="yes", variant="error")
                yield Button("Keep running (n)", id="no", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ConfirmEndRun(ModalScreen[bool]):
    """n in the last phase ends the run: ask first, as q does while a test runs."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "end the run"),
        Binding("n,escape,q", "answer(False)", "keep running"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-end", classes="dialog"):
            yield Label("This is the last phase.", classes="dialog-title")
            yield Label("Skipping it ends the run (the session is written). End the run now?")
            with Horizontal(classes="dialog-buttons"):
                yield Button("End the run (y)", id="yes", variant="error")
                yield Button("Keep running (n)", id="no", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ConfirmStop(ModalScreen[bool]):
    """Attached to a run in another process: x stops it for good, so ask."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "stop the run"),
        Binding("n,escape,q", "answer(False)", "keep running"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-stop", classes="dialog"):
            yield Label("Stop the background run?", classes="dialog-title")
            yield Static("It stops for every attached viewer and writes its session file. "
                         "To leave it running, press q instead (detach).")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Stop the run (y)", id="yes", variant="error")
                yield Button("Keep running (n)", id="no", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class AnnotatePrompt(ModalScreen[str | None]):
    """One line of text; Enter adds it as an annotation, Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="annotate", classes="dialog"):
            yield Label("Annotation (shown on the charts and stored in the session)", classes="dialog-title")
            yield Input(placeholder="e.g. deployed v2.3, cache flushed…", max_length=200, id="note")
            yield Label("enter: add · escape: cancel", classes="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
