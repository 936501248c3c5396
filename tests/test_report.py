"""``perftui report`` and ``run --html/--junit/--csv``: files from a real run against the demo target,
the HTML rendered by headless Chromium (the charts must have been laid out), JUnit parsed, CSV read."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import read_session, run_cli, write_plan

PLAN = """
name = "Report tour"
target = "demo"
thresholds = ["p95 < 5s", "requests > 1000000"]

[demo]
latency = "uniform:2ms:8ms"

[monitor]
health = ["/health"]
metrics = "/metrics"
interval = "1s"

[[phases]]
name = "Warm"
duration = "3s"
arrival_rate = 15

[[phases]]
name = "Ramp"
duration = "3s"
arrival_rate = 15
ramp_to = 30

[[scenarios]]
name = "users"
  [[scenarios.steps]]
  url = "/api/users"

[[scenarios]]
name = "missing"
weight = 1
  [[scenarios.steps]]
  url = "/nothing-here"
"""


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (tests/setup.sh installs it)")
    return exe


def browse(path: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run",
                           f"--user-data-dir={tmp / 'chromium-profile'}", *extra, path.resolve().as_uri()],
                          capture_output=True, text=True, timeout=90)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One run that writes every report at its end (the CI one-liner)."""
    d = tmp_path_factory.mktemp("report")
    plan = write_plan(d, PLAN)
    r = run_cli("run", str(plan), "--headless", "--workers", "1", "--out", str(d / "session.json"),
                "--html", str(d / "report.html"), "--junit", str(d / "junit.xml"), "--csv", str(d / "csv"),
                env={"PERFTUI_SESSIONS_DIR": str(d / "sessions")}, timeout=90)
    return d, r


def test_run_writes_every_report_in_one_command(run):
    d, r = run
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr  # "requests > 1000000" fails
    for name in ("session.json", "report.html", "junit.xml", "csv/stats.csv", "csv/history.csv", "csv/errors.csv",
                 "csv/endpoint_history.csv"):
        assert (d / name).exists(), name
    assert "html report written to" in r.stdout


def test_html_is_self_contained_and_its_charts_draw_in_chromium(run, tmp_path):
    d, _ = run
    html = (d / "report.html").read_text()
    assert "<script src" not in html and "<link" not in html and "@import" not in html
    dom = browse(d / "report.html", tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = dom.stdout[dom.stdout.index("<body"):][:200]
    drawn = int(body.split('data-charts-drawn="')[1].split('"')[0])
    total = int(body.split('data-charts="')[1].split('"')[0])
    # rate, latency, errors, in flight, generator + monitored series (health latency, metrics, host)
    assert total >= 7 and drawn == total, body
    assert "Warm" in dom.stdout and "Ramp" in dom.stdout  # phases marked
    assert "GET /api/users" in dom.stdout and "http_4xx" in dom.stdout  # endpoints, errors by kind
    assert "requests &gt; 1000000" in dom.stdout and "FAIL" in dom.stdout  # thresholds
    shot = tmp_path / "page.png"
    r = browse(d / "report.html", tmp_path, f"--screenshot={shot}", "--window-size=1000,1400")
    assert r.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_junit_has_one_testcase_per_threshold(run):
    d, _ = run
    root = ET.parse(d / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["p95 < 5s", "requests > 1000000"]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None and "requests > 1000000" in failure.get("message")
    assert root.get("failures") == "1"


def test_csv_files_match_the_document(run):
    d, _ = run
    doc = read_session(d / "session.json")
    stats = list(csv.DictReader((d / "csv" / "stats.csv").open()))
    assert [s["Name"] for s in stats] == [e["name"] for e in doc["endpoints"]] + ["Aggregated"]
    assert int(stats[-1]["Request Count"]) == doc["summary"]["requests"]
    history = list(csv.DictReader((d / "csv" / "history.csv").open()))
    assert len(history) == len(doc["timeline"])
    per_endpoint = list(csv.DictReader((d / "csv" / "endpoint_history.csv").open()))
    points = [(r["t"], name, p) for r in doc["timeline"] for name, p in r["endpoints"].items()]
    assert len(per_endpoint) == len(points) > 0
    for row, (t, name, p) in zip(per_endpoint, points):
        assert (float(row["t"]), row["endpoint"], int(row["requests"]), int(row["errors"])) == (t, name, p[0], p[1])
        assert (float(row["p95_ms"]) if row["p95_ms"] else None) == p[3]
    # every request of a second is in its endpoints' points (the plan has fewer endpoints than the cap)
    for r in doc["timeline"]:
        assert sum(p[0] for p in r["endpoints"].values()) == r["requests"]
    errors = list(csv.DictReader((d / "csv" / "errors.csv").open()))
    assert any(e["What"] == "error_kind" and e["Value"] == "http_4xx" for e in errors)


def test_report_command_with_a_baseline(run, tmp_path):
    d, _ = run
    out = tmp_path / "cmp.html"
    r = run_cli("report", str(d / "session.json"), "--html", str(out), "--junit", str(tmp_path / "j.xml"),
                "--baseline", str(d / "session.json"), env={"PERFTUI_SESSIONS_DIR": str(d / "sessions")})
    assert r.returncode == 0, r.stderr
    assert "Compared with baseline" in out.read_text()
    names = [c.get("name") for c in ET.parse(tmp_path / "j.xml").getroot().findall(".//testcase")]
    assert any(n.startswith("no regression at major") for n in names)


def test_report_bad_input_exits_2(run, tmp_path):
    d, _ = run
    r = run_cli("report", str(d / "session.json"))
    assert r.returncode == 2 and "--html" in r.stderr
    r = run_cli("report", str(d / "session.json"), "--html", str(tmp_path / "nodir" / "r.html"))
    assert r.returncode == 2 and "nodir" in r.stderr
    notes = tmp_path / "notes.json"
    notes.write_text(json.dumps([1, 2]))
    r = run_cli("report", str(notes), "--html", str(tmp_path / "r.html"))
    assert r.returncode == 2 and "notes.json" in r.stderr and "not a perftui session" in r.stderr
    assert not (tmp_path / "r.html").exists()
    # run: an unwritable report path stops before any load
    r = run_cli("quick", "http://127.0.0.1:9/", "--rate", "1", "--duration", "1s", "--headless",
                "--junit", str(tmp_path / "nodir" / "j.xml"))
    assert r.returncode == 2 and "--junit" in r.stderr
