"""Memory of every perftui process from minute 1 to minute 10 of a 2,000/s run.

nginx (one worker) on core 0. Two runs side by side, each ``quick URL --rate 2000 --workers 1``
for ``--seconds`` (default 630):

- ``dashboard``: the dashboard in tmux at 160x48 (``tmux new -d -s m10 -x 160 -y 48 ...``,
  started with the ``s`` key); its coordinator runs in the dashboard's process, plus one worker;
- ``detached``: ``--detach`` (a headless coordinator serving its control socket, plus one worker)
  with ``perftui attach`` in a second tmux session at 160x48: the soak-over-SSH case.

RSS of each process (the dashboard, the attached dashboard, the detached coordinator, the two
workers) is sampled every ``--every`` seconds from the run's start; the table gives minute 1,
minute 10 and the growth between. ``python bench/memory_soak.py`` (needs tmux; ~11 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.nginx_peer import NginxPeer  # noqa: E402


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def perftui_procs(pid: int) -> list[psutil.Process]:
    out = []
    for p in tree(pid):
        try:
            cmd = " ".join(p.cmdline())
        except psutil.Error:
            continue
        if "python" in cmd and "perftui" in cmd or "perftui.worker" in cmd or "multiprocessing" in cmd:
            out.append(p)
    return out


def pane_pid(session: str) -> int:
    return int(subprocess.run(["tmux", "display", "-p", "-t", session, "#{pane_pid}"], capture_output=True,
                              text=True, check=True).stdout.strip())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=630)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--every", type=int, default=30)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    env = dict(os.environ)
    env.pop("CI", None)
    sessions = tempfile.mkdtemp(prefix="perftui-soak-")
    env["PERFTUI_SESSIONS_DIR"] = sessions
    py = sys.executable
    # a running tmux server keeps its own environment: the panes get theirs on the command line
    pane_env = " ".join(f"{k}={v}" for k, v in (("PERFTUI_SESSIONS_DIR", sessions),
                                                   ("PYTHONPATH", env.get("PYTHONPATH", ""))) if v)
    samples: dict[str, list[tuple[float, float]]] = {}
    with NginxPeer(cpu=0) as nginx:
        url = nginx.url("/small.txt")
        run = f"--rate {args.rate} --duration {args.seconds}s --workers 1"
        subprocess.run(["tmux", "new-session", "-d", "-s", "m10", "-x", "160", "-y", "48",
                        f"cd /tmp && exec env {pane_env} {py} -m perftui quick {url} {run} --out {sessions}/dash.json"], env=env,
                       check=True)
        time.sleep(6)
        subprocess.run(["tmux", "send-keys", "-t", "m10", "s"], check=True)
        t_dash = time.monotonic()
        det = subprocess.run([py, "-m", "perftui", "quick", url, *run.split(), "--detach"], env=env, cwd="/tmp",
                             capture_output=True, text=True)
        t_det = time.monotonic()
        m = re.search(r"session (\S+) running in the background \(pid (\d+)\)", det.stdout)
        if not m:
            raise RuntimeError(f"--detach failed: {det.stdout}{det.stderr}")
        sid, coord = m.group(1), int(m.group(2))
        subprocess.run(["tmux", "new-session", "-d", "-s", "m10b", "-x", "160", "-y", "48",
                        f"cd /tmp && exec env {pane_env} {py} -m perftui attach {sid}"], env=env, check=True)
        time.sleep(3)
        dash_pid, attach_pid = pane_pid("m10"), pane_pid("m10b")
        roles: dict[int, tuple[str, float]] = {}
        for p in perftui_procs(dash_pid):
            roles[p.pid] = ("dashboard (with its coordinator)" if p.pid == dash_pid else "worker of the dashboard run",
                            t_dash)
        for p in perftui_procs(coord):
            roles[p.pid] = ("detached coordinator" if p.pid == coord else "worker of the detached run", t_det)
        roles[attach_pid] = ("attached dashboard (perftui attach)", t_det)
        print("processes:", json.dumps({str(k): v[0] for k, v in roles.items()}), flush=True)
        end = t_dash + args.seconds - 5
        next_at = t_dash + args.every
        while time.monotonic() < end:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += args.every
            line = []
            for pid, (role, t0) in roles.items():
                try:
                    rss = psutil.Process(pid).memory_info().rss / 2**20
                except psutil.Error:
                    continue
                samples.setdefault(role, []).append((time.monotonic() - t0, rss))
                line.append(f"{role.split(' ')[0]}:{rss:.1f}")
            print(f"{time.monotonic() - t_dash:6.0f}s " + "  ".join(line), flush=True)
        for s in ("m10", "m10b"):
            subprocess.run(["tmux", "kill-session", "-t", s], capture_output=True)
        try:
            psutil.Process(coord).wait(30)
        except psutil.Error:
            pass
    print()
    print(f"{'process':<40} {'minute 1 MB':>12} {'minute 10 MB':>13} {'growth MB':>10} {'max MB':>8}")
    table = {}
    for role, rows in samples.items():
        at = lambda t: min(rows, key=lambda r: abs(r[0] - t))  # noqa: E731
        m1, m10 = at(60), at(600)
        table[role] = {"minute1": m1, "minute10": m10, "growth": m10[1] - m1[1], "max": max(r[1] for r in rows),
                       "samples": rows}
        print(f"{role:<40} {m1[1]:>12.1f} {m10[1]:>13.1f} {m10[1] - m1[1]:>+10.1f} {table[role]['max']:>8.1f}"
              f"   (at {m1[0]:.0f} s and {m10[0]:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
