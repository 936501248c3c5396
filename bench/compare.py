"""perftui vs wrk vs Locust on one rig, in one sitting.

nginx (one worker) is pinned to core 0, each generator in turn to core 1; 64 keep-alive
connections; GET of a 2-byte body; the median of ``--runs`` runs of ``--seconds`` each. perftui
runs ``perftui quick URL --vus 64 --workers 1 --headless`` (closed model, full statistics: two
HDR histograms per request, status and error counters) and its coordinator shares core 1 with
its worker. CPU time per request comes from the kernel's accounting of the whole process tree
(``RUSAGE_CHILDREN``). The machine is shared and noisy: read the ratios, not the absolutes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.nginx_peer import NginxPeer  # noqa: E402

CORE = "1"
STEADY: list[float] = []
"""perftui's worker alone in steady state: median CPU % over median req/s of the timeline's
seconds (no interpreter start-up, no coordinator), one figure per run."""


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str], **kw) -> tuple[subprocess.CompletedProcess, float]:
    before = _cpu_children()
    proc = subprocess.run(["taskset", "-c", CORE, *cmd], capture_output=True, text=True, **kw)
    return proc, _cpu_children() - before


def run_wrk(url: str, seconds: int) -> tuple[float, float]:
    proc, cpu = timed(["wrk", "-t1", "-c64", f"-d{seconds}s", url])
    m = re.search(r"Requests/sec:\s+([\d.]+)", proc.stdout)
    total = re.search(r"(\d+) requests in", proc.stdout)
    if not m:
        raise RuntimeError(f"wrk failed: {proc.stdout}{proc.stderr}")
    return float(m.group(1)), cpu / int(total.group(1)) * 1e6


SPLIT: list[dict] = []
"""perftui's CPU seconds per process (coordinator, worker), sampled with psutil until just before
each exits, and the run's wall time: where the whole-tree figure goes."""


def _tree_sampler(pid: int, last: dict[int, tuple[str, float]], stop) -> None:
    import psutil

    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return
    while not stop.is_set():
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        for p in procs:
            try:
                t = p.cpu_times()
                last[p.pid] = ("coordinator" if p.pid == pid else "worker", t.user + t.system)
            except psutil.Error:
                pass
        stop.wait(0.05)


def run_perftui(url: str, seconds: int) -> tuple[float, float]:
    import threading

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "s.json"
        env = dict(os.environ, CI="true")
        # An installed perftui has its bytecode compiled (pip does it); with PYTHONDONTWRITEBYTECODE
        # set, as on the development machine, each of its processes compiled its ~35 modules anew
        # at every start (0.15 s of CPU in the coordinator alone).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "perftui-bench-pycache")
        before = _cpu_children()
        t0 = time.monotonic()
        # taskset execs perftui, so the pid is the coordinator's
        popen = subprocess.Popen(["taskset", "-c", CORE, sys.executable, "-m", "perftui", "quick", url, "--vus", "64",
                                  "--duration", f"{seconds}s", "--workers", "1", "--headless", "--out", str(out)],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        last: dict[int, tuple[str, float]] = {}
        stop = threading.Event()
        sampler = threading.Thread(target=_tree_sampler, args=(popen.pid, last, stop), daemon=True)
        sampler.start()
        stdout, stderr = popen.communicate()
        wall = time.monotonic() - t0
        stop.set()
        sampler.join()
        cpu = _cpu_children() - before
        if popen.returncode != 0:
            raise RuntimeError(f"perftui failed: {stdout}{stderr}")
        doc = json.loads(out.read_text())
        split = {"wall_s": wall, "tree_cpu_s": cpu, "coordinator_cpu_s": 0.0, "worker_cpu_s": 0.0}
        for role, c in last.values():
            split[f"{role}_cpu_s"] += c
        split["requests"] = doc["summary"]["requests"]
        SPLIT.append(split)
    s = doc["summary"]
    rows = doc["timeline"][1:-1] or doc["timeline"]
    rps = sorted(r["rps"] for r in rows)[len(rows) // 2]
    worker = sorted(r["cpu_percent"] for r in rows)[len(rows) // 2]
    STEADY.append(worker / 100 / rps * 1e6 if rps else 0.0)
    return s["rps"], cpu / max(1, s["requests"]) * 1e6


def run_locust(locust: str, host: str, seconds: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as d:
        prefix = Path(d) / "r"
        proc, cpu = timed([locust, "-f", str(ROOT / "bench" / "locustfile.py"), "--headless", "-u", "64", "-r", "64",
                           "-t", f"{seconds}s", "--host", host, "--csv", str(prefix), "--only-summary"])
        csv = Path(d) / "r_stats.csv"
        if not csv.exists():
            raise RuntimeError(f"locust failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        stats = csv.read_text().splitlines()
    header = stats[0].split(",")
    agg = next(line.split(",") for line in stats if ",Aggregated," in line)
    rps = float(agg[header.index("Requests/s")])
    count = int(agg[header.index("Request Count")])
    return rps, cpu / max(1, count) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--locust", default="locust", help="locust executable ('' to skip)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"wrk": [], "perftui": [], "locust": []}
    with NginxPeer(cpu=0) as nginx:
        url = nginx.url("/small.txt")
        for i in range(args.runs):
            # interleave the tools so a noisy minute hurts all of them alike
            results["wrk"].append(run_wrk(url, args.seconds))
            results["perftui"].append(run_perftui(url, args.seconds))
            if args.locust:
                results["locust"].append(run_locust(args.locust, nginx.url(""), args.seconds))
            print(f"run {i + 1}/{args.runs}: " + ", ".join(
                f"{k} {v[-1][0]:,.0f}/s" for k, v in results.items() if v), flush=True)
            time.sleep(1)
    wrk_rps = statistics.median(r for r, _ in results["wrk"])
    print()
    print(f"{'generator':<10} {'req/s (median)':>15} {'ratio to wrk':>13} {'CPU µs/request':>15}")
    table = {}
    for name, runs in results.items():
        if not runs:
            continue
        rps = statistics.median(r for r, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        table[name] = {"rps": rps, "ratio": rps / wrk_rps, "cpu_us_per_request": cpu, "runs": runs}
        print(f"{name:<10} {rps:>15,.0f} {rps / wrk_rps:>13.2f} {cpu:>15.1f}")
    if STEADY:
        print(f"perftui worker alone, steady state: {statistics.median(STEADY):.1f} µs/request "
              f"({statistics.median(STEADY) / table['wrk']['cpu_us_per_request']:.2f}x wrk's whole-process figure)")
    if SPLIT:
        co = statistics.median(x["coordinator_cpu_s"] / x["wall_s"] for x in SPLIT)
        co_req = statistics.median(x["coordinator_cpu_s"] / x["requests"] * 1e6 for x in SPLIT)
        wk_req = statistics.median(x["worker_cpu_s"] / x["requests"] * 1e6 for x in SPLIT)
        print(f"perftui split (sampled to within 50 ms of exit): coordinator {co * 100:.1f} % of a core over the run "
              f"= {co_req:.1f} µs/request; worker whole run {wk_req:.1f} µs/request")
        table["perftui_split"] = SPLIT
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
