"""perftui's HTTP/2 engine vs h2load, on one rig, in one sitting.

nginx (one worker) is pinned to core 0 and each generator in turn to core 1 (perftui's
coordinator shares core 1 with its one worker). GET of a 2-byte file, 64 connections, the
median of ``--runs`` runs of ``--seconds`` each, the tools interleaved so a noisy minute hurts
both alike. Two parts:

1. One stream per virtual user, 64 connections (``h2load -c 64 -m 1``; perftui closed model with
   64 VUs and ``h2_streams = 1``): cleartext h2c and HTTP/2 over TLS (ALPN). nginx gets a
   certificate made at bench time with ``trustme``.
2. Streams per connection 1 / 10 / 100 over h2c (``h2load -c 64 -m M``; perftui with 64*M VUs
   and ``h2_streams = M``, so it opens 64 connections too).

CPU per request is each tool's process tree's user + system time (kernel accounting) divided by
the requests it completed; for perftui that includes starting Python and the coordinator, so
short runs overstate it. On a busy machine it moves less than req/s does.

Needs ``h2load`` (Debian ``nghttp2-client``) and nginx; installs them when missing and run as
root. Usage: ``flock /tmp/perftui-bench.lock python bench/h2_bench.py [--runs 3] [--seconds 5]
[--baseline DIR]`` (``--baseline`` also runs another perftui checkout, e.g. the previous
commit's ``git worktree``, interleaved, for before/after ratios from one sitting).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
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
PATH = "/small.txt"


def ensure_tools() -> None:
    missing = []
    if not shutil.which("h2load"):
        missing.append("nghttp2-client")
    if not (shutil.which("nginx") or os.access("/usr/sbin/nginx", os.X_OK)):
        missing.append("nginx")
    if missing:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def make_cert(directory: Path) -> tuple[str, str]:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    c, k = directory / "cert.pem", directory / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(c))
    cert.private_key_pem.write_to_path(str(k))
    return str(c), str(k)


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_h2load(url: str, seconds: int, streams: int) -> tuple[float, float]:
    cpu = _cpu_children()
    proc = subprocess.run(["taskset", "-c", CORE, "h2load", "-c", "64", "-m", str(streams), "-t", "1",
                           "-D", str(seconds), url], capture_output=True, text=True)
    cpu = _cpu_children() - cpu
    m = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", proc.stdout)
    ok = re.search(r"(\d+) succeeded", proc.stdout)
    if not m or not ok or int(ok.group(1)) == 0:
        raise RuntimeError(f"h2load failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return float(m.group(1)), cpu / int(ok.group(1)) * 1e6


def run_perftui(url: str, seconds: int, streams: int, tree: str | None = None) -> tuple[float, float, str, float]:
    with tempfile.TemporaryDirectory() as d:
        plan = Path(d) / "h2.toml"
        plan.write_text(f"""
