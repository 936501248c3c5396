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
its p99.9 was one request's luck). So besides the median of the runs' percentiles, each client's
runs are pooled, whole latency histograms added (wrk's from its Lua ``done``, perftui's from the
session's HDR histogram), and the pooled p99 and p99.9 are compared: five 60 s runs put 60
requests beyond the pooled p99.9. ``--together`` runs wrk *beside* each perftui run instead of
before it (same core, same seconds; perftui's coordinator moved to the server's core once its
worker is up), so both clients meet the same moments of a busy or virtualised machine, and each
perftui row is compared with the wrk run beside it. ``--control`` adds, every round, a second wrk
beside a wrk run the same way: the two are the same client, so their difference is the noise of
the comparison itself at that sitting. ``--reference`` adds, every round, ``bench/openloop.c``
(built with ``cc``) beside a wrk run the same way: an open-loop client in C with nothing else in
it (200/s over 8 connections, latency from the intended send, sends timed by an absolute timerfd),
so its distance from wrk is what the open model itself meets on this machine — a held or slowly
woken core makes its arrivals late, which a closed loop never sends; and then perftui's open model
*beside* the reference (this one waking 1 ms before a due time, as perftui does, so that a
timer's own lateness is not counted against it), the like-for-like comparison of two open-loop
clients at the same moments. ``--capture`` (with ``--together``) records the loopback
traffic of every pair (``tcpdump`` on the server's core) and splits each client's requests by
what the kernel saw: the *wire* time (request segment to response segment on the same
connection: the server's and its core's share) and, for closed-loop clients, the *turnaround*
(response segment to the next request on that connection: the client's own time between two
requests, where its loop's stalls show), pooled per client. With ``--together``, each pooled Δ
also gets a 95 % interval from the runs resampled with replacement (each with the run beside it):
what the sitting can tell apart from nothing. ``python bench/tail.py [--runs 5
--seconds 60] [--together [--control] [--reference] [--capture] [--skip ROUNDS]]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT = 8099


def ensure_tools(capture: bool, reference: bool = False) -> None:
    """wrk (for ``--capture`` tcpdump, for ``--reference`` a C compiler) from Debian; the capture's
    reader (dpkt) from PyPI."""
    wanted = {"wrk": "wrk", "tcpdump": "tcpdump" if capture else None, "gcc": "cc" if reference else None}
    missing = [pkg for pkg, tool in wanted.items() if tool
               and not shutil.which(tool) and not os.access(f"/usr/sbin/{tool}", os.X_OK)]
    if missing:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if capture:
        try:
            import dpkt  # noqa: F401
        except ImportError:
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "dpkt"], check=True)


def client_ports(pid: int, at_least: int, timeout: float) -> set[int]:
    """The local ports of the connections to the server held by process ``pid`` or its children,
    once there are ``at_least`` of them (fewer, perhaps none, after ``timeout`` seconds)."""
    import psutil

    root = psutil.Process(pid)
    deadline = time.monotonic() + timeout
    ports: set[int] = set()
    while True:
        ports = set()
        for p in [root, *root.children(recursive=True)]:
            try:
                ports.update(c.laddr.port for c in p.net_connections(kind="tcp") if c.raddr and c.raddr.port == PORT)
            except psutil.Error:
                pass
        if len(ports) >= at_least or time.monotonic() >= deadline:
            return ports
        time.sleep(0.01)


class Capture:
    """tcpdump on loopback for one pair of runs, then each client's wire and turnaround times."""

    def __init__(self, directory: str) -> None:
        self.path = Path(directory) / "lo.pcap"
        self.second_ports: set[int] = set()
        tcpdump = shutil.which("tcpdump") or "/usr/sbin/tcpdump"
        self.proc = subprocess.Popen(["taskset", "-c", "0", tcpdump, "-i", "lo", "-s", "128", "-B", "16384", "-n",
                                      "-U", "-w", str(self.path), f"tcp port {PORT}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while not self.path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)

    def note_second(self, pid: int) -> None:
        """Read the second client's ports while its connections are open."""
        self.second_ports = client_ports(pid, at_least=4, timeout=5.0)

    def split(self) -> tuple[dict, dict]:
        """Stop, and return (first client, second client): the second is the process given to
        ``note_second`` (wrk beside), known by its connections' local ports; every other client
        port is the first's."""
        self.proc.terminate()
        self.proc.wait()
        import dpkt

        requests: dict[int, list[float]] = {}
        responses: dict[int, list[float]] = {}
        with open(self.path, "rb") as f:
            for ts, frame in dpkt.pcap.Reader(f):
                tcp = dpkt.ethernet.Ethernet(frame).data.data
                if not isinstance(tcp, dpkt.tcp.TCP) or not tcp.data:
                    continue
                payload = bytes(tcp.data)
                if tcp.dport == PORT:
                    requests.setdefault(tcp.sport, []).extend([ts] * payload.count(b"GET "))
                else:
                    responses.setdefault(tcp.dport, []).extend([ts] * payload.count(b"HTTP/1."))
        second_ports = self.second_ports
        out = ({"wire": Counter(), "turn": Counter()}, {"wire": Counter(), "turn": Counter()})
        for port, sent in requests.items():
            got = responses.get(port, [])
            side = out[1 if port in second_ports else 0]
            for i in range(min(len(sent), len(got))):
                side["wire"][round((got[i] - sent[i]) * 1e6)] += 1
                if i + 1 < len(sent):
                    side["turn"][round((sent[i + 1] - got[i]) * 1e6)] += 1
        return out


def _wrk_start(url: str, seconds: int) -> subprocess.Popen:
    return subprocess.Popen(["taskset", "-c", "1", "wrk", "-t1", "-c4", f"-d{seconds}s", "-s",
                             str(ROOT / "bench" / "wrk_pct.lua"), url], stdout=subprocess.PIPE, text=True)


def _wrk_done(proc: subprocess.Popen) -> dict:
    out = proc.communicate()[0]
    doc = json.loads(out.strip().splitlines()[-1])
    doc["hist"] = Counter({int(v): int(c) for v, c in doc["hist"]})
    return doc


def wrk(url: str, seconds: int) -> dict:
    return _wrk_done(_wrk_start(url, seconds))


REFERENCE_RATE, REFERENCE_CONNECTIONS = 200, 8
PERFTUI_EARLY_US = 1000
"""perftui's open model wakes this long before a due time (``perftui.worker.main.EARLY``)."""


def build_reference(directory: str) -> str:
    """``bench/openloop.c`` compiled into ``directory``; the executable's path."""
    exe = Path(directory) / "openloop"
    subprocess.run(["cc", "-O2", "-o", str(exe), str(ROOT / "bench" / "openloop.c")], check=True)
    return str(exe)


def _reference_start(exe: str, seconds: int, early_us: int = 0) -> subprocess.Popen:
    return subprocess.Popen(["taskset", "-c", "1", exe, "127.0.0.1", str(PORT), str(REFERENCE_RATE), str(seconds),
                             str(REFERENCE_CONNECTIONS), str(early_us)], stdout=subprocess.PIPE, text=True)


def _reference_done(proc: subprocess.Popen) -> dict:
    doc = json.loads(proc.communicate()[0])
    for key in ("hist", "service", "send_lag"):
        doc[key] = Counter({int(v): int(c) for v, c in doc[key]})
    return doc


def reference_beside_wrk(exe: str, url: str, seconds: int, capture: bool = False) -> tuple[dict, dict]:
    """The open-loop reference (sends at their due times) with wrk beside it, as ``together``
    puts wrk beside perftui: how far an open-loop client's tail sits from wrk's on this machine."""
    return _beside(url, seconds, capture, lambda d: _reference_start(exe, seconds), lambda proc, d: _reference_done(proc))


def perftui_beside_reference(exe: str, url: str, seconds: int, load: list[str],
                             capture: bool = False) -> tuple[dict, dict]:
    """perftui's open model with the reference beside it (waking 1 ms early, as perftui does):
    two open-loop clients at the same moments of the machine, so their difference is perftui's own."""
    peer = (lambda: _reference_start(exe, seconds - 1, PERFTUI_EARLY_US), _reference_done)
    return together(url, seconds, load, capture, peer)


def _perftui_start(url: str, seconds: int, load: list[str], out: Path) -> subprocess.Popen:
    return subprocess.Popen(["taskset", "-c", "1", sys.executable, "-m", "perftui", "quick", url, *load,
                             "--duration", f"{seconds}s", "--workers", "1", "--headless", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, CI="true"))


def _perftui_done(proc: subprocess.Popen, out: Path) -> dict:
    stdout, stderr = proc.communicate()
    if not out.exists():
        raise RuntimeError(stdout[-2000:] + stderr[-2000:])
    doc = json.loads(out.read_text())
    from perftui.aggregate import decode_histogram

    def counts(encoded: str) -> Counter:
        hist: Counter = Counter()
        for item in decode_histogram(encoded.encode()).get_recorded_iterator():
            hist[item.value_iterated_to] += item.count_at_value_iterated_to
        return hist

    hist = counts(doc["histogram"])
    # service time, from the actual send (the closed model ships it only where it differs)
    service = counts(doc["service_histogram"]) if doc["service_histogram"] else hist
    lat = doc["summary"]["latency_ms"]
    return {"p50": lat["p50"], "p90": lat["p90"], "p99": lat["p99"], "p999": lat["p999"], "max": lat["max"],
            "requests": doc["summary"]["requests"], "stalls": sum(r.get("stalls", 0) for r in doc["timeline"]),
            "worst_lag": max(r["loop_lag_ms"] for r in doc["timeline"]), "hist": hist,
            "service": service}


def perftui(url: str, seconds: int, load: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "s.json"
        return _perftui_done(_perftui_start(url, seconds, load, out), out)


def _beside(url: str, seconds: int, capture: bool, start, finish, peer=None) -> tuple[dict, dict]:
    """A client (``start(dir)`` gives its process, ``finish(process, dir)`` its result) with wrk
    beside it on the same core: (wrk beside, the client). wrk starts as soon as the client's first
    connection is open (its load has begun) and runs 1 s less, so every second of wrk's is one of
    the client's, and the client's first second of load (its start-up's last work on both cores)
    is one of wrk's too. ``peer``: (start(), done(process)) of another client to put beside
    instead of wrk."""
    with tempfile.TemporaryDirectory() as d:
        cap = Capture(d) if capture else None
        proc = start(d)
        if not client_ports(proc.pid, at_least=1, timeout=15.0):
            raise RuntimeError(f"process {proc.pid} opened no connection to the server in 15 s")
        peer_start, peer_done = peer or (lambda: _wrk_start(url, seconds - 1), _wrk_done)
        other = peer_start()
        if cap is not None:
            cap.note_second(other.pid)
        theirs, ours = peer_done(other), finish(proc, d)
        if cap is not None:
            first, second = cap.split()
            ours.update(first)
            theirs.update(second)
        return theirs, ours


def together(url: str, seconds: int, load: list[str], capture: bool = False, peer=None) -> tuple[dict, dict]:
    """wrk and a perftui worker at the same time, both on core 1, so both meet the same moments
    of the machine; perftui's coordinator is moved to core 0 (beside the server) once its worker
    has started, so that only the two clients' own work shares their core. wrk starts with
    perftui's load and ends 1 s before it."""
    import psutil

    def start(d: str) -> subprocess.Popen:
        proc = _perftui_start(url, seconds, load, Path(d) / "s.json")
        coordinator = psutil.Process(proc.pid)
        deadline = time.monotonic() + 10
        while not coordinator.children() and time.monotonic() < deadline:
            time.sleep(0.05)
        coordinator.cpu_affinity([0])
        return proc

    return _beside(url, seconds, capture, start, lambda proc, d: _perftui_done(proc, Path(d) / "s.json"), peer)


def wrk_pair(url: str, seconds: int, capture: bool = False) -> tuple[dict, dict]:
    """The control: two wrk processes beside each other, as ``together`` puts wrk beside perftui.
    Their difference is what this comparison can resolve on this machine at that moment."""
    return _beside(url, seconds, capture, lambda d: _wrk_start(url, seconds), lambda proc, d: _wrk_done(proc))


def pooled(rs: list[dict], q: float, key: str = "hist") -> float:
    """The q-th percentile (ms) of every run's histogram ``key`` (microseconds → count) added
    together (the rank as HdrHistogram takes it)."""
    total: Counter = Counter()
    for r in rs:
        total.update(r[key])
    need, seen = max(1, int(q / 100 * sum(total.values()) + 0.5)), 0
    for value in sorted(total):
        seen += total[value]
        if seen >= need:
            return value / 1000
    return 0.0


def _tops(r: dict, share: float = 0.07) -> tuple[int, list[int]]:
    """A run's request count and its slowest ``share`` of latencies (µs), slowest first: all a
    pooled p99 or p99.9 of up to ~14 runs like it can reach."""
    hist, n = r["hist"], sum(r["hist"].values())
    keep, top = int(share * n) + 1, []
    for value in sorted(hist, reverse=True):
        top.extend([value] * hist[value])
        if len(top) >= keep:
            break
    return n, top[:keep]


def _pooled_top(picked: list[tuple[int, list[int]]], q: float) -> float:
    """``pooled`` of the runs ``picked`` (as ``_tops`` gives them), from their slowest values."""
    n = sum(count for count, _ in picked)
    beyond = n - max(1, int(q / 100 * n + 0.5))  # values slower than the percentile
    merged = sorted((v for _, top in picked for v in top), reverse=True)
    return merged[min(beyond, len(merged) - 1)] / 1000


def interval(rs: list[dict], peers: list[dict], q: float, draws: int = 2000, seed: int = 1) -> tuple[float, float]:
    """95 % interval of the pooled Δ (``rs`` − ``peers``) at percentile ``q``, the runs resampled
    with replacement, each run with the one beside it (they met the same moments of the machine).
    Its width is what the sitting can tell apart: a run's stalls and the machine's moods move a
    pooled p99.9 by whole milliseconds, which a resampling of single requests would not show."""
    rng = random.Random(seed)
    ours, theirs = [_tops(r) for r in rs], [_tops(r) for r in peers]
    deltas = []
    for _ in range(draws):
        pick = [rng.randrange(len(rs)) for _ in rs]
        deltas.append(_pooled_top([ours[i] for i in pick], q) - _pooled_top([theirs[i] for i in pick], q))
    deltas.sort()
    return deltas[int(0.025 * draws)], deltas[int(0.975 * draws) - 1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--loop-server", action="store_true", help="the server's uvloop call_later timer (ms ticks)")
    ap.add_argument("--together", action="store_true",
                    help="run wrk beside each perftui run (same seconds, same core) instead of before it")
    ap.add_argument("--control", action="store_true",
                    help="with --together: also run wrk beside wrk each round (the comparison's own noise)")
    ap.add_argument("--reference", action="store_true",
                    help="with --together: also run an open-loop client in C (bench/openloop.c) beside wrk each round")
    ap.add_argument("--capture", action="store_true",
                    help="with --together: record loopback traffic and split each client's time into wire and turnaround")
    ap.add_argument("--skip", default="", metavar="ROUNDS",
                    help="with --together: leave rounds out, comma-separated: closed, open (perftui beside wrk), "
                         "reference-wrk (the reference beside wrk)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    if (args.control or args.capture or args.reference) and not args.together:
        ap.error("--control, --reference and --capture go with --together")
    skip = {r for r in args.skip.split(",") if r}
    if skip - {"closed", "open", "reference-wrk"}:
        ap.error(f"--skip: unknown round(s) {', '.join(sorted(skip - {'closed', 'open', 'reference-wrk'}))}; "
                 "expected closed, open, reference-wrk")
    ensure_tools(args.capture, args.reference)
    build = tempfile.TemporaryDirectory()
    reference = build_reference(build.name) if args.reference else None
    server = subprocess.Popen(["taskset", "-c", "0", sys.executable, str(ROOT / "bench" / "slow_server.py"),
                               "--port", str(PORT), *(["--loop"] if args.loop_server else [])], stdout=subprocess.PIPE, text=True)
    server.stdout.readline()
    url = f"http://127.0.0.1:{PORT}/"
    runs: dict[str, list[dict]] = {} if args.together else {
        "wrk (4 conns)": [], "perftui closed (4 VUs)": [], "perftui open (200/s)": []}
    against: dict[str, str] = {}  # --together: each client's row -> the row of the client beside it

    def pair(beside: str, name: str, peer: dict, ours: dict) -> None:
        runs.setdefault(beside, []).append(peer)
        runs.setdefault(name, []).append(ours)
        against[name] = beside

    try:
        for i in range(args.runs):
            if args.together:
                for name, load in (("closed (4 VUs)", ["--vus", "4"]), ("open (200/s)", ["--rate", "200"])):
                    if name.split()[0] in skip:
                        continue
                    pair(f"wrk beside {name}", f"perftui {name}", *together(url, args.seconds, load, args.capture))
                if args.control:
                    pair("wrk beside wrk", "wrk (control)", *wrk_pair(url, args.seconds, args.capture))
                if reference and "reference-wrk" not in skip:
                    pair("wrk beside reference open", "reference open (200/s)",
                         *reference_beside_wrk(reference, url, args.seconds, args.capture))
                if reference:
                    pair("reference (early) beside open", "perftui open beside reference",
                         *perftui_beside_reference(reference, url, args.seconds, ["--rate", "200"], args.capture))
            else:
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
        build.cleanup()

    def peer(name: str) -> str:
        """The row a row is compared with: the client beside it (itself for that client)."""
        return against.get(name, name) if args.together else "wrk (4 conns)"

    print()
    print(f"{'client':<28} {'p50':>7} {'p99':>7} {'p99.9':>7} {'Δp99 vs wrk':>12} {'Δp99.9':>8} {'stalls/run':>10}"
          f" | pooled {'p99':>7} {'p99.9':>7} {'Δp99':>7} {'Δp99.9':>7}"
          f" | 95 % interval (runs resampled) {'Δp99':>13} {'Δp99.9':>13}")
    table = {}
    for name, rs in runs.items():
        med = {q: statistics.median(r[q] for r in rs) for q in ("p50", "p99", "p999")}
        base = {q: statistics.median(r[q] for r in runs[peer(name)]) for q in ("p50", "p99", "p999")}
        pool = {q: pooled(rs, q) for q in (99, 99.9)}
        pbase = {q: pooled(runs[peer(name)], q) for q in (99, 99.9)}
        stalls = statistics.median(r["stalls"] for r in rs) if "stalls" in rs[0] else None
        table[name] = {"median": med, "pooled": {"p99": pool[99], "p999": pool[99.9]},
                       "runs": [{**{k: v for k, v in r.items() if k not in ("hist", "service", "send_lag", "wire", "turn")},
                                 "slowest": _tops(r)} for r in rs]}  # (count, slowest 7 % in µs): to resample later
        spread = ""
        if peer(name) != name and len(rs) == len(runs[peer(name)]) > 1:
            ci = {q: interval(rs, runs[peer(name)], q) for q in (99, 99.9)}
            table[name]["interval"] = {"p99": ci[99], "p999": ci[99.9]}
            spread = " | " + " " * 30 + "".join(f"{f'{lo:+.2f}…{hi:+.2f}':>14}" for lo, hi in ci.values())
        print(f"{name:<28} {med['p50']:>7.2f} {med['p99']:>7.2f} {med['p999']:>7.2f} "
              f"{med['p99'] - base['p99']:>+12.2f} {med['p999'] - base['p999']:>+8.2f} "
              f"{'' if stalls is None else f'{stalls:.0f}':>10}"
              f" | pooled {pool[99]:>7.2f} {pool[99.9]:>7.2f} {pool[99] - pbase[99]:>+7.2f} {pool[99.9] - pbase[99.9]:>+7.2f}"
              + spread)
        if "service" in rs[0]:
            svc = {q: pooled(rs, q, "service") for q in (99, 99.9)}
            table[name]["pooled_service"] = {"p99": svc[99], "p999": svc[99.9]}
            print(f"{'  its service time (from the send)':<28} {'':>7} {'':>7} {'':>7} {'':>12} {'':>8} {'':>10}"
                  f" | pooled {svc[99]:>7.2f} {svc[99.9]:>7.2f} {svc[99] - pbase[99]:>+7.2f} {svc[99.9] - pbase[99.9]:>+7.2f}")
        if "send_lag" in rs[0]:
            lag = {q: pooled(rs, q, "send_lag") for q in (50, 99, 99.9)}
            table[name]["pooled_send_lag"] = {"p50": lag[50], "p99": lag[99], "p999": lag[99.9]}
            print(f"  its sends after their due time (the machine's wake-up): p50 {lag[50]:.3f}  p99 {lag[99]:.3f}"
                  f"  p99.9 {lag[99.9]:.3f} ms")
    if args.capture:
        print()
        print("what the kernel saw (pooled): wire = request to response on the connection (the server's share);"
              " turnaround = response to the next request (a closed-loop client's own time)")
        print(f"{'client':<28} {'wire p50':>9} {'p99':>7} {'p99.9':>7} | {'turn p50':>9} {'p99':>7} {'p99.9':>7}"
              f" | {'measured − wire p99':>19} {'p99.9':>7}")
        for name, rs in runs.items():
            wire = {q: pooled(rs, q, "wire") for q in (50, 99, 99.9)}
            closed = "open" not in name
            turn = {q: pooled(rs, q, "turn") for q in (50, 99, 99.9)} if closed else None
            pool = table[name]["pooled"]
            table[name]["wire"] = {"p50": wire[50], "p99": wire[99], "p999": wire[99.9]}
            if turn:
                table[name]["turnaround"] = {"p50": turn[50], "p99": turn[99], "p999": turn[99.9]}
            turn_text = (f"{turn[50]:>9.3f} {turn[99]:>7.3f} {turn[99.9]:>7.3f}" if turn else f"{'':>9} {'':>7} {'':>7}")
            print(f"{name:<28} {wire[50]:>9.2f} {wire[99]:>7.2f} {wire[99.9]:>7.2f} | {turn_text}"
                  f" | {pool['p99'] - wire[99]:>+19.2f} {pool['p999'] - wire[99.9]:>+7.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
