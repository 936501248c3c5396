"""Two source trees (or more) against nginx, interleaved: the worker's cost per request before and
after a change, in the same minutes.

``python bench/ab.py TREE[,TREE...] "CONFIG;CONFIG..." [REPS]`` where a tree is a checkout (for
example ``git worktree add /tmp/before HEAD~1``) and a config is ``closed:VUS``,
``closed:VUS:THINK`` (each request followed by ``THINK``, e.g. ``5ms``: a closed model paced to a
rate, to compare with the open model at the same rate), ``open:RATE`` or
``open:RATE:MAX_CONNECTIONS``. nginx (one worker) on core 0, one perftui worker
on core 1, ``SECS`` seconds a run (default 8); prints each run and the medians: achieved req/s,
worker CPU, worker µs per request, most connections (timeline medians, first and last second
left out).
"""
import json, os, statistics, subprocess, sys, tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.nginx_peer import NginxPeer


def body(url: str, cfg: str, secs: str) -> str:
    kind, *a = cfg.split(":")
    think = ""
    if kind == "closed":
        load = f"vus = {a[0]}"
        limit = ""
        think = f', think = "{a[1]}"' if len(a) > 1 else ""
    else:
        load = f"arrival_rate = {a[0]}"
        limit = f"[defaults]\nmax_connections = {a[1]}\n" if len(a) > 1 and a[1] else ""
    return (f'target = "{url}"\n{limit}[[phases]]\nduration = "{secs}s"\n{load}\n[[scenarios]]\n'
            f'steps = [{{ url = "/small.txt"{think} }}]\n')


def main() -> None:
    trees = sys.argv[1].split(",")
    configs = sys.argv[2].split(";")
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    secs = os.environ.get("SECS", "8")
    res: dict = {}
    with NginxPeer(cpu=0) as n:
        url = n.url("")
        for _ in range(reps):
            for cfg in configs:
                for tree in trees:
                    with tempfile.TemporaryDirectory() as d:
                        p = Path(d) / "p.toml"
                        p.write_text(body(url, cfg, secs))
                        out = Path(d) / "s.json"
                        env = dict(os.environ, CI="true", PYTHONPATH=tree)
                        subprocess.run(["taskset", "-c", "1", sys.executable, "-m", "perftui", "run", str(p), "--headless",
                                        "--workers", "1", "--out", str(out)], capture_output=True, env=env, cwd=tree)
                        rows = json.loads(out.read_text())["timeline"][1:-1]
                    rps = statistics.median(r["rps"] for r in rows)
                    cpu = statistics.median(r["cpu_percent"] for r in rows)
                    conns = max(r["open_connections"] for r in rows)
                    res.setdefault((cfg, tree), []).append((rps, cpu))
                    print(f"{cfg:22} {tree:20} rps {rps:9.0f} cpu {cpu:5.1f} us/req {cpu * 1e4 / max(rps, 1):6.1f} conns {conns}", flush=True)
    print("--- medians")
    for (cfg, tree), v in res.items():
        print(f"{cfg:22} {tree:20} rps {statistics.median(x[0] for x in v):9.0f} "
              f"us/req {statistics.median(x[1] * 1e4 / max(x[0], 1) for x in v):6.1f}")


if __name__ == "__main__":
    main()
