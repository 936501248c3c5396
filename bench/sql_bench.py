"""SQL load: which PostgreSQL driver perftui's SQL steps use, and what one worker costs per
statement against ``pgbench`` on the same server in the same sitting.

    python bench/sql_bench.py [--seconds 8] [--connections 8] [--skip-perftui]

Starts a private cluster (tests/pg_peer.py; needs Debian's ``postgresql``) pinned to core 0 and
runs, each pinned to core 1, the same prepared ``INSERT INTO events (id, v) VALUES ($1, $2)``
with ``--connections`` concurrent connections, closed loop, for ``--seconds``:

- ``pgbench`` (C, libpq; ``-M prepared``, one thread);
- asyncpg on uvloop, and psycopg 3 (async, binary build, server-side prepared) on uvloop: each
  a bare loop of ``execute`` calls, no statistics — the driver's own cost;
- ``perftui run`` of the same statement as a SQL step (``--workers 1``, closed model, full
  statistics): inserts/s (median second of the timeline; rows counted in the table), CPU from
  the worker's own accounting in the session;
- then perftui alone in the open model at ``--open`` rates (1,000 and 5,000 inserts/s): the
  worker's CPU at that rate, which is what a fixed-rate test costs.

CPU per statement is the process's user + system time over the statements it completed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from pg_peer import PgPeer  # noqa: E402

INSERT = "INSERT INTO events (id, v) VALUES ($1, $2)"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _driver_child(driver: str, dsn: str, seconds: float, conns: int) -> None:
    """Runs in a child process (pinned by taskset): prints {"n", "cpu", "wall"}."""
    import uvloop

    async def asyncpg_loop() -> tuple[int, float, float]:
        import asyncpg

        pool = [await asyncpg.connect(dsn) for _ in range(conns)]
        stmts = [await c.prepare(INSERT) for c in pool]
        return await run(lambda i, k: stmts[i].fetch(k, "x"), pool, lambda c: c.close())

    async def psycopg_loop() -> tuple[int, float, float]:
        import psycopg

        pool = [await psycopg.AsyncConnection.connect(dsn, autocommit=True, prepare_threshold=0) for _ in range(conns)]
        curs = [c.cursor() for c in pool]
        sql = INSERT.replace("$1", "%s").replace("$2", "%s")
        return await run(lambda i, k: curs[i].execute(sql, (k, "x"), prepare=True), pool, lambda c: c.close())

    async def run(call, pool, close) -> tuple[int, float, float]:
        counter = [0]
        stop = time.monotonic() + seconds

        async def lane(i: int) -> None:
            base = (os.getpid() << 32) + (i << 24)
            while time.monotonic() < stop:
                counter[0] += 1
                await call(i, base + counter[0])

        c0, t0 = _cpu(), time.monotonic()
        await asyncio.gather(*(lane(i) for i in range(len(pool))))
        cpu, wall = _cpu() - c0, time.monotonic() - t0
        for c in pool:
            await close(c)
        return counter[0], cpu, wall

    n, cpu, wall = uvloop.run(asyncpg_loop() if driver == "asyncpg" else psycopg_loop())
    print(json.dumps({"n": n, "cpu": cpu, "wall": wall}))


def _driver(driver: str, dsn: str, seconds: float, conns: int) -> dict:
    out = subprocess.run(["taskset", "-c", "1", sys.executable, __file__, "--child", driver, dsn,
                          str(seconds), str(conns)], capture_output=True, text=True, check=True, timeout=seconds + 120)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return {"rate": r["n"] / r["wall"], "cpu_us": r["cpu"] / r["n"] * 1e6}


def _pgbench(pg: PgPeer, seconds: float, conns: int) -> dict:
    script = Path(tempfile.mkstemp(suffix=".sql")[1])
    script.write_text("\\set id random(1, 9000000000000000000)\n" + INSERT.replace("$1", ":id").replace("$2", "'x'") + ";\n")
    os.chmod(script, 0o644)
    t0 = os.times()
    out = subprocess.run(["taskset", "-c", "1", f"{pg.bindir}/pgbench", "-n", "-M", "prepared", "-c", str(conns),
                          "-j", "1", "-T", str(int(seconds)), "-f", str(script), pg.dsn()],
                         capture_output=True, text=True, check=True, timeout=seconds + 120,
                         env={**os.environ, "PGPASSWORD": ""})
    t1 = os.times()
    script.unlink()
    n = next(int(line.split(":")[1].split("/")[0]) for line in out.stdout.splitlines()
             if "number of transactions actually processed" in line)
    cpu = (t1.children_user - t0.children_user) + (t1.children_system - t0.children_system)
    return {"rate": n / seconds, "cpu_us": cpu / n * 1e6}


def _perftui(pg: PgPeer, seconds: float, conns: int, rate: float | None = None) -> dict:
    before = int(pg.psql("SELECT count(*) FROM events"))
    plan = Path(tempfile.mkdtemp()) / "sql.toml"
    plan.write_text(f"""
