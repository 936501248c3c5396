"""Open model asked for twice the core's closed-model capacity, at several connection bounds.

nginx on core 0, perftui (one worker) on core 1. Each repetition runs 64 VUs closed for 8 s (the
capacity C of that minute), then the open model at 2 x C with ``defaults.max_connections`` = 64
and unset (the default: an adaptive bound of at most 1,024); the first repetition also runs 256
and 1,024. The closed capacity itself moves 10-25 % between minutes on this machine, so every
open run is compared with the closed run just before it, and the medians of those ratios are the
result. Prints achieved req/s, worker CPU (timeline medians), the most connections seen in the
steady seconds and the ratio to C.

``python bench/overload.py [--reps 3]``.
"""
import argparse, json, os, subprocess, sys, tempfile, statistics
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.nginx_peer import NginxPeer

STEP = '[[scenarios]]\nsteps = [{{ url = "/small.txt" }}]\n'


def run(url: str, body: str) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "p.toml"; p.write_text(f'target = "{url}"\n' + body + STEP.format()); out = Path(d) / "s.json"
        subprocess.run(["taskset", "-c", "1", sys.executable, "-m", "perftui", "run", str(p), "--headless",
                        "--workers", "1", "--out", str(out)], capture_output=True, env=dict(os.environ, CI="true"))
        doc = json.loads(out.read_text())
    rows = doc["timeline"][1:-1]
    return (statistics.median(r["rps"] for r in rows), statistics.median(r["cpu_percent"] for r in rows),
            max(r["open_connections"] for r in rows[2:] or rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    ratios: dict[str, list[float]] = {}
    with NginxPeer(cpu=0) as n:
        url = n.url("")
        for rep in range(args.reps):
            closed = run(url, '[[phases]]\nduration = "8s"\nvus = 64\n')
            print(f"rep {rep + 1}  closed 64 VUs       {closed[0]:>9,.0f}/s  cpu {closed[1]:5.1f} %  conns {closed[2]}", flush=True)
            for conns in ((64, None, 256, 1024) if rep == 0 else (64, None)):
                limit = f"[defaults]\nmax_connections = {conns}\n" if conns else ""
                r = run(url, f'{limit}[[phases]]\nduration = "8s"\narrival_rate = {round(2 * closed[0], -2):.0f}\n')
                name = str(conns or "default")
                ratio = r[0] / closed[0]
                ratios.setdefault(name, []).append(ratio)
                print(f"rep {rep + 1}  open 2x, bound {name:<7} {r[0]:>9,.0f}/s  cpu {r[1]:5.1f} %  conns {r[2]:<5} ratio {ratio:.2f}",
                      flush=True)
    print("--- ratio to the closed run before it (median of the repetitions)")
    for name, rs in ratios.items():
        print(f"bound {name:<8} {statistics.median(rs):.2f}   ({' / '.join(f'{x:.2f}' for x in rs)})")


if __name__ == "__main__":
    main()
