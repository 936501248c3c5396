"""Open model asked for twice the core's closed-model capacity, at several connection bounds.

nginx on core 0, perftui (one worker) on core 1: first 64 VUs closed for 8 s (the capacity C),
then the open model at 2 x C with ``defaults.max_connections`` = 64, 256, 1024 and unset (the
default: an adaptive bound of at most 1,024). Prints achieved req/s, worker CPU (timeline
medians), the most connections seen in the steady seconds and the ratio to C.
``python bench/overload.py``.
"""
import json, os, subprocess, sys, tempfile, statistics
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.nginx_peer import NginxPeer
def run(url, body):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "p.toml"; p.write_text(body.format(url=url)); out = Path(d) / "s.json"
        subprocess.run(["taskset","-c","1",sys.executable,"-m","perftui","run",str(p),"--headless","--workers","1","--out",str(out)],capture_output=True,env=dict(os.environ,CI="true"))
        doc = json.loads(out.read_text())
    rows = doc["timeline"][1:-1]
    return (statistics.median(r["rps"] for r in rows), statistics.median(r["cpu_percent"] for r in rows),
            max(r["open_connections"] for r in rows[2:] or rows))
with NginxPeer(cpu=0) as n:
    url = n.url("")
    closed = run(url, 'target = "{url}"\n[[phases]]\nduration = "8s"\nvus = 64\n[[scenarios]]\nsteps = [{{ url = "/small.txt" }}]\n')
    print("closed", closed, flush=True)
    for conns in (64, 256, 1024, None):
        limit = f"[defaults]\nmax_connections = {conns}\n" if conns else ""
        r = run(url, f'target = "{{url}}"\n{limit}[[phases]]\nduration = "8s"\narrival_rate = {round(2*closed[0], -2)}\n[[scenarios]]\nsteps = [{{{{ url = "/small.txt" }}}}]\n')
        print("open 2x", conns or "default", r, "ratio", round(r[0] / closed[0], 2), flush=True)