name = "sql bench"
[databases.bench]
dsn = "${{BENCH_DSN}}"
pool = {conns}
[[phases]]
duration = "{int(seconds)}s"
{f"arrival_rate = {rate}" if rate else f"vus = {conns}"}
[[scenarios]]
[[scenarios.steps]]
database = "bench"
sql = "{INSERT}"
params = ["{{{{ $worker }}}}{{{{ $vu }}}}{{{{ $iteration }}}}9", "x"]
""")
    out = plan.parent / "session.json"
    env = {**os.environ, "BENCH_DSN": pg.dsn(), "PYTHONPATH": str(ROOT)}
    subprocess.run(["taskset", "-c", "1", sys.executable, "-m", "perftui", "run", str(plan), "--workers", "1",
                    "--headless", "--out", str(out), "--sessions-dir", str(plan.parent)],
                   capture_output=True, text=True, timeout=seconds + 120, env=env, check=False)
    doc = json.loads(out.read_text())
    rows = [r for r in doc["timeline"] if r["requests"]]
    steady = rows[1:-1] or rows
    achieved = sorted(r["rps"] for r in steady)[len(steady) // 2]
    cpu = sorted(r["cpu_percent"] for r in steady)[len(steady) // 2]
    inserted = int(pg.psql("SELECT count(*) FROM events")) - before
    p99 = doc["summary"]["latency_ms"]["p99"]
    return {"rate": achieved, "cpu_us": cpu / 100 / achieved * 1e6 if achieved else 0.0, "rows": inserted,
            "errors": doc["summary"]["errors"], "cpu_percent": cpu, "p99": p99}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _driver_child(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--skip-perftui", action="store_true")
    ap.add_argument("--open", default="1000,5000", help="open-model rates for perftui alone ('' for none)")
    a = ap.parse_args()
    with PgPeer(cpu=0) as pg:
        pg.psql("CREATE TABLE events (id bigint, v text)")
        results: dict[str, list[dict]] = {}
        for _ in range(a.runs):
            results.setdefault("pgbench", []).append(_pgbench(pg, a.seconds, a.connections))
            for d in ("asyncpg", "psycopg"):
                results.setdefault(d, []).append(_driver(d, pg.dsn(), a.seconds, a.connections))
            if not a.skip_perftui:
                results.setdefault("perftui", []).append(_perftui(pg, a.seconds, a.connections))
            pg.psql("TRUNCATE events")
        opened = [(float(r), _perftui(pg, a.seconds, a.connections, float(r))) for r in a.open.split(",") if r]
    base = sorted(r["rate"] for r in results["pgbench"])[len(results["pgbench"]) // 2]
    print(f"{'client':10} {'inserts/s':>10} {'÷ pgbench':>9} {'CPU µs/stmt':>12}")
    for name, rs in results.items():
        r = sorted(rs, key=lambda x: x["rate"])[len(rs) // 2]
        extra = f"  rows {r['rows']}, errors {r['errors']}" if "rows" in r else ""
        print(f"{name:10} {r['rate']:10,.0f} {r['rate'] / base:9.2f} {r['cpu_us']:12.1f}{extra}")
    for asked, r in opened:
        print(f"perftui open model {asked:,.0f}/s: {r['rate']:,.0f}/s done, worker CPU {r['cpu_percent']:.0f}% of a core,"
              f" p99 {r['p99']:.2f}ms, rows {r['rows']:,}, errors {r['errors']}")


if __name__ == "__main__":
    main()
