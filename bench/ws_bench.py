"""How many WebSocket connections and messages per second one core of perftui sustains.

Rig: the WebSocket peer of the tests (``python -m tests.protocol_peers ws``, a ``websockets``
server whose ``ticker`` channel broadcasts a small JSON message to every subscriber each
``--tick-ms``) is pinned to core 0; perftui (``run --headless --workers 1``: the coordinator and
its one worker process) is pinned to core 1.

Two modes, each a real perftui plan run end to end, numbers read from the session file:

- ``push``: N virtual users each connect, subscribe to the ticker (a ``ws_request`` round trip)
  and ``ws_hold`` for the rest of the run (ramping up at 400 handshakes/s): N long-lived
  connections receiving N x 1000/tick_ms messages per second. Reported over the second half of
  the hold phase: connections held, messages received per second against what the server
  offered, the worker's CPU, event-loop lag; plus handshake failures and, for the whole run, the
  pushes the server sent against those perftui received (the difference at the end is the
  last fraction of a second, sent while perftui was stopping).
- ``rtt``: N virtual users each doing back-to-back ``ws_request`` round trips (50 per iteration
  and connection) against the echo path: request/response pairs per second and their latency.

    python bench/ws_bench.py                          # push 1000/2000/4000 x 10 msg/s, rtt 100
    python bench/ws_bench.py --push 1000:20,5000:4 --rtt 50,200 --seconds 20
    python bench/ws_bench.py --peer fast --push 10000:100 --rtt ''   # bench/ws_peer.py as the peer

The machine is shared and noisy: run twice before believing a number.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
SERVER_CORE = "0"
KEEP: Path | None = None
CLIENT_CORE = "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PEER = "tests"
PEER_PROCS = 1


def start_peer(port: int, tick_ms: float) -> list[subprocess.Popen]:
    """The tests' ``websockets`` peer, or ``--peer fast``: bench/ws_peer.py (``--peer-procs`` of them
    sharing the port with SO_REUSEPORT), all pinned to the server core."""
    if PEER == "fast":
        return [_start_one(["bench/ws_peer.py", "--port", str(port), "--tick-ms", str(tick_ms)]
                           + (["--reuse-port"] if PEER_PROCS > 1 else []), port) for _ in range(PEER_PROCS)]
    return [_start_one(["-m", "tests.protocol_peers", "ws", "--port", str(port), "--tick-ms", str(tick_ms)], port)]


def _start_one(args: list[str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(["taskset", "-c", SERVER_CORE, sys.executable, *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the WebSocket peer did not start: " + proc.stderr.read().decode())


def stop_peer(procs: list[subprocess.Popen]) -> dict:
    """Stop the peer processes; their summed counters (ticks_sent, connections, messages_in) and CPU seconds."""
    total: dict = {}
    cpu = 0.0
    for proc in procs:
        try:  # taskset execs the server, so the pid is the server's
            t = psutil.Process(proc.pid).cpu_times()
            cpu += t.user + t.system
        except psutil.Error:
            pass
        for k, v in _stop_one(proc).items():
            total[k] = total.get(k, 0) + v
    total["cpu_s"] = cpu
    return total


def _stop_one(proc: subprocess.Popen) -> dict:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return {}
    try:
        return json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}


def run_perftui(plan_text: str, workdir: Path, timeout: float) -> dict:
    plan = workdir / "plan.toml"
    out = workdir / "session.json"
    plan.write_text(plan_text)
    r = subprocess.run(["taskset", "-c", CLIENT_CORE, sys.executable, "-m", "perftui", "run", str(plan),
                        "--headless", "--workers", "1", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=timeout, env={**_env(), "CI": "true"})
    if r.returncode not in (0, 1):
        raise RuntimeError(f"perftui failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    if KEEP is not None:
        KEEP.mkdir(parents=True, exist_ok=True)
        (KEEP / f"session-{int(time.time() * 1000)}.json").write_text(out.read_text())
    return json.loads(out.read_text())


def _env() -> dict:
    import os

    return dict(os.environ)


def steady_rows(doc: dict, phase: str) -> list[dict]:
    """The second half of the phase's whole-second rows (the last, partial row left out)."""
    rows = [r for r in doc["timeline"] if r["phase"] == phase][:-1]
    return rows[len(rows) // 2:]


def push(connections: int, tick_ms: float, seconds: float) -> dict:
    port = free_port()
    ramp = max(3.0, connections / 400)  # handshakes per second while ramping
    peer = start_peer(port, tick_ms)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            doc = run_perftui(f"""
target = "http://127.0.0.1:{port}"
[defaults]
timeout = "10s"
connect_timeout = "10s"
[[phases]]
name = "ramp"
duration = "{ramp}s"
vus = 1
ramp_to = {connections}
[[phases]]
name = "hold"
duration = "{seconds}s"
vus = {connections}
[[scenarios]]
  [[scenarios.steps]]
  ws_connect = "/pubsub"
  [[scenarios.steps]]
  ws_request = {{ type = "subscribe", channel = "ticker", id = "{{{{ $uuid() }}}}" }}
  name = "WS subscribe"
  [[scenarios.steps]]
  ws_hold = "1h"
""", Path(tmp), timeout=ramp + seconds + 180)
    finally:
        server = stop_peer(peer)
    rows = steady_rows(doc, "hold")
    ws = doc["protocols"]["ws"]
    received = [r["extra"].get("ws.messages_received", 0) for r in rows]
    held = [r["extra"].get("ws.open_connections", 0) for r in rows]
    res = {
        "mode": "push", "connections": connections, "tick_ms": tick_ms,
        "offered_msgs_s": connections * 1000 / tick_ms,
        "held_min": int(min(held)) if held else 0, "held_mean": statistics.mean(held) if held else 0.0,
        "peak_open": ws["peak_open_connections"], "closed_by_server": ws["closed_by_server"],
        "received_msgs_s": statistics.mean(received) if received else 0.0,
        "worker_cpu_pct": statistics.mean(r["cpu_percent"] for r in rows) if rows else 0.0,
        "loop_lag_ms_max": max((r["loop_lag_ms"] for r in rows), default=0.0),
        "connect_p95_ms": ws["connect_ms"]["p95"], "subscribe_rtt_p95_ms": ws["rtt_ms"]["p95"],
        "failed": ws["connections_failed"], "errors": ws["errors"], "error_kinds": ws["error_kinds"],
        # whole run: pushes the server sent vs pushes perftui received (replies to subscribe excluded)
        "server_pushes": server.get("ticks_sent"),
        "pushes_received": ws["messages_received"] - ws["messages_sent"],
        "peer": PEER, "peer_procs": PEER_PROCS, "peer_cpu_s": round(server.get("cpu_s", 0.0), 1),
        "run_s": round(ramp + seconds, 1),
    }
    res["worker_us_per_msg"] = (res["worker_cpu_pct"] / 100 / res["received_msgs_s"] * 1e6
                                if res["received_msgs_s"] else 0.0)
    return res


def rtt(connections: int, seconds: float, per_iteration: int = 50) -> dict:
    port = free_port()
    peer = start_peer(port, 1000.0)
    steps = "\n".join(f"""  [[scenarios.steps]]
  ws_request = {{ id = "{{{{ $uuid() }}}}", n = {i} }}
  name = "WS echo"
""" for i in range(per_iteration))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            doc = run_perftui(f"""
target = "http://127.0.0.1:{port}"
[[phases]]
name = "load"
duration = "{seconds}s"
vus = {connections}
[[scenarios]]
  [[scenarios.steps]]
  ws_connect = "/echo"
{steps}""", Path(tmp), timeout=seconds + 120)
    finally:
        stop_peer(peer)
    rows = steady_rows(doc, "load")
    ws = doc["protocols"]["ws"]
    echo = next(e for e in doc["endpoints"] if e["name"] == "WS echo")
    per_s = [r["extra"].get("ws.messages_received", 0) for r in rows]
    return {
        "mode": "rtt", "connections": connections,
        "round_trips_s": statistics.mean(per_s) if per_s else 0.0,
        "rtt_p50_ms": echo["latency_ms"]["p50"], "rtt_p99_ms": echo["latency_ms"]["p99"],
        "worker_cpu_pct": statistics.mean(r["cpu_percent"] for r in rows) if rows else 0.0,
        "errors": ws["errors"], "error_kinds": ws["error_kinds"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--push", default="1000:100,2000:100,4000:100",
                    help="CONNECTIONS:TICK_MS,... (each connection gets 1000/TICK_MS msg/s)")
    ap.add_argument("--rtt", default="100", help="virtual users for the round-trip mode, comma separated ('' to skip)")
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--json", action="store_true", help="print raw results as JSON lines")
    ap.add_argument("--keep", type=Path, help="copy every session file into this directory")
    ap.add_argument("--peer", choices=["tests", "fast"], default="tests",
                    help="tests: the tests' websockets server; fast: bench/ws_peer.py (asyncio.Protocol on uvloop)")
    ap.add_argument("--peer-procs", type=int, default=1, help="fast peer processes sharing the port (SO_REUSEPORT)")
    args = ap.parse_args()
    global KEEP, PEER, PEER_PROCS
    KEEP = args.keep
    PEER, PEER_PROCS = args.peer, args.peer_procs
    results = []
    for spec in filter(None, args.push.split(",")):
        n, tick = spec.split(":")
        res = push(int(n), float(tick), args.seconds)
        results.append(res)
        if args.json:
            print(json.dumps(res), flush=True)
        else:
            print(f"push  {res['connections']:>6} conns x {1000 / res['tick_ms']:g}/s: held {res['held_min']:>6}"
                  f" (min of the steady half; peak {res['peak_open']}), received {res['received_msgs_s']:>9,.0f} msg/s of"
                  f" {res['offered_msgs_s']:,.0f} offered, worker CPU {res['worker_cpu_pct']:.0f}%,"
                  f" loop lag max {res['loop_lag_ms_max']:.0f} ms, connect p95 {res['connect_p95_ms']} ms,"
                  f" failed {res['failed']}, errors {res['error_kinds'] or 0};"
                  f" whole run: server pushed {res['server_pushes']:,}, perftui received {res['pushes_received']:,};"
                  f" worker {res['worker_us_per_msg']:.1f} µs/msg; peer ({PEER} x{PEER_PROCS}) CPU"
                  f" {res['peer_cpu_s']} s in {res['run_s']} s",
                  flush=True)
    for n in filter(None, args.rtt.split(",")):
        res = rtt(int(n), args.seconds)
        results.append(res)
        if args.json:
            print(json.dumps(res), flush=True)
        else:
            print(f"rtt   {res['connections']:>6} conns: {res['round_trips_s']:>9,.0f} round trips/s,"
                  f" p50 {res['rtt_p50_ms']} ms, p99 {res['rtt_p99_ms']} ms, worker CPU {res['worker_cpu_pct']:.0f}%,"
                  f" errors {res['error_kinds'] or 0}", flush=True)


if __name__ == "__main__":
    main()
