"""SVG snapshots of the picker, the running dashboard and the results view, at 160x48 and 80x24.

Data comes from the scripted coordinator (frozen clock, seeded traffic), so the pictures are
deterministic. Update with ``pytest tests/test_ui_snapshots.py --snapshot-update`` only after
looking at the new pictures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from perftui.planload import load_plan
from tests.conftest import ROOT
from tests.ui_fakes import (
    monitored_plan, play_monitored, play_running, play_to_the_end, scripted_app, settle, wait_for, write_sample_plans,
)

SIZES = {"160x48": (160, 48), "80x24": (80, 24)}


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty directory so the paths the app shows are short and stable."""
    monkeypatch.chdir(tmp_path)
    write_sample_plans(tmp_path / "plans")
    return tmp_path


@pytest.mark.parametrize("size", SIZES)
def test_picker(snap_compare, in_tmp, size):
    app = scripted_app(plan_dirs=[(Path("plans"), "plans/")])

    async def before(pilot):
        await wait_for(pilot, lambda: bool(getattr(pilot.app.screen, "entries", None)))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZES[size], run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_running(snap_compare, in_tmp, size):
    assert snap_compare(scripted_app(), terminal_size=SIZES[size], run_before=play_running)


@pytest.mark.parametrize("size", SIZES)
def test_results(snap_compare, in_tmp, size):
    assert snap_compare(scripted_app(), terminal_size=SIZES[size], run_before=play_to_the_end)


def test_dashboard_paused_with_help(snap_compare, in_tmp):
    async def before(pilot):
        await play_running(pilot)
        await pilot.press("p")
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(scripted_app(), terminal_size=(160, 48), run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_monitored(snap_compare, in_tmp, size):
    """Target panel (health, SUT process, metric sparklines), generator warning, limited marks;
    at 80x24 scrolled down to the target panel."""

    async def before(pilot):
        await play_monitored(pilot)
        pilot.app.clear_notifications()  # the bottleneck toast would cover the target panel (test_ui checks it)
        if size == "80x24":
            screen = pilot.app.screen
            screen.query_one("#body").scroll_to_widget(screen.target, animate=False, top=True)
        await settle(pilot)

    assert snap_compare(scripted_app(loaded=monitored_plan()), terminal_size=SIZES[size], run_before=before)


def test_dashboard_protocols(snap_compare, in_tmp):
    """A WebSocket plan: the protocols panel takes the corner."""
    app = scripted_app(loaded=load_plan(ROOT / "plans" / "websocket.toml"))
    assert snap_compare(app, terminal_size=(160, 48), run_before=play_running)