target = "{url}"
[defaults]
http2 = true
h2_streams = {streams}
tls_verify = false
[[phases]]
duration = "{seconds}s"
vus = {64 * streams}
[[scenarios]]
steps = [{{ url = "{PATH}" }}]
""")
        out = Path(d) / "s.json"
        env = dict(os.environ, CI="true")
        if tree:  # another checkout of perftui (--baseline)
            env["PYTHONPATH"] = tree
        cpu = _cpu_children()
        proc = subprocess.run(["taskset", "-c", CORE, sys.executable, "-m", "perftui", "run", str(plan),
                               "--workers", "1", "--headless", "--out", str(out)],
                              capture_output=True, text=True, env=env,
                              # ``-m`` puts the working directory first on sys.path: run in the
                              # checkout measured, or a baseline would import this one
                              cwd=tree or ROOT)
        cpu = _cpu_children() - cpu
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"perftui failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        doc = json.loads(out.read_text())
    s = doc["summary"]
    if s["errors"]:
        raise RuntimeError(f"perftui saw errors: {s['error_kinds']}")
    ep = doc["endpoints"][0]
    return s["rps"], s["latency_ms"]["p99"], ep.get("protocol", ""), cpu / max(1, s["requests"]) * 1e6


def compare(nginx: NginxPeer, runs: int, seconds: int, streams: int, label: str, baseline: str | None = None) -> dict:
    url = nginx.url(PATH)
    h2l, ours, p99s, cpus, h2l_cpus, base, base_cpus = [], [], [], [], [], [], []
    proto = ""
    for i in range(runs):
        rps, cpu = run_h2load(url, seconds, streams)
        h2l.append(rps)
        h2l_cpus.append(cpu)
        rps, p99, proto, cpu = run_perftui(nginx.url(""), seconds, streams)
        ours.append(rps)
        cpus.append(cpu)
        p99s.append(p99)
        print(f"  {label} run {i + 1}/{runs}: h2load {h2l[-1]:,.0f}/s ({h2l_cpus[-1]:.0f} µs CPU/request), "
              f"perftui {ours[-1]:,.0f}/s ({proto}, {cpu:.0f} µs CPU/request)", flush=True)
        if baseline:
            rps, _, _, cpu = run_perftui(nginx.url(""), seconds, streams, baseline)
            base.append(rps)
            base_cpus.append(cpu)
            print(f"  {label} run {i + 1}/{runs}: baseline perftui {rps:,.0f}/s ({cpu:.0f} µs CPU/request)", flush=True)
        time.sleep(1)
    a, b = statistics.median(h2l), statistics.median(ours)
    return {"label": label, "streams": streams, "h2load": a, "perftui": b, "ratio": b / a,
            "perftui_p99_ms": statistics.median(p99s), "perftui_cpu_us": statistics.median(cpus),
            "h2load_cpu_us": statistics.median(h2l_cpus), "protocol": proto, "h2load_runs": h2l, "perftui_runs": ours,
            "baseline": statistics.median(base) if base else None, "baseline_runs": base,
            "baseline_cpu_us": statistics.median(base_cpus) if base_cpus else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--baseline", metavar="DIR",
                    help="also run the perftui checkout in DIR (interleaved): before/after in one sitting")
    ap.add_argument("--no-scaling", action="store_true", help="skip the streams-per-connection part")
    args = ap.parse_args()
    ensure_tools()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tls = make_cert(Path(d))
        with NginxPeer(http2=True, cpu=0) as nginx:
            print("h2c, one stream per VU", flush=True)
            rows.append(compare(nginx, args.runs, args.seconds, 1, "h2c, 64 conns x 1 stream", args.baseline))
        with NginxPeer(http2=True, cpu=0, tls=tls) as nginx:
            print("h2 over TLS, one stream per VU", flush=True)
            rows.append(compare(nginx, args.runs, args.seconds, 1, "h2 (TLS), 64 conns x 1 stream", args.baseline))
        if not args.no_scaling:
            with NginxPeer(http2=True, cpu=0) as nginx:
                for m in (10, 100):
                    print(f"h2c, {m} streams per connection", flush=True)
                    rows.append(compare(nginx, args.runs, args.seconds, m, f"h2c, 64 conns x {m} streams", args.baseline))
    print()
    print(f"{'case':<32} {'h2load req/s':>13} {'perftui req/s':>14} {'ratio':>6} {'perftui p99':>12} "
          f"{'CPU µs/req h2load':>18} {'perftui':>8}")
    for r in rows:
        print(f"{r['label']:<32} {r['h2load']:>13,.0f} {r['perftui']:>14,.0f} {r['ratio']:>6.2f} "
              f"{r['perftui_p99_ms']:>10.1f}ms {r['h2load_cpu_us']:>18.1f} {r['perftui_cpu_us']:>8.0f}")
        if r["baseline"]:
            print(f"{'  baseline':<32} {'':>13} {r['baseline']:>14,.0f} {r['baseline'] / r['h2load']:>6.2f} "
                  f"{'':>12} {'':>18} {r['baseline_cpu_us']:>8.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
