"""``perftui compare``, ``perftui baseline`` and ``run --baseline`` on sessions of real runs against
the demo target (two targets: 20 ms and 45 ms of added latency)."""

from __future__ import annotations

import json
import os

import pytest

from perftui.demo import launch
from perftui.stats_compare import histogram_counts
from tests.conftest import read_session, run_cli, run_cli_started

RUN = ("--rate", "25", "--duration", "5s", "--workers", "1", "--headless")
# The documents compared below come from 10 s runs: their per-second tests have 10 samples a side,
# so one second stalled by a busy machine does not turn a real change into noise (with 5 a side
# one such second is enough: p 0.14).
FIXTURE_RUN = ("--rate", "25", "--duration", "10s", "--workers", "1", "--headless")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("compare")
    env = {"PERFTUI_SESSIONS_DIR": str(d / "sessions")}
    with launch(latency="normal:20ms:3ms") as fast, launch(latency="normal:45ms:3ms") as slow, \
            launch(latency="lognormal:15ms:0.8") as tail:
        out = {"dir": d, "env": env, "fast_url": fast.url + "/api/users", "slow_url": slow.url + "/api/users"}
        started = {name: run_cli_started("quick", url + "/api/users", *FIXTURE_RUN, *extra, env=env)
                   for name, url, extra in (("base", fast.url, ("--out", str(d / "base.json"))),
                                            ("again", fast.url, ()),
                                            ("slow", slow.url, ("--out", str(d / "slow.json"))),
                                            ("tail", tail.url, ("--out", str(d / "tail.json"))))}
        for name, proc in started.items():
            stdout, stderr = proc.communicate(timeout=90)
            assert proc.returncode == 0, stderr
            out[name] = stdout
        written = [line.split("session written to ", 1)[1].split("  (")[0]
                   for line in out["again"].splitlines() if "session written to " in line]
        out["again_id"] = read_session(written[0])["id"]
        yield out


def _cli(runs, *args, env=None):
    return run_cli(*args, env={**runs["env"], **(env or {})})


def test_endpoint_histograms_are_in_the_document(runs):
    doc = read_session(runs["dir"] / "base.json")
    (ep,) = doc["endpoints"]
    counts = histogram_counts(ep["histogram"])
    assert sum(counts.values()) == ep["requests"] - sum(ep["error_kinds"].get(k, 0) for k in ("connect_refused", "timeout"))
    assert ep["requests"] > 50


