"""The dashboard's keys: its bindings and what each does in words, for the help screen.

Used by the dashboard (bindings, ``?``) and the results view (``?`` shows the same help), so it
lives apart from both screens.
"""

from __future__ import annotations

from textual.binding import Binding

DASHBOARD_BINDINGS = [
    Binding("s", "start", "start"),
    Binding("p", "pause", "pause"),
    Binding("space", "pause", "pause/resume", show=False),
    Binding("n", "next_phase", "next"),
    Binding("b", "prev_phase", "back"),
    Binding("plus,equals_sign", "scale(1)", "±10%", key_display="+/-"),
    Binding("minus", "scale(-1)", "-10%", show=False),
    Binding("a", "annotate", "note"),
    Binding("e", "export", "export"),
    Binding("x", "stop", "stop"),
    Binding("o", "sort", "sort", show=False),
    Binding("r", "results", "results"),
    Binding("q", "quit", "quit"),
    Binding("q", "detach", "detach"),  # instead of quit when attached (check_action picks one)
    Binding("question_mark", "help", "help", key_display="?"),
]

# What each key does, in words, for the help screen (the footer is terse).
KEY_HELP = [
    ("s", "start the run"),
    ("p / space", "pause or resume (a pause stretches the phase, it does not eat it)"),
    ("n", "skip to the next phase (in the last one: asks, then ends the run)"),
    ("b", "back: restart this phase, or go to the previous one within its first 2 s"),
    ("+ / -", "raise / lower the target by 10 % (rate in open phases, VUs in closed ones; a ramp at both ends)"),
    ("a", "add an annotation: a note on the charts' time axis and in the session"),
    ("e", "export the session JSON now (to --out, or the sessions directory)"),
    ("x", "stop the run (in-flight requests finish; the session is written)"),
    ("o", "sort the endpoints table by the next column (or click a header)"),
    ("r", "show the results again once the run has ended"),
    ("q", "quit (asks first while a test runs; the session is written on the way out)"),
    ("ctrl+c", "stop gracefully, write the session and quit (twice: stop at once)"),
    ("?", "this help"),
]

# Attached to a run in another process: leaving never stops it.
ATTACHED_KEY_HELP = [
    (k, what) for k, what in KEY_HELP if k not in ("s", "e", "x", "q", "ctrl+c", "?")
] + [
    ("e", "export the session JSON as this viewer has it (next to the run's own files)"),
    ("x", "stop the background run (asks first; it writes its session file)"),
    ("q", "detach: the run goes on (perftui attach ID to come back)"),
    ("ctrl+c", "detach too"),
    ("?", "this help"),
]

def key_help(remote: bool) -> list[tuple[str, str]]:
    return ATTACHED_KEY_HELP if remote else KEY_HELP
