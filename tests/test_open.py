"""``perftui open ID|FILE``: a saved session document in the results view, driven with Pilot.

The document is the scripted session's own (``tests/ui_fakes.py``: a real ``SessionRecord`` fed
scripted seconds, with target monitoring and a health URL that goes down), written to a file
exactly as a run writes it, then opened through the same loading path as the command.
"""

from __future__ import annotations

import asyncio
import json

import msgspec
import pytest

from perftui.cli import main
from perftui.compare import load_document
from perftui.ui.screens.opened import OpenApp, SessionScreen, decode_document
from tests.test_ui import text_of
from tests.ui_fakes import FakeCoordinator, monitored_plan


def scripted_document(tmp_path):
    """Five seconds at 12 ms, one at 80 ms with 20 % errors and /health down, then 2 at 12 ms."""
    async def play():
        coord = FakeCoordinator(monitored_plan(), "http://127.0.0.1:8088")
        await coord.start()
        coord.step(5, latency_ms=12.0)
        coord.down["/health"] = (503, None, "degraded")
        coord.step(1, latency_ms=80.0, error_rate=0.2)
        coord.down.clear()
        coord.step(2, latency_ms=12.0)
        await coord.stop("stopped by user")
        return coord.session.document()

    doc = asyncio.run(play())
    path = tmp_path / "session.json"
    path.write_bytes(msgspec.json.encode(doc))
    return path


def test_open_moves_a_cursor_over_the_timeline(tmp_path):
    path = scripted_document(tmp_path)
    doc = decode_document(load_document(path))
    rows = doc.timeline
    assert len(rows) == 8
    slow = max(range(len(rows)), key=lambda i: rows[i].p95_ms or 0)
    assert rows[slow].errors > 0 and rows[slow - 1].errors == 0

    async def drive():
        app = OpenApp(doc, path)
        async with app.run_test(size=(160, 60)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, SessionScreen)
            assert screen.cursor == len(rows) - 1
            last = text_of(screen.query_one("#opened-row"))
            assert f"row {len(rows)} of {len(rows)}" in last
            for _ in range(len(rows) - 1 - slow):
                await pilot.press("left")
            assert screen.cursor == slow
            here = text_of(screen.query_one("#opened-row"))
            health = text_of(screen.query_one("#opened-health"))
            row = rows[slow]
            assert f"row {slow + 1} of" in here
            assert f"{row.errors:,} of {row.requests:,} requests" in here
            from perftui.units import format_ms
            assert f"p95 {format_ms(row.p95_ms)}" in here
            assert "DOWN" in health and "503" in health
            await pilot.press("left")
            before = text_of(screen.query_one("#opened-row"))
            assert f"row {slow} of" in before and f"p95 {format_ms(rows[slow - 1].p95_ms)}" in before
            assert f"p95 {format_ms(rows[slow - 1].p95_ms)}" != f"p95 {format_ms(row.p95_ms)}"
            assert "DOWN" not in text_of(screen.query_one("#opened-health"))
            await pilot.press("right")
            assert text_of(screen.query_one("#opened-row")) == here
            await pilot.press("home")
            assert screen.cursor == 0
            await pilot.press("left")  # stays on the first row
            assert screen.cursor == 0
            # the full-run charts drew the whole timeline
            from perftui.ui.widgets.charts import LatencyChart
            chart = screen.query_one(LatencyChart)
            assert chart._data is not None and len(chart._data[0]) == len(rows)
            assert chart.cursor == rows[0].t  # the cursor line follows the cursor
            await pilot.press("end")
            assert chart.cursor == rows[-1].t and screen.cursor == len(rows) - 1
            await pilot.press("q")
        return app.return_code

    assert asyncio.run(drive()) in (0, None)


