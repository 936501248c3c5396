"""Per-endpoint figures in the session timeline (``TimelineRow.endpoints``): what ``perftui open``
shows for the cursor's second. Real worker recorders and a real session record; the timeline's
row limit lowered so that coarsening happens within a few hundred scripted seconds."""

from __future__ import annotations

import json
import random

import msgspec
from hdrh.histogram import HdrHistogram

import perftui.session.record as record_mod
from perftui.session import SessionRecord
from perftui.session.endpoint_points import ENDPOINTS_PER_ROW, EndpointPoint, merge_points, percentiles_ms
from perftui.session.schema import SessionDocument
from perftui.worker.messages import Snapshot
from perftui.worker.stats import EndpointRecorder, new_histogram


def test_fast_percentiles_are_hdrhistograms_own():
    rng = random.Random(3)
    for n in (1, 2, 7, 100, 5000):
        for _ in range(20):
            rec = new_histogram()
            for _ in range(n):
                rec.record_value(int(rng.lognormvariate(9, 1.6)) + 1)
            decoded = HdrHistogram.decode(rec.encode())
            summed = new_histogram()
            summed.add(decoded)
            summed.add(decoded)
            for h in (decoded, summed):
                want = h.get_percentile_to_value_dict([50.0, 95.0, 99.0])
                assert percentiles_ms(h) == [round(want[p] / 1000, 3) for p in (50.0, 95.0, 99.0)]


def _second(s: SessionRecord, t: float, counts: dict[str, int], rng: random.Random, slow: str = "") -> None:
    deltas = []
    for name, n in counts.items():
        rec = EndpointRecorder(name)
        for _ in range(n):
            ms = (200.0 if name == slow else 10.0) * (0.5 + rng.random())
            err = rng.random() < 0.1
            rec.response(500 if err else 200, int(ms * 1000), int(ms * 900), 100, "http_5xx" if err else None)
        d = rec.take_delta()
        if d is not None:
            deltas.append(d)
    s.ingest(Snapshot(worker=0, seq=int(t), t=s.started_mono + t - 0.5, interval=1.0, endpoints=deltas))
    s.tick(s.started_mono + t, "steady", 10.0, 0)


def _record() -> SessionRecord:
    s = SessionRecord(plan_name="p", plan_file=None, plan_dict={}, target="http://x", workers=1, phases=[])
    s.mark_started()
    return s


def test_each_row_keeps_its_busiest_endpoints_and_accounts_for_the_rest():
    rng = random.Random(1)
    s = _record()
    counts = {f"GET /e{i:02d}": i + 1 for i in range(30)}  # 30 endpoints, /e29 the busiest
    _second(s, 1.0, counts, rng, slow="GET /e25")
    row = s.timeline[-1]
    assert len(row.endpoints) == ENDPOINTS_PER_ROW
    assert set(row.endpoints) == {f"GET /e{i:02d}" for i in range(10, 30)}
    kept = sum(p.requests for p in row.endpoints.values())
    assert row.requests - kept == sum(range(1, 11))  # the ten quietest, not kept
    slow = row.endpoints["GET /e25"]
    assert slow.p50_ms > 90 and max(p.p99_ms for n, p in row.endpoints.items() if n != "GET /e25") < 20
    # each endpoint's figure is its second's, not the run's: a second with one endpoint only
    _second(s, 2.0, {"GET /e03": 5}, rng)
    assert list(s.timeline[-1].endpoints) == ["GET /e03"] and s.timeline[-1].endpoints["GET /e03"].requests == 5
    # and the histograms went back to the pool: at most one per endpoint active in a second
    assert len(s.endpoint_points._pool) <= 30
    # in the document, each point is a compact array
    doc = json.loads(s.to_json())
    assert doc["schema_version"] == 2
    point = doc["timeline"][0]["endpoints"]["GET /e25"]
    assert point[:2] == [26, slow.errors] and point[2:] == [slow.p50_ms, slow.p95_ms, slow.p99_ms]
    back = msgspec.json.decode(s.to_json(), type=SessionDocument)
    assert back.timeline[0].endpoints == row.endpoints


def test_coarsened_rows_merge_points_and_stay_bounded(monkeypatch):
    """With the row limit at 20, 200 seconds of 30 endpoints: at most 20 rows of at most
    ``ENDPOINTS_PER_ROW`` points; merged counts add, merged percentiles are the worst second's."""
    monkeypatch.setattr(record_mod, "TIMELINE_MAX_ROWS", 20)
    rng = random.Random(2)
    s = _record()
    names = [f"GET /e{i:02d}" for i in range(30)]
    sent: dict[str, int] = {}
    for t in range(1, 201):
        counts = {n: rng.randint(1, 6) for n in rng.sample(names[1:], 25)}
        counts[names[0]] = 10  # always the busiest: always kept
        for n, c in counts.items():
            sent[n] = sent.get(n, 0) + c
        _second(s, float(t), counts, rng, slow=names[0] if t == 100 else "")
        assert len(s.timeline) <= 20
        assert all(len(r.endpoints) <= ENDPOINTS_PER_ROW for r in s.timeline)
    assert s.resolution >= 8
    doc = s.document()
    kept = {}
    for r in doc.timeline:
        assert sum(p.requests for p in r.endpoints.values()) <= r.requests
        for n, p in r.endpoints.items():
            kept[n] = kept.get(n, 0) + p.requests
    assert all(kept[n] <= sent[n] for n in kept)
    assert sum(r.requests for r in doc.timeline) == sum(sent.values())
    # the slow second of /e00 survives the merges as its row's worst; other rows stay fast
    p99 = [(r.t, r.endpoints[names[0]].p99_ms) for r in doc.timeline]
    slow = [t for t, v in p99 if v > 100]
    assert len(slow) == 1 and slow[0] >= 100 and max(v for t, v in p99 if t != slow[0]) < 20
    assert kept[names[0]] == sent[names[0]] == 2000


def test_merge_points_adds_counts_and_takes_the_worst_percentiles():
    a = {"x": EndpointPoint(10, 1, 5.0, 9.0, 12.0), "y": EndpointPoint(3, 0, None, None, None)}
    b = {"x": EndpointPoint(20, 0, 4.0, 11.0, 11.5)}
    m = merge_points([a, b])
    assert m["x"] == EndpointPoint(30, 1, 5.0, 11.0, 12.0) and m["y"] == EndpointPoint(3, 0, None, None, None)
    assert a["x"] == EndpointPoint(10, 1, 5.0, 9.0, 12.0)  # the rows merged are not changed
    many = [{f"e{i}": EndpointPoint(i + 1, 0, 1.0, 1.0, 1.0)} for i in range(ENDPOINTS_PER_ROW + 5)]
    m = merge_points(many)
    assert len(m) == ENDPOINTS_PER_ROW and "e0" not in m and f"e{ENDPOINTS_PER_ROW + 4}" in m
