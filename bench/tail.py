"""Tail latency: perftui against wrk at a server that answers after exactly 20 ms.

``bench/slow_server.py`` (one thread, ``select`` with microsecond timeouts and a poll for the last
millisecond: every answer leaves 20 ms after its request was read, within ~0.2 ms, whatever the
phase of its arrival) pinned to core 0; wrk (4 connections, percentiles from
``bench/wrk_pct.lua``) and perftui (4 VUs closed, and 200/s open, one worker) pinned to core 1,
interleaved, ``--runs`` times ``--seconds``. Every response takes the same 20 ms, so any spread
above it is added by the client or the machine; a tool's own share is its distance from the other
in the same run. perftui's worker also reports its loop stalls (> 2 ms), shown here per run.
``--loop-server`` uses the server's older uvloop ``call_later`` (millisecond timer) instead.
A run of 30 s has ~6,000 requests per client: six beyond p99.9 (an 8 s run had one or two, and
its p99.9 was one request's luck). ``python bench/tail.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT = 8099


def wrk(url: str, seconds: int) -> dict:
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c4", f"-d{seconds}s", "-s",
                          str(ROOT / "bench" / "wrk_pct.lua"), url], capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def perftui(url: str, seconds: int, load: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "s.json"
        proc = subprocess.run(["taskset", "-c", "1", sys.executable, "-m", "perftui", "quick", url, *load,
                               "--duration", f"{seconds}s", "--workers", "1", "--headless", "--out", str(out)],
                              capture_output=True, text=True, env=dict(os.environ, CI="true"))
        if not out.exists():
            raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
        doc = json.loads(out.read_text())
    lat = doc["summary"]["latency_ms"]
    return {"p50": lat["p50"], "p90": lat["p90"], "p99": lat["p99"], "p999": lat["p999"], "max": lat["max"],
            "requests": doc["summary"]["requests"], "stalls": sum(r.get("stalls", 0) for r in doc["timeline"]),
            "worst_lag": max(r["loop_lag_ms"] for r in doc["timeline"])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--loop-server", action="store_true", help="the server's uvloop call_later timer (ms ticks)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    server = subprocess.Popen(["taskset", "-c", "0", sys.executable, str(ROOT / "bench" / "slow_server.py"),
                               "--port", str(PORT), *(["--loop"] if args.loop_server else [])], stdout=subprocess.PIPE, text=True)
    server.stdout.readline()
    url = f"http://127.0.0.1:{PORT}/"
    runs: dict[str, list[dict]] = {"wrk (4 conns)": [], "perftui closed (4 VUs)": [], "perftui open (200/s)": []}
    try:
        for i in range(args.runs):
            runs["wrk (4 conns)"].append(wrk(url, args.seconds))
            runs["perftui closed (4 VUs)"].append(perftui(url, args.seconds, ["--vus", "4"]))
            runs["perftui open (200/s)"].append(perftui(url, args.seconds, ["--rate", "200"]))
            print(f"run {i + 1}: " + "; ".join(f"{k} p99 {v[-1]['p99']:.2f} p99.9 {v[-1]['p999']:.2f}"
                                               + (f" stalls {v[-1]['stalls']}" if "stalls" in v[-1] else "")
                                               for k, v in runs.items()), flush=True)
            time.sleep(1)
    finally:
        server.terminate()
        server.wait()
    base = {q: statistics.median(r[q] for r in runs["wrk (4 conns)"]) for q in ("p50", "p99", "p999")}
    print()
    print(f"{'client':<24} {'p50':>7} {'p99':>7} {'p99.9':>7} {'Δp99 vs wrk':>12} {'Δp99.9':>8} {'stalls/run':>10}")
    table = {}
    for name, rs in runs.items():
        med = {q: statistics.median(r[q] for r in rs) for q in ("p50", "p99", "p999")}
        stalls = statistics.median(r["stalls"] for r in rs) if "stalls" in rs[0] else None
        table[name] = {"median": med, "runs": rs}
        print(f"{name:<24} {med['p50']:>7.2f} {med['p99']:>7.2f} {med['p999']:>7.2f} "
              f"{med['p99'] - base['p99']:>+12.2f} {med['p999'] - base['p999']:>+8.2f} "
              f"{'' if stalls is None else f'{stalls:.0f}':>10}")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