@pytest.mark.parametrize("content, expected", [
    (b"{not json", "not JSON"),
    (b'{"schema_version": 1, "summary": {}}', "not a readable perftui session document"),
    (json.dumps({"schema_version": 99, "summary": {}}).encode(), "newer perftui"),
])
def test_open_bad_file_exits_2_naming_it(tmp_path, capsys, content, expected):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    assert main(["open", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and expected in err


def test_open_missing_file_and_unknown_id_exit_2(tmp_path, capsys):
    assert main(["open", str(tmp_path / "nope.json")]) == 2
    assert "nope.json" in capsys.readouterr().err
    assert main(["open", "19990101", "--sessions-dir", str(tmp_path)]) == 2
    assert str(tmp_path) in capsys.readouterr().err  # "no sessions in DIR"


def test_open_resolves_a_session_id(tmp_path, capsys, monkeypatch):
    """By id (prefix) in the sessions directory, as perftui ls shows it; without a terminal the
    command says it needs one, naming the document it resolved."""
    path = scripted_document(tmp_path)
    sessions = tmp_path / "sessions"
    run_dir = sessions / "20260101-120000-checkout"
    run_dir.mkdir(parents=True)
    (run_dir / "session.json").write_bytes(path.read_bytes())
    (run_dir / "run.json").write_text(json.dumps({"id": "20260101-120000", "state": "finished"}))
    code = main(["open", "20260101-12", "--sessions-dir", str(sessions)])
    err = capsys.readouterr().err
    assert code == 2 and str(run_dir / "session.json") in err and "needs a terminal" in err


@pytest.mark.parametrize("form", ["id", "prefix", "directory name", "directory name/", "directory path",
                                  "session.json path"])
def test_open_takes_an_id_a_directory_name_or_a_path(tmp_path, capsys, monkeypatch, form):
    """Every way of naming a saved session resolves to its ``session.json``; without a terminal
    the command says it needs one, naming the document it resolved."""
    path = scripted_document(tmp_path)
    sessions = tmp_path / "sessions"
    run_dir = sessions / "20260101-120000-a3f9-checkout"
    run_dir.mkdir(parents=True)
    (run_dir / "session.json").write_bytes(path.read_bytes())
    (run_dir / "run.json").write_text(json.dumps({"id": "20260101-120000-a3f9", "state": "finished"}))
    other = sessions / "20260101-130000-b7c1-checkout"  # another run of the same plan: a prefix must be unique
    other.mkdir()
    (other / "run.json").write_text(json.dumps({"id": "20260101-130000-b7c1", "state": "finished"}))
    monkeypatch.chdir(tmp_path)
    ref = {"id": "20260101-120000-a3f9", "prefix": "20260101-12", "directory name": run_dir.name,
           "directory name/": run_dir.name + "/", "directory path": str(run_dir),
           "session.json path": str(run_dir / "session.json")}[form]
    code = main(["open", ref, "--sessions-dir", str(sessions)])
    err = capsys.readouterr().err
    assert code == 2 and "needs a terminal" in err, err
    assert str(run_dir / "session.json") in err or (form == "session.json path" and ref in err), err


def test_open_a_directory_without_its_document_says_why(tmp_path, capsys):
    sessions = tmp_path / "sessions"
    run_dir = sessions / "20260101-120000-a3f9-checkout"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"id": "20260101-120000-a3f9", "state": "running", "pid": 1}))
    assert main(["open", str(run_dir), "--sessions-dir", str(sessions)]) == 2
    err = capsys.readouterr().err
    assert "no session.json yet" in err and "perftui recover" in err
    assert main(["open", run_dir.name, "--sessions-dir", str(sessions)]) == 2
    assert "has no session.json yet" in capsys.readouterr().err


# ---- the endpoints table follows the cursor (per-endpoint figures in the timeline) -----------


def test_the_endpoints_table_follows_the_cursor_and_a_span(tmp_path):
    path = scripted_document(tmp_path)
    doc = decode_document(load_document(path))
    rows = doc.timeline
    slow = max(range(len(rows)), key=lambda i: rows[i].p95_ms or 0)
    # the record kept every endpoint of every second: the points add up to the row
    for r in rows:
        assert sum(p.requests for p in r.endpoints.values()) == r.requests
        assert sum(p.errors for p in r.endpoints.values()) == r.errors
    names = sorted(rows[slow].endpoints)
    assert len(names) == 2

    async def drive():
        app = OpenApp(doc, path)
        async with app.run_test(size=(160, 60)) as pilot:
            await pilot.pause()
            screen = app.screen
            table = screen.query_one("#results-endpoints")
            for _ in range(len(rows) - 1 - slow):
                await pilot.press("left")
            shown = text_of(table)
            from perftui.units import format_ms
            for name in names:
                p = rows[slow].endpoints[name]
                line = next(ln for ln in shown.splitlines() if name in ln)
                assert f" {p.requests:,} " in line and format_ms(p.p95_ms) in line and format_ms(p.p99_ms) in line
                assert p.errors and "%" in line
            assert "0:05–0:06" in table.border_title
            await pilot.press("left")  # a quiet second: other figures, no errors
            before = text_of(table)
            assert before != shown
            for name in names:
                p = rows[slow - 1].endpoints[name]
                assert not p.errors and format_ms(p.p95_ms) in next(ln for ln in before.splitlines() if name in ln)
            # shift+right: a span of the quiet and the slow second, merged
            await pilot.press("shift+right")
            assert screen.anchor == slow - 1 and screen.cursor == slow
            span = text_of(table)
            assert "rows" in text_of(screen.query_one("#opened-row"))
            for name in names:
                a, b = rows[slow - 1].endpoints[name], rows[slow].endpoints[name]
                line = next(ln for ln in span.splitlines() if name in ln)
                assert f" {a.requests + b.requests:,} " in line
                assert format_ms(max(a.p95_ms, b.p95_ms)) in line
            from perftui.ui.widgets.charts import LatencyChart
            chart = screen.query_one(LatencyChart)
            assert chart.cursor == rows[slow].t and chart.cursor_from == rows[slow - 2].t
            await pilot.press("escape")  # ends the span, not the app
            assert screen.anchor is None and app.is_running
            assert chart.cursor_from is None
            await pilot.press("w")  # the whole run's table
            whole = text_of(table)
            assert "whole run" in table.border_title and "max" in whole
            e = max(doc.endpoints, key=lambda e: e.requests)
            assert f"{e.requests:,}" in whole
            await pilot.press("w")
            assert text_of(table) == shown
            await pilot.press("q")

    asyncio.run(drive())


