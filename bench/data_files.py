"""Data files (``[variables.NAME] file = ...``): what reading one costs a worker, and a pick.

Writes a CSV of ``--rows`` rows (id, email, token) and the same rows as a JSON array of objects,
then measures, in one run, median of ``--runs``:

- ``read_data`` (what every worker does once at start, and the loader once to check the file)
  against the floor of a plain ``list(csv.reader(open(...)))`` over the same file;
- the memory the rows hold (tracemalloc, after the read), against the same rows kept as dicts;
- one pick (``DataFeed.next``: the index, then the row as a dict), sequential and random.

    python bench/data_files.py --rows 100000
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import random
import statistics
import sys
import tempfile
import time
import timeit
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from perftui.plan.data import DataFile, read_data  # noqa: E402
from perftui.worker.datafeed import DataFeed  # noqa: E402


def _median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _held_mb(fn) -> float:
    gc.collect()
    tracemalloc.start()
    kept = fn()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return held / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        csv_path, json_path = Path(d) / "users.csv", Path(d) / "users.json"
        with csv_path.open("w") as f:
            f.write("id,email,token\n")
            for i in range(args.rows):
                f.write(f"{i},user{i}@example.com,{i * 7919:012d}\n")
        json_path.write_text(json.dumps([{"id": i, "email": f"user{i}@example.com", "token": f"{i * 7919:012d}"}
                                         for i in range(args.rows)]))
        spec_csv, spec_json = DataFile(file="users.csv"), DataFile(file="users.json")

        def plain_csv():
            with csv_path.open(newline="") as f:
                return list(csv.reader(f))

        def as_dicts():
            with csv_path.open(newline="") as f:
                return list(csv.DictReader(f))

        print(f"{args.rows:,} rows, CSV {csv_path.stat().st_size / 1e6:.1f} MB, JSON {json_path.stat().st_size / 1e6:.1f} MB,"
              f" median of {args.runs}")
        t_read = _median_time(lambda: read_data(spec_csv, csv_path), args.runs)
        t_floor = _median_time(plain_csv, args.runs)
        t_json = _median_time(lambda: read_data(spec_json, json_path), args.runs)
        print(f"read CSV   {t_read * 1000:7.0f} ms   (list(csv.reader) {t_floor * 1000:.0f} ms: {t_read / t_floor:.2f}x)")
        print(f"read JSON  {t_json * 1000:7.0f} ms")
        held = _held_mb(lambda: read_data(spec_csv, csv_path))
        dicts = _held_mb(as_dicts)
        held_json = _held_mb(lambda: read_data(spec_json, json_path))
        print(f"held CSV   {held:7.1f} MB   (rows as dicts: {dicts:.1f} MB) · JSON {held_json:.1f} MB")
        data = read_data(spec_csv, csv_path)
        n = 500_000
        for order in ("sequential", "random"):
            feed = DataFeed(data, DataFile(file="users.csv", order=order), 1, 3, random.Random(1))
            per = min(timeit.repeat(feed.next, number=n, repeat=3)) / n
            print(f"pick {order:<10} {per * 1e9:5.0f} ns (index and row dict)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