def test_same_target_twice_is_no_regression(runs):
    # the four fixture runs started together: the again run named by the shortest prefix of its
    # id that no other session shares
    others = [read_session(p)["id"] for p in (runs["dir"] / "sessions").glob("*/session.json")]
    others.remove(runs["again_id"])
    short = next(runs["again_id"][:n] for n in range(1, 30) if not any(o.startswith(runs["again_id"][:n]) for o in others))
    r = _cli(runs, "compare", str(runs["dir"] / "base.json"), short, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["failed"] is False
    assert doc["current"]["id"] == runs["again_id"]
    assert not [row for row in doc["rows"] if row["level"] in ("major", "critical")]


def test_slower_target_is_a_critical_regression(runs):
    r = _cli(runs, "compare", str(runs["dir"] / "base.json"), str(runs["dir"] / "slow.json"))
    assert r.returncode == 1, r.stdout + r.stderr
    p95 = next(line for line in r.stdout.splitlines() if line.strip().startswith("p95 ms"))
    assert "worse, critical" in p95 and ("p<0.001" in p95 or float(p95.split("p=")[1].split()[0]) < 0.05)
    assert "verdict: FAIL" in r.stdout
    js = json.loads(_cli(runs, "compare", str(runs["dir"] / "base.json"), str(runs["dir"] / "slow.json"),
                         "--json").stdout)
    rows = {(row["scope"], row["metric"]): row for row in js["rows"]}
    assert rows[("run", "p95")]["change_pct"] > 50 and rows[("run", "p95")]["p"] < 0.05
    ep = rows[("GET /api/users", "p50")]
    assert ep["test"] == "seconds" and ep["direction"] == "worse" and ep["level"] == "critical"  # its own seconds


def test_the_other_way_round_is_better_and_passes(runs):
    r = _cli(runs, "compare", str(runs["dir"] / "slow.json"), str(runs["dir"] / "base.json"), "--json")
    assert r.returncode == 0
    rows = {(row["scope"], row["metric"]): row for row in json.loads(r.stdout)["rows"]}
    assert rows[("run", "p50")]["direction"] == "better"


def test_a_max_against_its_tests_direction_is_not_a_change(runs):
    # the tail target answers most requests far faster than the slow one (15 ms median against
    # 45) and a few far slower: its max is higher, but the test of the requests says faster
    base, tail = str(runs["dir"] / "slow.json"), str(runs["dir"] / "tail.json")
    js = json.loads(_cli(runs, "compare", base, tail, "--json").stdout)
    rows = {(row["scope"], row["metric"]): row for row in js["rows"]}
    top = rows[("run", "max")]
    assert top["current"] > top["baseline"] and top["p"] < 0.05 and top["effect"] < 0.5
    assert top["significant"] is False and top["direction"] == "same" and top["level"] == "none"
    assert rows[("run", "p50")]["direction"] == "better" and rows[("run", "mean")]["direction"] == "better"
    # the endpoint's percentiles, rate and errors are tested over its own seconds, as the run's
    # are: the run's only endpoint reads as the run does (its p99 read "~ its test found the
    # samples smaller", from the histogram test, when the run's was worse)
    for metric in ("p50", "p95", "p99", "rps", "error_rate"):
        ep, run = rows[("GET /api/users", metric)], rows[("run", metric)]
        assert ep["test"] == "seconds" and (ep["p"], ep["direction"], ep["level"]) == (run["p"], run["direction"], run["level"])
    text = _cli(runs, "compare", base, tail).stdout
    line = next(x for x in text.splitlines() if x.strip().startswith("max ms"))
    assert "~" in line and "its test found the samples smaller" in line
    assert top["note"] == "its test found the samples smaller"
    # the HTML report says so too
    html = runs["dir"] / "tail.html"
    assert _cli(runs, "report", tail, "--html", str(html), "--baseline", base).returncode == 0
    row = next(x for x in html.read_text().split("<tr>") if "<td>run</td><td>max</td>" in x)
    assert "<td>~</td>" in row and "its test found the samples smaller" in row


def test_fail_on_and_levels(runs):
    base, slow = str(runs["dir"] / "base.json"), str(runs["dir"] / "slow.json")
    assert _cli(runs, "compare", base, slow, "--fail-on", "never").returncode == 0
    # 45 ms against 20 ms: the median alone is 125 % worse
    assert _cli(runs, "compare", base, slow, "--levels", "100,200,300", "--fail-on", "minor").returncode == 1
    # levels above every change this pair shows classify nothing, so nothing fails (the pair's
    # largest change is read, not assumed: with both cores busy a tail figure moved 400 %+)
    rows = json.loads(_cli(runs, "compare", base, slow, "--json").stdout)["rows"]
    worst = max(abs(row["change_pct"]) for row in rows if row["direction"] == "worse")
    assert worst >= 100
    above = int(worst) + 1
    levels = f"{above},{above + 1},{above + 2}"
    assert _cli(runs, "compare", base, slow, "--levels", levels, "--fail-on", "minor").returncode == 0
    bad = _cli(runs, "compare", base, slow, "--levels", "50,20")
    assert bad.returncode == 2 and "--levels" in bad.stderr


def test_older_documents_without_endpoint_histograms_compare(runs, tmp_path):
    doc = read_session(runs["dir"] / "slow.json")
    for ep in doc["endpoints"]:
        del ep["histogram"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc))
    r = _cli(runs, "compare", str(runs["dir"] / "base.json"), str(old), "--json")
    assert r.returncode == 1
    rows = {(row["scope"], row["metric"]): row for row in json.loads(r.stdout)["rows"]}
    # the endpoint's seconds are still in the timeline's points: tested over them
    assert rows[("GET /api/users", "p95")]["test"] == "seconds" and rows[("GET /api/users", "p95")]["p"] < 0.05
    assert rows[("run", "p95")]["p"] < 0.05
    # a version 1 document has neither: shown, not tested
    for row in doc["timeline"]:
        del row["endpoints"]
    old.write_text(json.dumps(doc))
    r = _cli(runs, "compare", str(runs["dir"] / "base.json"), str(old), "--json")
    rows = {(row["scope"], row["metric"]): row for row in json.loads(r.stdout)["rows"]}
    assert rows[("GET /api/users", "p95")]["p"] is None and rows[("GET /api/users", "rps")]["p"] is None
    assert rows[("run", "p95")]["p"] < 0.05