def test_a_version_1_session_still_opens_with_the_whole_runs_endpoints(tmp_path):
    """A document written before timeline rows had endpoints (schema version 1, by the perftui
    of that time): it decodes, and the table says it is the whole run's."""
    from pathlib import Path

    path = Path(__file__).parent / "fixtures" / "session_v1.json"
    raw = load_document(path)
    assert raw["schema_version"] == 1 and "endpoints" not in raw["timeline"][1]
    doc = decode_document(raw)
    assert all(r.endpoints == {} for r in doc.timeline) and doc.endpoints

    async def drive():
        app = OpenApp(doc, path)
        async with app.run_test(size=(160, 60)) as pilot:
            await pilot.pause()
            table = app.screen.query_one("#results-endpoints")
            assert "no per-second endpoint figures" in table.border_title
            before = text_of(table)
            await pilot.press("left", "left", "w")
            assert text_of(table) == before
            assert f"{doc.endpoints[0].requests:,}" in before
            await pilot.press("q")

    asyncio.run(drive())


def test_a_breaking_point_search_opens_with_its_steps(tmp_path):
    """A find-limit run's document shows its search as the results view did after the run: one row
    per step (asked, achieved, percentiles, verdict and why), the drop after the break, the verdict."""
    path = scripted_document(tmp_path)
    body = json.loads(path.read_text())
    body["find_limit"] = {
        "state": "found", "criteria": ["p95 < 50ms", "error rate < 1%"], "found": True, "limit_rps": 20.0,
        "broke_rps": 30.0, "criterion": "p95 < 50ms",
        "verdict": "limit 20/s: held 20/s, broke at 30/s on p95 < 50ms",
        "steps": [
            {"index": 0, "stage": "ramp", "rate": 10.0, "start": 0.0, "end": 2.0, "started_rps": 10.0, "p50_ms": 12.0,
             "p95_ms": 14.0, "p99_ms": 15.0, "verdict": "held"},
            {"index": 1, "stage": "ramp", "rate": 20.0, "start": 2.0, "end": 4.0, "started_rps": 19.5, "p50_ms": 12.0,
             "p95_ms": 16.0, "p99_ms": 18.0, "verdict": "held"},
            {"index": 2, "stage": "ramp", "rate": 30.0, "start": 4.0, "end": 6.0, "started_rps": 29.0, "p50_ms": 40.0,
             "p95_ms": 80.0, "p99_ms": 95.0, "error_rate": 0.2, "verdict": "broke", "broke": ["p95 80ms ≥ 50ms"],
             "recovery": {"after_rps": 30.0, "rate": 10.0, "start": 6.0, "recovered": True, "seconds": 1.0,
                          "watched_s": 2.0}},
        ],
    }
    body["timeline"][-1].update(target_rps=0.0, target_vus=0)  # the second the run stopped in
    path.write_text(json.dumps(body))
    doc = decode_document(load_document(path))
    assert doc.find_limit is not None and len(doc.find_limit.steps) == 3

    async def drive():
        app = OpenApp(doc, path)
        async with app.run_test(size=(160, 60)) as pilot:
            await pilot.pause()
            text = text_of(app.screen.query_one("#results-limit"))
            row = text_of(app.screen.query_one("#opened-row"))
            await pilot.press("q")
        return text, row

    text, row = asyncio.run(drive())
    assert "no load asked" in row and "target 0 VUs" not in row
    assert "p95 < 50ms, error rate < 1%" in text
    assert "3 ramp" in text and "30/s" in text and "29.0/s" in text
    assert "broke: p95 80ms ≥ 50ms" in text
    assert "recovered in 1s" in text
    assert "✓ limit 20/s" in text


def test_a_run_without_a_search_has_no_breaking_point_panel(tmp_path):
    path = scripted_document(tmp_path)
    doc = decode_document(load_document(path))

    async def drive():
        app = OpenApp(doc, path)
        async with app.run_test(size=(160, 60)) as pilot:
            await pilot.pause()
            found = len(app.screen.query("#results-limit"))
            await pilot.press("q")
        return found

    assert asyncio.run(drive()) == 0
