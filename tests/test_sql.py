"""SQL steps and PostgreSQL monitoring against a real server: a private cluster (tests/pg_peer.py:
initdb in a temporary directory, as an unprivileged user, on a free port), one for the module,
stopped even when a test fails."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from perftui.errors import PlanError
from perftui.planload import load_plan, plan_from_dict, redacted_plan
from perftui.run.coordinator import Coordinator
from perftui.worker.scenario import ScenarioRunner
from perftui.worker.sql import classify, pool_share
from perftui.planload.sqlchecks import _max_placeholder, dsn_without_password
from pg_peer import PASSWORD, PgPeer, pg_bin

pytestmark = pytest.mark.skipif(pg_bin() is None, reason="PostgreSQL is not installed (tests/setup.sh installs it)")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pg():
    with PgPeer(max_connections=60) as peer:
        peer.psql("CREATE TABLE events (worker int, vu bigint, it int, v int NOT NULL, PRIMARY KEY (worker, vu, it))")
        peer.psql("CREATE TABLE uniq (id int PRIMARY KEY)")
        peer.psql("INSERT INTO uniq VALUES (1)")
        peer.psql("CREATE TABLE acct (id int PRIMARY KEY, v int)")
        peer.psql("INSERT INTO acct VALUES (1, 0), (2, 0)")
        yield peer


def sql_plan(pg: PgPeer, steps: list[dict], *, phases=None, dsn: str | None = None, pool: int = 4, **extra) -> dict:
    return {
        "name": "sql test",
        "databases": {"main": {"dsn": dsn or pg.dsn(), "pool": pool, "connect_timeout": "3s"}},
        "phases": phases or [{"duration": "1s", "vus": 1}],
        "scenarios": [{"name": "s", "steps": steps}],
        **extra,
    }


async def run_iterations(plan: dict, iterations: int = 1) -> ScenarioRunner:
    runner = ScenarioRunner(plan_from_dict(plan).plan, "")
    vars = runner.new_vu()
    try:
        for _ in range(iterations):
            await runner.iteration(vars, None)
    finally:
        await runner.close()
    runner.last_vars = vars
    return runner


async def run(loaded, workers: int = 1, timeout: float = 90):
    coord = Coordinator(loaded, "", workers=workers)
    await coord.start()
    await asyncio.wait_for(coord.finished.wait(), timeout)
    return coord.session


# ---- plans: bad input is a clear PlanError ----------------------------------------------------


def _problems(data: dict) -> str:
    with pytest.raises(PlanError) as e:
        plan_from_dict(data)
    return str(e.value)


def test_plan_errors_name_the_key(pg):
    bad_dsn = _problems(sql_plan(pg, [{"sql": "SELECT 1"}], dsn="mysql://u@h/db"))
    assert "databases.main.dsn" in bad_dsn and "postgresql://" in bad_dsn
    unknown = _problems(sql_plan(pg, [{"sql": "SELECT 1", "database": "mian"}]))
    assert "no [databases.mian]" in unknown and 'did you mean "main"' in unknown
    count = _problems(sql_plan(pg, [{"sql": "INSERT INTO uniq VALUES ($1)", "params": []}]))
    assert "uses 1 parameter(s)" in count
    templ = _problems(sql_plan(pg, [{"sql": "SELECT {{ x }}"}], variables={"x": 1}))
    assert "not a template" in templ
    both = _problems(sql_plan(pg, [{"sql": "SELECT 1", "transaction": [{"sql": "SELECT 1"}]}]))
    assert "does one thing" in both or "not both" in both
    fetch = _problems(sql_plan(pg, [{"sql": "SELECT 1", "fetch": "many"}]))
    assert "fetch" in fetch
    # without a target: fine for a plan of SQL steps
    assert plan_from_dict(sql_plan(pg, [{"sql": "SELECT 1"}])).plan.target == ""


def test_placeholders_outside_quotes_and_comments():
    assert _max_placeholder("SELECT $1, '$9', \"$8\" -- $7\n /* $6 */ , $2") == 2
    assert _max_placeholder("SELECT 1") == 0


def test_dsn_password_is_masked_in_the_stored_plan(pg):
    loaded = plan_from_dict(sql_plan(pg, [{"sql": "SELECT 1"}]))
    assert PASSWORD in loaded.secrets
    stored = json.dumps(redacted_plan(loaded))
    assert PASSWORD not in stored and "perftui:***@" in stored
    assert dsn_without_password("postgresql://h/db?password=x&sslmode=disable") == "postgresql://h/db?password=***&sslmode=disable"


def test_pool_share_splits_evenly_with_at_least_one():
    assert [pool_share(10, 3, i) for i in range(3)] == [4, 3, 3]
    assert [pool_share(2, 4, i) for i in range(4)] == [1, 1, 1, 1]


# ---- statements in process: rows, captures, expectations, error kinds ------------------------


async def test_statement_rows_capture_and_transaction(pg):
    runner = await run_iterations(sql_plan(pg, [
        {"name": "ins", "sql": "INSERT INTO events (worker, vu, it, v) VALUES (-1, $1, $2, $3)",
         "params": ["{{ $vu }}", "{{ $iteration }}", "7"], "expect": {"rows": 1}},
        {"name": "sum", "sql": "SELECT sum(v) AS total, count(*) AS n FROM events WHERE worker = -1",
         "capture": [{"as": "total", "column": "total"}, {"as": "n", "column": 1}], "fetch": "one"},
        {"name": "tx", "transaction": [
            {"sql": "UPDATE acct SET v = v + 1 WHERE id = 1 RETURNING v", "capture": [{"as": "acct", "column": "v"}]},
            {"sql": "SELECT $1::int AS seen", "params": ["{{ acct }}"], "expect": {"rows": 1}},
        ]},
        {"name": "too many", "sql": "SELECT 1 FROM events WHERE worker = -1", "expect": {"max_rows": 1}},
    ]), iterations=3)
    rows = runner.sql_stats.rows
    assert runner.recorders["ins"].errors == 0 and rows["ins"] == 3
    assert runner.last_vars["total"] == 21 and runner.last_vars["n"] == 3
    assert runner.recorders["tx"].errors == 0 and isinstance(runner.last_vars["acct"], int)
    assert runner.recorders["too many"].error_kinds == {"expect_failed": 2}  # 2 and 3 rows > 1
    assert pg.psql("SELECT count(*) FROM events WHERE worker = -1") == "3"


async def test_errors_are_classified_and_the_flow_goes_on(pg):
    runner = await run_iterations(sql_plan(pg, [
        {"name": "syntax", "sql": "SELEC 1"},
        {"name": "no table", "sql": "SELECT * FROM nowhere"},
        {"name": "dup", "sql": "INSERT INTO uniq VALUES (1)"},
        {"name": "param", "sql": "INSERT INTO uniq VALUES ($1)", "params": ["abc"]},
        {"name": "data", "sql": "SELECT 1 / $1::int", "params": [0]},
        {"name": "slow", "sql": "SELECT pg_sleep(5)", "timeout": "300ms"},
        {"name": "after", "sql": "SELECT 1"},
    ]), iterations=2)
    kinds = {name: dict(runner.recorders[name].error_kinds) for name in
             ("syntax", "no table", "dup", "param", "data", "slow", "after")}
    assert kinds == {"syntax": {"db_syntax": 2}, "no table": {"db_syntax": 2}, "dup": {"db_constraint": 2},
                     "param": {"db_param": 2}, "data": {"db_data": 2}, "slow": {"db_timeout": 2}, "after": {}}
    assert runner.recorders["after"].requests == 2
    notes = " | ".join(runner.errors_sample)
    assert "is not a valid integer" in notes
    # the timed-out statement was cancelled on the server, not left running
    assert pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(5)%' AND state = 'active'") == "0"


async def test_min_connections_are_opened_before_the_load(pg):
    plan = sql_plan(pg, [{"sql": "SELECT 1"}], pool=6)
    plan["databases"]["main"]["min_connections"] = 4
    runner = ScenarioRunner(plan_from_dict(plan).plan, "", worker_index=1, worker_count=2)
    try:
        runner.warm_sql()
        pool = runner.sql_stats.pools["main"]
        assert pool.size == 3 and pool.min_connections == 2  # this worker's share of 6 and 4
        for _ in range(100):
            if len(pool.idle) == 2:
                break
            await asyncio.sleep(0.05)
        assert len(pool.idle) == 2 and pool.open == 2 and pool.in_use == 0
    finally:
        await runner.close()
    assert "min_connections" in _problems(sql_plan(pg, [{"sql": "SELECT 1"}], pool=2) | {
        "databases": {"main": {"dsn": pg.dsn(), "pool": 2, "min_connections": 3}}})


def test_classify_by_sqlstate_class():
    class E(Exception):
        def __init__(self, code):
            super().__init__("x")
            self.sqlstate = code

    assert [classify(E(c)).kind for c in ("40P01", "40001", "23505", "42601", "08006", "57014", "53300", "28P01", "XX000")] == [
        "db_deadlock", "db_serialization", "db_constraint", "db_syntax", "db_connection", "db_timeout",
        "db_resources", "db_auth", "db_error"]
    assert classify(ConnectionRefusedError(111, "refused")).kind == "db_connection"


async def test_unreachable_and_wrong_password_do_not_stop_other_steps(pg):
    plan = sql_plan(pg, [
        {"name": "dead", "database": "dead", "sql": "SELECT 1"},
        {"name": "denied", "database": "denied", "sql": "SELECT 1"},
        {"name": "live", "database": "main", "sql": "SELECT 1", "expect": {"rows": 1}},
    ])
    plan["databases"]["dead"] = {"dsn": "postgresql://u:p@127.0.0.1:9/db", "connect_timeout": "2s"}
    plan["databases"]["denied"] = {"dsn": pg.dsn(password="wrong-password"), "connect_timeout": "3s"}
    runner = await run_iterations(plan, iterations=3)
    assert runner.recorders["dead"].error_kinds == {"db_connection": 3}
    assert runner.recorders["denied"].error_kinds == {"db_auth": 3}
    assert runner.recorders["live"].requests == 3 and runner.recorders["live"].errors == 0
    assert any("refused" in n for n in runner.errors_sample)


async def test_deadlocks_are_counted_as_such(pg):
    forward = {"name": "tx", "transaction": [
        {"sql": "UPDATE acct SET v = v + 1 WHERE id = 1"}, {"sql": "SELECT pg_sleep(0.05)"},
        {"sql": "UPDATE acct SET v = v + 1 WHERE id = 2"}]}
    backward = {"name": "tx", "transaction": [
        {"sql": "UPDATE acct SET v = v + 1 WHERE id = 2"}, {"sql": "SELECT pg_sleep(0.05)"},
        {"sql": "UPDATE acct SET v = v + 1 WHERE id = 1"}]}
    plan = sql_plan(pg, [forward], phases=[{"duration": "3s", "vus": 4}], pool=4)
    plan["scenarios"] = [{"name": "a", "steps": [forward]}, {"name": "b", "steps": [backward]}]
    session = await run(plan_from_dict(plan))
    tx = {e.name: e for e in session.endpoint_summaries()}["tx"]
    assert tx.error_kinds.get("db_deadlock", 0) >= 1, tx.error_kinds
    assert set(tx.error_kinds) <= {"db_deadlock"}
    assert tx.requests - tx.errors >= 1


# ---- whole runs: rows arrive, the pool holds its limit, the database on the timeline ---------


async def test_fixed_rate_inserts_arrive(pg):
    plan = sql_plan(pg, [{"name": "insert", "sql": "INSERT INTO events (worker, vu, it, v) VALUES ($1, $2, 1, $3)",
                          "params": ["{{ $worker }}", "{{ $vu }}", 5], "expect": {"rows": 1}}],
                    phases=[{"duration": "3s", "arrival_rate": 100}], pool=4,
                    thresholds=["sql.rows{insert} > 100", "mean{insert} < 1s", "sql.pool.utilization <= 100%"])
    before = int(pg.psql("SELECT count(*) FROM events WHERE worker >= 0"))
    session = await run(plan_from_dict(plan), workers=2)
    ep = {e.name: e for e in session.endpoint_summaries()}["insert"]
    arrived = int(pg.psql("SELECT count(*) FROM events WHERE worker >= 0")) - before
    assert ep.errors == 0, ep.error_kinds
    assert arrived == ep.requests, (arrived, ep.requests)
    assert 200 <= arrived <= 300 + 6  # each worker may start one arrival at each end of the phase
    assert all(r.ok for r in session.threshold_results), [(r.expr, r.detail) for r in session.threshold_results]
    sizes = {r.extra.get("pool.main.size") for r in session.timeline if "pool.main.size" in r.extra}
    assert sizes == {4.0}  # 2 + 2 across the two workers


async def test_pool_limit_holds_and_waits_are_seen(pg):
    plan = sql_plan(pg, [{"name": "slow", "sql": "SELECT pg_sleep(0.05)"}],
                    phases=[{"duration": "3s", "vus": 10}], pool=3,
                    monitor={"postgres": ["main"], "interval": "250ms"},
                    thresholds=["sql.pool.utilization < 80%"])
    loaded = plan_from_dict(plan)
    coord = Coordinator(loaded, "", workers=1)
    peak_server = 0
    await coord.start()
    while not coord.finished.is_set():
        await asyncio.sleep(0.2)
        peak_server = max(peak_server, int(pg.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            " AND application_name <> 'perftui monitor' AND pid <> pg_backend_pid() AND query LIKE '%pg_sleep(0.05)%'")))
    session = coord.session
    assert 1 <= peak_server <= 3
    in_use = [r.extra.get("pool.main.in_use_peak", 0) for r in session.timeline]
    assert max(in_use) == 3
    assert sum(r.extra.get("sql.main.waits", 0) for r in session.timeline) > 0
    assert max(r.extra.get("pool.main.waiting", 0) for r in session.timeline) >= 1
    # the database on the same timeline, as named monitor series
    conns = [r.monitor.metrics.get("db.main.connections") for r in session.timeline if r.monitor is not None]
    assert conns and max(c for c in conns if c is not None) >= 3
    assert "db.main.commits_per_s" in session.monitor.metric_names()
    doc = session.document()
    assert any(s.name == "db.main.connections_percent" and s.samples > 0 for s in doc.monitor.series)
    # 3 of 3 in use: the threshold fails with the figure
    (res,) = session.threshold_results
    assert not res.ok and res.value == pytest.approx(1.0)


async def test_monitor_of_a_dead_server_reports_and_goes_on(pg):
    plan = sql_plan(pg, [{"name": "live", "database": "main", "sql": "SELECT 1"}], phases=[{"duration": "2s", "vus": 1}],
                    monitor={"postgres": "dead", "interval": "250ms", "timeout": "500ms"})
    plan["databases"]["dead"] = {"dsn": "postgresql://u:p@127.0.0.1:9/db"}
    session = await run(plan_from_dict(plan))
    assert any("database dead: monitoring failed" in e.message for e in session.events)
    live = {e.name: e for e in session.endpoint_summaries()}["live"]
    assert live.requests > 10 and live.errors == 0


# ---- the CLI: secrets never reach the session, a missing driver names the extra --------------


def test_cli_run_keeps_the_password_out_of_the_session(pg, tmp_path):
    plan = tmp_path / "db.toml"
    plan.write_text(textwrap.dedent(f"""
        name = "secret check"
        [databases.main]
        dsn = "postgresql://perftui:${{PG_PASSWORD}}@127.0.0.1:{pg.port}/postgres"
        pool = 2
        [databases.literal]
        dsn = "postgresql://perftui:{PASSWORD}@127.0.0.1:{pg.port}/postgres"
        pool = 1
        [monitor]
        postgres = ["main"]
        [[phases]]
        duration = "2s"
        arrival_rate = 20
        [[scenarios]]
        [[scenarios.steps]]
        database = "main"
        sql = "SELECT $1::text AS echo"
        params = ["{{{{ pw }}}}"]
        [[scenarios.steps]]
        database = "literal"
        sql = "SELECT 1"
        [variables]
        pw = "${{PG_PASSWORD}}"
    """))
    sessions = tmp_path / "sessions"
    out = tmp_path / "out.json"
    env = {**os.environ, "PG_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)}
    html = tmp_path / "report.html"
    r = subprocess.run([sys.executable, "-m", "perftui", "run", str(plan), "--headless", "--workers", "1",
                        "--out", str(out), "--sessions-dir", str(sessions), "--html", str(html)],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(out.read_text())
    assert doc["summary"]["errors"] == 0 and doc["summary"]["requests"] >= 20
    # the report's SQL section: the statements and each database's pool
    page = html.read_text()
    sql = page.split("<h2>SQL</h2>", 1)[1].split("<h2>", 1)[0]
    assert f"<b>{doc['protocols']['sql']['statements']:,}</b><span>statements</span>" in sql
    assert "<td>main</td><td>2</td>" in sql and "<td>literal</td><td>1</td>" in sql
    assert "<th>status</th>" not in page  # no HTTP responses: no empty status table
    for f in [out, html, *sessions.rglob("*")]:
        if f.is_file():
            assert PASSWORD.encode() not in f.read_bytes(), f
    assert PASSWORD not in r.stdout + r.stderr


def test_missing_driver_is_exit_2_naming_the_extra(pg, tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "asyncpg.py").write_text("raise ImportError('no asyncpg here')\n")
    plan = tmp_path / "db.toml"
    plan.write_text(f'[databases.main]\ndsn = "{pg.dsn()}"\n[[phases]]\nduration = "1s"\nvus = 1\n'
                    '[[scenarios]]\nsteps = [{ sql = "SELECT 1" }]\n')
    env = {**os.environ, "PYTHONPATH": f"{fake}{os.pathsep}{ROOT}"}
    r = subprocess.run([sys.executable, "-m", "perftui", "run", str(plan), "--headless",
                        "--sessions-dir", str(tmp_path / "s")], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "pip install 'perftui[sql]'" in r.stderr and "Traceback" not in r.stderr


def test_shipped_plan_loads_with_its_dsn_from_the_environment():
    loaded = load_plan(ROOT / "plans" / "metrics-db.toml", env={"PERFTUI_PG_DSN": "postgresql://app:pw1234@db:5432/metrics"})
    assert loaded.plan.databases["metrics"].dsn.startswith("postgresql://")
    assert "pw1234" not in json.dumps(redacted_plan(loaded))


async def test_shipped_plan_runs_against_the_server(pg):
    pg.psql("CREATE DATABASE metrics")
    subprocess.run([f"{pg.bindir}/psql", "-h", str(pg.dir), "-p", str(pg.port), "-U", "perftui", "-d", "metrics",
                    "-XAtq", "-v", "ON_ERROR_STOP=1", "-f", str(ROOT / "plans" / "metrics-db.sql")],
                   check=True, capture_output=True, timeout=120)
    from perftui.planload import apply_overrides

    loaded = load_plan(ROOT / "plans" / "metrics-db.toml", env={"PERFTUI_PG_DSN": pg.dsn("metrics")})
    loaded = apply_overrides(loaded, rate=120, duration="3s")  # a tenth of the rate, for this machine
    session = await run(loaded)
    eps = {e.name: e for e in session.endpoint_summaries()}
    assert set(eps) >= {"insert metric event", "dashboard: tenant overview", "dashboard: series latest"}
    assert sum(e.errors for e in eps.values()) == 0, {n: e.error_kinds for n, e in eps.items()}
    inserted = int(pg.psql("SELECT count(*) FROM metric_events", database="metrics"))
    assert inserted == eps["insert metric event"].requests
    assert any(r.monitor is not None and "db.metrics.commits_per_s" in r.monitor.metrics for r in session.timeline)