def test_an_endpoints_seconds_come_from_the_timelines_points(runs):
    from perftui.compare import _endpoint_series
    from perftui.session.endpoint_points import ENDPOINTS_PER_ROW

    doc = read_session(runs["dir"] / "base.json")
    name = "GET /api/users"
    rows = doc["timeline"]
    assert _endpoint_series(doc, name, "p95") == [r["endpoints"][name][3] for r in rows if r["requests"]]
    # a second the endpoint is missing from: none of its requests (rps 0, no latency) — unless
    # the row is full, keeping only its busiest endpoints: then that second is unknown
    del rows[1]["endpoints"][name]
    rows[2]["endpoints"] = {f"GET /other/{i}": [50, 0, 1.0, 2.0, 3.0] for i in range(ENDPOINTS_PER_ROW)}
    rps = _endpoint_series(doc, name, "rps")
    assert len(rps) == len(rows) - 1 and rps[1] == 0.0
    assert len(_endpoint_series(doc, name, "p95")) == len([r for r in rows if r["requests"]]) - 2


@pytest.mark.parametrize("content, message", [
    ("{not json", "not JSON"),
    ('{"hello": 1}', "not a perftui session document"),
    ('{"schema_version": 99, "summary": {}}', "newer perftui"),
    (None, "cannot read"),
])
def test_bad_input_exits_2_naming_the_file(runs, tmp_path, content, message):
    bad = tmp_path / "bad-doc.json"
    if content is not None:
        bad.write_text(content)
    r = _cli(runs, "compare", str(runs["dir"] / "base.json"), str(bad) if content is not None else str(tmp_path / "x" / "none.json"))
    assert r.returncode == 2
    assert message in r.stderr or "no such file" in r.stderr
    assert "Traceback" not in r.stderr
    assert (str(bad) if content is not None else "none.json") in r.stderr


def test_bad_histogram_exits_2(runs, tmp_path):
    doc = read_session(runs["dir"] / "base.json")
    doc["histogram"] = "bm90IGEgaGlzdG9ncmFt"
    bad = tmp_path / "badhist.json"
    bad.write_text(json.dumps(doc))
    r = _cli(runs, "compare", str(bad), str(runs["dir"] / "slow.json"))
    assert r.returncode == 2 and "badhist.json" in r.stderr and "histogram" in r.stderr


def test_unknown_session_id_exits_2(runs):
    r = _cli(runs, "compare", "19990101", str(runs["dir"] / "base.json"))
    assert r.returncode == 2 and "no session '19990101'" in r.stderr


def test_baselines_save_ls_and_run_against_one(runs, tmp_path):
    env = {"PERFTUI_SESSIONS_DIR": str(tmp_path / "sessions")}
    empty = _cli(runs, "baseline", "ls", env=env)
    assert empty.returncode == 0 and "no baselines" in empty.stdout
    saved = _cli(runs, "baseline", "save", "main", str(runs["dir"] / "base.json"), env=env)
    assert saved.returncode == 0, saved.stderr
    stored = tmp_path / "sessions" / "baselines" / "main.json"
    assert stored.exists() and oct(stored.stat().st_mode & 0o777) == "0o600"
    listed = _cli(runs, "baseline", "ls", env=env)
    assert "main" in listed.stdout and read_session(runs["dir"] / "base.json")["id"] in listed.stdout
    assert _cli(runs, "baseline", "save", "../x", str(runs["dir"] / "base.json"), env=env).returncode == 2
    # unknown baseline: refused before any load is sent
    r = _cli(runs, "quick", runs["slow_url"], *RUN, "--baseline", "nosuch", env=env)
    assert r.returncode == 2 and "no baseline 'nosuch'" in r.stderr and "main" in r.stderr
    # a run against the slow target, compared with the fast baseline at its end
    r = _cli(runs, "quick", runs["slow_url"], *RUN, "--baseline", "main", env=env)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr
    assert "compared with baseline main" in r.stdout and "critical" in r.stdout
    r = _cli(runs, "quick", runs["slow_url"], *RUN, "--baseline", "main", "--fail-on", "never", env=env)
    assert r.returncode == 0 and "compared with baseline main" in r.stdout


def test_sessions_dir_untouched_by_compare(runs):
    assert len(list((runs["dir"] / "sessions").glob("*/session.json"))) == 4
    assert not (runs["dir"] / "sessions" / "baselines").exists()
    assert os.access(runs["dir"] / "base.json", os.R_OK)
