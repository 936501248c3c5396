"""The live session's compact timeline (``perftui.session.timeline``): rows read back exactly as
they were written, a frozen view does not move under its reader, a row written back keeps its
change, and a closed row costs a fraction of its Python objects."""

from __future__ import annotations

import random
import sys

import pytest

from perftui.monitor.model import HealthPoint, MonitorRow
from perftui.session.endpoint_points import EndpointPoint
from perftui.session.schema import TimelineRow
from perftui.session.timeline import Timeline


def _row(t: int, rng: random.Random, monitor: bool = True) -> TimelineRow:
    rps = round(rng.uniform(1900, 2100), 1)
    mon = None
    if monitor:
        gen = {"coordinator_cpu_percent": round(rng.uniform(0, 5), 1), "coordinator_rss_mb": round(rng.uniform(37, 39), 2),
               "worker0_cpu_percent": round(rng.uniform(10, 20), 1), "worker0_cpu_wait_percent": round(rng.uniform(0, 5), 1),
               "worker0_rss_mb": round(rng.uniform(33, 34), 2), "cpu_percent": round(rng.uniform(10, 25), 1),
               "rss_mb": round(rng.uniform(70, 73), 2), "threads": 5.0, "connections": float(rng.randint(20, 40)),
               "worker_cpu_max_percent": round(rng.uniform(10, 20), 1)}
        mon = MonitorRow(health={"http://127.0.0.1:1/health": HealthPoint(up=t % 7 != 0, status=200, latency_ms=0.4)},
                         metrics={"http_requests_total": round(rps, 1)}, generator=gen,
                         host={"cpu_percent": round(rng.uniform(5, 50), 1), "memory_percent": 2.2,
                               "memory_used_mb": round(rng.uniform(500, 600), 1), "load1": round(rng.uniform(0, 2), 2)})
    return TimelineRow(t=float(t), phase="steady", target_rps=2000.0, target_vus=0, rps=rps, started_rps=rps,
                       p50_ms=round(rng.uniform(0.1, 0.3), 3), p95_ms=round(rng.uniform(0.3, 0.6), 3),
                       p99_ms=None if t % 11 == 0 else round(rng.uniform(0.6, 2), 3), errors=t % 3,
                       requests=int(rps), error_rate=round((t % 3) / rps, 6), late_starts=t % 5,
                       cpu_percent=round(rng.uniform(10, 25), 1), rss_mb=round(rng.uniform(33, 34), 2),
                       loop_lag_ms=round(rng.uniform(0, 1), 3), extra={"ws_messages": float(t)} if t % 2 else {},
                       monitor=mon, generator_limited=t % 13 == 0,
                       endpoints={"GET /small.txt": EndpointPoint(int(rps), t % 3, 0.15, 0.44, 0.87),
                                  "POST /x": EndpointPoint(3, 0)})


def test_rows_read_back_exactly_as_written():
    rng = random.Random(7)
    rows = [_row(t, rng, monitor=t > 2) for t in range(1, 200)]
    tl = Timeline(rows)
    assert len(tl) == len(rows)
    assert list(tl) == rows
    assert tl[0] == rows[0] and tl[57] == rows[57] and tl[-1] == rows[-1] and tl[-2] == rows[-2]
    assert tl[10:13] == rows[10:13]
    assert tl[:] == rows
    assert tl[-1] is rows[-1]  # the newest row is kept as it is
    with pytest.raises(IndexError):
        tl[len(rows)]
    assert not Timeline() and len(Timeline()) == 0
    with pytest.raises(IndexError):
        Timeline()[-1]


def test_a_frozen_view_keeps_its_rows_and_a_written_back_row_keeps_its_change():
    rng = random.Random(3)
    tl = Timeline(_row(t, rng) for t in range(1, 6))
    view = tl.frozen()
    tl.append(_row(6, rng))
    assert len(view) == 5 and view[-1].t == 5.0 and [r.t for r in view] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert view[1:3] == tl[1:3]
    with pytest.raises(IndexError):
        view[5]
    r = tl[2]
    r.generator_limited = True  # a copy: not kept until written back
    assert tl[2].generator_limited is False
    tl[2] = r
    assert tl[2].generator_limited is True and tl[2] == r
    last = tl[-1]
    last.phase = "changed"
    tl[-1] = last
    assert tl[5].phase == "changed" and list(tl)[-1].phase == "changed"


def test_a_closed_row_costs_a_fraction_of_its_objects():
    """A row with monitoring is ~2 KB of Python objects; kept, it is its deflated encoding. The
    bound is loose (the measured figure is ~0.2 KB); a timeline that kept the objects would be
    ten times over it."""
    rng = random.Random(11)
    tl = Timeline(_row(t, rng) for t in range(1, 301))
    per_row = sum(sys.getsizeof(p) for p in tl._rows) / len(tl)
    assert per_row < 600, per_row
