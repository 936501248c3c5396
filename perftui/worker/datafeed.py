"""Which data-file row a virtual user gets (``[variables.NAME] file = ...``, see
``perftui.plan.data``). Each worker process reads each data file once; its virtual users share
the rows.

``order = "sequential"`` has to hold across worker processes without talking to them: worker *w*
of *W* hands out rows *w*, *w + W*, *w + 2W*, ... in turn (much as k6's execution segments give
each instance its own share of ``exec.scenario.iterationInTest``, the number scripts index a
``SharedArray`` with), so no two virtual users get the same row, on any worker,
until a worker has handed out all of its rows; then it starts its share over. With more workers
than rows, a worker without a share of its own walks the whole file from its offset.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from perftui.plan.data import DataFile, DataSet, read_data


class DataFeed:
    """Rows of one data file for one worker, in the order the plan asks for."""

    __slots__ = ("data", "random", "rng", "count", "first", "step", "share", "n")

    def __init__(self, data: DataSet, spec: DataFile, worker_index: int, worker_count: int, rng: random.Random):
        self.data = data
        self.n = len(data)
        self.random = spec.order == "random"
        self.rng = rng
        self.count = 0
        w, workers = worker_index, max(1, worker_count)
        self.first = w % self.n
        self.step = workers
        self.share = (self.n - w + workers - 1) // workers if w < self.n else 0
        """How many rows are this worker's own (0: fewer rows than workers)."""

    def index(self) -> int:
        if self.random:
            return int(self.rng.random() * self.n)  # randrange: ~1 us a call, this ~0.1 us
        c = self.count
        self.count = c + 1
        if self.share:
            return self.first + self.step * (c % self.share)
        return (self.first + c * self.step) % self.n

    def next(self) -> Any:
        return self.data.row(self.index())


def data_feeds(variables: dict[str, Any], worker_index: int, worker_count: int, rng: random.Random
               ) -> tuple[list[tuple[str, DataFeed]], list[tuple[str, DataFeed]]]:
    """The feeds of a plan's data-file variables: (picked per virtual user, picked per iteration).
    A file named by several variables is read once."""
    read: dict[tuple, DataSet] = {}
    per_vu: list[tuple[str, DataFeed]] = []
    per_iteration: list[tuple[str, DataFeed]] = []
    for name, spec in variables.items():
        if not isinstance(spec, DataFile):
            continue
        key = (spec.file, spec.format, spec.delimiter, tuple(spec.columns))
        data = read.get(key)
        if data is None:
            data = read[key] = read_data(spec, Path(spec.file))
        feed = DataFeed(data, spec, worker_index, worker_count, rng)
        (per_iteration if spec.pick == "iteration" else per_vu).append((name, feed))
    return per_vu, per_iteration
