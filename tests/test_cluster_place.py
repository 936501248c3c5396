"""Where --cluster puts its workers, and the node events (no Ray needed: plain functions)."""

from __future__ import annotations

from types import SimpleNamespace

from perftui.run.cluster import NodeInfo, clock_note, clock_offset, node_lost_event, place


def _nodes(*cpus: float) -> list[NodeInfo]:
    return [NodeInfo(f"id{i}", f"10.0.0.{i}", c, label=f"10.0.0.{i}") for i, c in enumerate(cpus)]


def test_one_worker_per_cpu_spread_in_turn():
    assert place(_nodes(2, 2), 4) == [0, 1, 0, 1]
    assert place(_nodes(1, 3), 4) == [0, 1, 1, 1]  # a full node is skipped while others have room
    assert place(_nodes(4, 1, 1), 3) == [0, 1, 2]


def test_more_workers_than_cpus_go_round_in_turn():
    where = place(_nodes(1, 1), 5)
    assert where[:2] == [0, 1] and sorted(where) == [0, 0, 0, 1, 1]


def test_node_event_only_when_its_last_worker_is_lost():
    a1 = SimpleNamespace(node="A", alive=False, lost="no answer", exit_text=lambda: "lost")
    a2 = SimpleNamespace(node="A", alive=True, lost="")
    b = SimpleNamespace(node="B", alive=True, lost="")
    assert node_lost_event([a1, a2, b], a1) is None  # A still has a worker
    a2.alive = False
    a2.lost = "no answer"
    assert node_lost_event([a1, a2, b], a2) == "node A lost with its 2 worker(s); its share re-shared over 1 worker(s) on 1 node(s)"
    exited = SimpleNamespace(node="B", alive=False, lost="")
    assert node_lost_event([a1, a2, exited], exited) is None  # a worker process that exited: its node is fine


def test_a_node_on_this_kernel_shares_its_clock():
    """A Ray call's estimate of a node's clock leans late by up to half its round trip; on our own
    kernel (same boot id) the clock is ours, so an estimate whose bounds hold zero is zero."""
    assert clock_offset(0.140, 0.300, same_kernel=True) == 0.0  # 140 ms late, ±150 ms: zero
    assert clock_offset(0.140, 0.300, same_kernel=False) == 0.140  # another machine: the estimate
    assert clock_offset(0.140, 0.200, same_kernel=True) == 0.140  # outside its bounds (a time namespace)
    assert clock_offset(-0.020, 0.050, same_kernel=True) == 0.0


def test_the_cluster_event_names_only_clocks_that_differ():
    same = [SimpleNamespace(node="A", offset=0.0), SimpleNamespace(node="B", offset=0.0)]
    assert clock_note(same) == ""
    other = [SimpleNamespace(node="A", offset=0.0), SimpleNamespace(node="B", offset=0.0123),
             SimpleNamespace(node="B", offset=0.0125)]
    assert clock_note(other) == "; clock offset B +12.3 ms"
