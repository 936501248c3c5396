"""The tail over many sittings: every run of ``bench/tail.py --together`` against the run beside it.

One sitting of ``tail.py`` (5–8 runs of 60 s) cannot tell 0.4 ms apart at p99.9 on this machine:
its pooled Δ's 95 % interval is ±0.5–0.8 ms wide when no run is wild, and one wild run (a wrk
p99.9 of 62 ms) moves it by more. The runs of many sittings can. With ``--together`` every
perftui run had a peer *beside* it (same core, same seconds), so each run is one paired
observation: Δ = the run's percentile − its peer's. This script reads the sittings' ``--json``
files and gives, per pair of clients and percentile, the median of those paired Δs (ms and % of
the peer's figure) with a 95 % interval (the pairs resampled with replacement), how many pairs
met the goal on their own, and the median of each sitting; the wrk − wrk control is the noise of
the comparison itself.

The goal (issue #10): within 2 % of wrk's figure or 0.3 ms, whichever is larger.

``python bench/tail_sittings.py bench/tail-sittings/*.json [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

# (row, the row of the client beside it) as tail.py --together names them
PAIRS = (
    ("perftui closed (4 VUs)", "wrk beside closed (4 VUs)", "perftui closed − wrk beside"),
    ("perftui open (200/s)", "wrk beside open (200/s)", "perftui open − wrk beside"),
    ("reference open (200/s)", "wrk beside reference open", "reference open − wrk beside"),
    ("perftui open beside reference", "reference (early) beside open", "perftui open − reference beside"),
    ("wrk (control)", "wrk beside wrk", "wrk − wrk (control)"),
)
GOAL_PCT, GOAL_MS = 2.0, 0.3


def paired(docs: dict[str, dict], ours: str, theirs: str, q: str) -> tuple[list[tuple[float, float]], dict[str, float]]:
    """Every (Δ ms, peer's figure) of the sittings that ran the pair, and each sitting's median Δ."""
    pairs, per_sitting = [], {}
    for name, doc in docs.items():
        if ours not in doc or theirs not in doc:
            continue
        a, b = doc[ours]["runs"], doc[theirs]["runs"]
        if len(a) != len(b):
            raise SystemExit(f"{name}: {ours!r} has {len(a)} runs, {theirs!r} {len(b)}: not pairs")
        here = [(x[q] - y[q], y[q]) for x, y in zip(a, b)]
        pairs += here
        per_sitting[name] = statistics.median(d for d, _ in here)
    return pairs, per_sitting


def median_interval(values: list[float], draws: int = 4000, seed: int = 1) -> tuple[float, float]:
    """95 % interval of the median, the values resampled with replacement."""
    rnd = random.Random(seed)
    meds = sorted(statistics.median(rnd.choices(values, k=len(values))) for _ in range(draws))
    return meds[int(0.025 * draws)], meds[int(0.975 * draws) - 1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path, help="tail.py --together --json files (one per sitting)")
    ap.add_argument("--json", metavar="FILE", type=Path)
    args = ap.parse_args()
    docs = {}
    for path in args.files:
        try:
            docs[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            return 2
    print(f"{len(docs)} sittings: {', '.join(docs)}")
    print(f"goal: within {GOAL_PCT:g} % of the peer's figure or {GOAL_MS} ms, whichever is larger\n")
    print(f"{'pair (Δ = first − second)':<34} {'':>5} {'pairs':>5} {'median Δ':>9} {'95 % interval':>15} "
          f"{'% of peer':>9} {'95 % interval':>13} {'pairs within goal':>17}  sittings' medians (ms)")
    out = {}
    for ours, theirs, label in PAIRS:
        for q, shown in (("p99", "p99"), ("p999", "p99.9")):
            pairs, per_sitting = paired(docs, ours, theirs, q)
            if not pairs:
                continue
            deltas = [d for d, _ in pairs]
            med = statistics.median(deltas)
            lo, hi = median_interval(deltas)
            shares = [d / peer * 100.0 for d, peer in pairs]
            pct = statistics.median(shares)
            plo, phi = median_interval(shares)
            within = sum(abs(d) <= max(GOAL_PCT / 100.0 * peer, GOAL_MS) for d, peer in pairs)
            out.setdefault(label, {})[shown] = {
                "pairs": len(pairs), "median_ms": round(med, 3), "interval_ms": [round(lo, 3), round(hi, 3)],
                "median_pct": round(pct, 2), "interval_pct": [round(plo, 2), round(phi, 2)], "within_goal": within,
                "sittings": {k: round(v, 3) for k, v in per_sitting.items()}}
            print(f"{label:<34} {shown:>5} {len(pairs):>5} {med:>+9.2f} {f'{lo:+.2f}…{hi:+.2f}':>15} "
                  f"{pct:>+8.1f}% {f'{plo:+.1f}…{phi:+.1f}%':>13} {f'{within}/{len(pairs)}':>17}  "
                  + " ".join(f"{v:+.2f}" for v in per_sitting.values()))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
