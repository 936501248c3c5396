"""RSS of the dashboard process during a 2,000/s run in tmux at 160x48.

nginx on core 0; ``perftui quick URL --rate 2000 --duration 200s --workers 1`` in a detached tmux
session (started with the ``s`` key); RSS sampled at 28, 68, 128 and 188 s.
``python bench/dashboard_memory.py`` (needs tmux).
"""
import os, subprocess, sys, time, psutil
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
from tests.nginx_peer import NginxPeer
with NginxPeer(cpu=0) as n:
    url = n.url("/small.txt")
    env = dict(os.environ); env.pop("CI", None)
    subprocess.run(["tmux", "new-session", "-d", "-s", "i10mem", "-x", "160", "-y", "48",
                    f"cd /tmp && python -m perftui quick {url} --rate 2000 --duration 200s --workers 1 --out /tmp/perftui-dashboard-memory.json; sleep 5"], env=env)
    time.sleep(6)
    subprocess.run(["tmux", "send-keys", "-t", "i10mem", "s"])
    time.sleep(2)
    # the dashboard: the perftui process whose parent is the tmux shell
    procs = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] and "perftui" in " ".join(p.info["cmdline"]) and "quick" in p.info["cmdline"]]
    dash = procs[0]
    t0 = time.time()
    for mark in (20, 60, 120, 180):
        while time.time() - t0 < mark: time.sleep(1)
        print(f"{mark + 8:>4}s dashboard RSS {dash.memory_info().rss / 2**20:.1f} MB", flush=True)
    subprocess.run(["tmux", "kill-session", "-t", "i10mem"])
