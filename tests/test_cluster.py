"""perftui run --cluster: workers as Ray actors on the nodes of a real Ray cluster.

The cluster is two ``ray start`` nodes on 127.0.0.1 (``tests/ray_cluster.py``), one CPU each, told
apart by a custom resource; it is started once for the module (Ray takes 10-20 s to come up) and
its processes are all gone after the module, whatever the tests did. The load goes to the demo
target on 127.0.0.1. The runs go through the command line, as a user's would, over Ray Client.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, read_session, run_cli, write_plan

if os.environ.get("CI"):  # CI installs the cluster extra (tests/setup.sh): a missing Ray is a failure there
    import ray  # noqa: F401
else:
    pytest.importorskip("ray", reason="the cluster extra (pip install 'perftui[cluster]') is not installed")

from tests.ray_cluster import group_pids, new_cluster  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    c = new_cluster()
    try:
        c.start_head("nodeA")
        c.add_node("nodeB")  # it waits for the head's GCS by itself
        c.wait_nodes(2)
        yield c
    finally:
        groups = [n.proc.pid for n in c.nodes.values()]
        c.stop()
        left = [pid for g in groups for pid in group_pids(g)]
        assert not left, f"Ray processes left after the cluster stopped: {left}"


def _plan(tmp_path: Path, url: str, rate: int, duration: str) -> Path:
    return write_plan(tmp_path, f"""
        name = "cluster"
        target = "{url}"
        [[phases]]
        duration = "{duration}"
        arrival_rate = {rate}
        [[scenarios]]
        steps = [{{ url = "/health" }}]
    """)


def test_without_ray_the_message_names_the_extra(tmp_path, demo):
    """A Python where ``import ray`` fails: exit 2, naming the extra to install."""
    shadow = tmp_path / "noray"
    shadow.mkdir()
    (shadow / "ray.py").write_text("raise ImportError('No module named ray')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(shadow), str(ROOT)])}
    r = run_cli("run", str(_plan(tmp_path, demo.url, 10, "1s")), "--headless", "--cluster", "ray://127.0.0.1:10001",
                env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "pip install 'perftui[cluster]'" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("address, says", [
    ("ray://127.0.0.1:{port}", "cannot reach 127.0.0.1:{port}"),
    ("127.0.0.1", "expected ray://HOST:PORT"),
])
def test_unreachable_or_malformed_address_exits_2(tmp_path, demo, address, says):
    port = free_port()  # nothing listens there
    r = run_cli("run", str(_plan(tmp_path, demo.url, 10, "1s")), "--headless", "--cluster", address.format(port=port))
    assert r.returncode == 2, r.stdout + r.stderr
    assert says.format(port=port) in r.stderr
    assert "Traceback" not in r.stderr


def test_fixed_rate_through_two_nodes(tmp_path, demo, cluster):
    """200 arrivals/s for 8 s over both nodes (one worker per CPU, one CPU each): the arrivals
    are the plan's to within 1 %, both nodes started about half of them, the session is whole."""
    out = tmp_path / "s.json"
    r = run_cli("run", str(_plan(tmp_path, demo.url, 200, "8s")), "--headless", "--cluster", cluster.client_address,
                "--out", str(out), timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    doc = read_session(out)
    assert doc["end_reason"] == "completed" and doc["partial"] is False
    assert doc["workers"] == 2
    nodes = doc["generator"]["nodes"]
    assert len(nodes) == 2 and {n["workers"] for n in nodes} == {1}
    started = sum(n["iterations"] for n in nodes)
    assert abs(started - 1600) <= 16, nodes  # within 1 % of the plan
    assert doc["summary"]["requests"] == sum(n["requests"] for n in nodes)
    assert abs(doc["summary"]["requests"] - started) <= 16  # one request an iteration, a few cut at the end
    for n in nodes:  # arrival k goes to worker k mod 2: an even split
        assert abs(n["iterations"] - started / 2) <= 2, nodes
    cluster_events = [e for e in doc["events"] if e["kind"] == "cluster"]
    assert cluster_events and "2 worker(s) on 2 node(s)" in cluster_events[0]["message"]
    assert "clock offset" not in cluster_events[0]["message"]  # both nodes run on this kernel: one clock


def test_auto_joins_the_cluster_this_machine_is_part_of(tmp_path, demo, cluster):
    """``--cluster auto`` on a node of the cluster (``$RAY_ADDRESS``, as Ray reads it): the driver
    joins through the GCS instead of Ray Client; the workers land on both nodes all the same."""
    out = tmp_path / "s.json"
    r = run_cli("run", str(_plan(tmp_path, demo.url, 50, "3s")), "--headless", "--cluster", "auto", "--out", str(out),
                env={"RAY_ADDRESS": cluster.gcs_address}, timeout=180)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    doc = read_session(out)
    assert doc["end_reason"] == "completed"
    nodes = doc["generator"]["nodes"]
    assert len(nodes) == 2 and all(n["iterations"] >= 50 for n in nodes), nodes
    assert abs(sum(n["iterations"] for n in nodes) - 150) <= 3, nodes  # (none cut by the stop)
    cluster_events = [e for e in doc["events"] if e["kind"] == "cluster"]
    assert cluster_events and "clock offset" not in cluster_events[0]["message"]


def test_the_kernel_boot_id_names_one_monotonic_clock():
    """What tells the coordinator that a node shares its clock: this kernel's boot id."""
    from perftui.run.ray_workers import boot_id

    assert len(boot_id()) >= 32 and boot_id() == boot_id()


def _actor_pids() -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter(["cmdline"])
            if " ".join(p.info["cmdline"] or []).startswith("ray::WorkerHost")]


def _start_run(plan, cluster, *args: str) -> subprocess.Popen:
    """``perftui run PLAN --headless --cluster ADDRESS ARGS`` in the background, its output piped."""
    return subprocess.Popen([sys.executable, "-m", "perftui", "run", str(plan), "--headless", "--cluster",
                             cluster.client_address, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=dict(os.environ, CI="true"))


def _wait_progress(proc: subprocess.Popen, lines: int) -> None:
    """Read the run's output until ``lines`` progress lines have come."""
    seen = 0
    while seen < lines:
        line = proc.stdout.readline()
        assert line, "the run ended before it showed progress: " + proc.stderr.read()[-3000:]
        seen += " p95 " in line


def _cluster_worker_pids() -> list[int]:
    """The worker processes that Ray actors of ours started (children of a ``WorkerHost``)."""
    import psutil

    pids = []
    for p in psutil.process_iter(["cmdline"]):
        if " ".join(p.info["cmdline"] or []).startswith("ray::WorkerHost"):
            try:
                children = p.children()
            except psutil.Error:  # the actor ended while we looked (it is meant to)
                continue
            for c in children:
                try:
                    if "perftui.worker" in " ".join(c.cmdline()):
                        pids.append(c.pid)
                except psutil.Error:  # so did this worker
                    continue
    return pids


def test_no_worker_left_ends_the_run_with_its_session(tmp_path, demo, cluster):
    """One worker on the cluster; its process is killed 2 s in: the run stops by itself (exit 1,
    "all workers died") and writes its session, with what the worker had done."""
    out = tmp_path / "s.json"
    proc = _start_run(_plan(tmp_path, demo.url, 50, "60s"), cluster, "--workers", "1", "--out", str(out))
    try:
        _wait_progress(proc, 2)
        deadline = time.monotonic() + 10  # an earlier run's actors may take a moment to go
        while len(pids := _cluster_worker_pids()) != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(pids) == 1, pids
        os.kill(pids[0], 9)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, stdout[-3000:] + stderr[-3000:]
    doc = read_session(out)
    assert doc["end_reason"] == "all workers died"
    died = [e for e in doc["events"] if e["kind"] == "worker"]
    assert died and "died (exit code -9)" in died[0]["message"] and "0 of 1 left" in died[0]["message"]
    assert not [e for e in doc["events"] if e["kind"] == "node"]  # its node is still there
    assert doc["summary"]["requests"] >= 50
    assert doc["duration_s"] < 30


def test_workers_stop_when_the_coordinator_is_killed(tmp_path, demo, cluster):
    """``kill -9`` of perftui mid-run: nothing polls the actors any more, and within seconds their
    worker processes stop (no load goes on from a run nobody records)."""
    proc = _start_run(_plan(tmp_path, demo.url, 20, "60s"), cluster)
    try:
        _wait_progress(proc, 2)
        assert len(_cluster_worker_pids()) == 2
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 30  # 5 s without a poll, then the worker's own graceful stop
        while _cluster_worker_pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _cluster_worker_pids()
        while _actor_pids() and time.monotonic() < deadline:  # and the actors end: their CPUs are free
            time.sleep(0.2)
        assert not _actor_pids()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_node_lost_mid_run_hands_its_share_over(tmp_path, demo, cluster):
    """nodeB's processes are killed 3 s into a 15 s run at 100/s: within a few seconds the event
    says the node is lost, the other node takes the whole rate, and the run completes."""
    out = tmp_path / "s.json"
    proc = _start_run(_plan(tmp_path, demo.url, 100, "15s"), cluster, "--out", str(out))
    try:
        _wait_progress(proc, 3)
        killed_at = time.time()
        cluster.kill_node("nodeB")
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    doc = read_session(out)
    assert doc["end_reason"] == "completed" and doc["partial"] is False
    lost = [e for e in doc["events"] if e["kind"] == "node"]
    assert len(lost) == 1 and "lost" in lost[0]["message"] and "re-shared over 1 worker(s) on 1 node(s)" in lost[0]["message"]
    started_wall = datetime.fromisoformat(doc["started_at"].replace("Z", "+00:00")).timestamp()
    kill_t = killed_at - started_wall
    # ~2 s on a quiet machine (bench/ and docs/cluster.md); with every core taken by other work the
    # coordinator's own loop is late too, so the bound here is generous
    assert kill_t - 0.5 <= lost[0]["t"] <= kill_t + 8.0, (kill_t, lost)
    assert doc["generator"]["workers_alive"] == 1
    by_node = {n["node"]: n for n in doc["generator"]["nodes"]}
    assert sorted(n["workers_alive"] for n in by_node.values()) == [0, 1]
    # the survivor runs the whole rate from the hand-over on (whole seconds after it, not the last)
    after = [row for row in doc["timeline"][:-1] if row["t"] - 1.0 >= lost[0]["t"] + 0.5]
    assert after, doc["timeline"]
    for row in after:
        assert 90 <= row["started_rps"] <= 110, after
    # what the lost node had started before is kept: nothing is counted twice, little is missing
    started = sum(n["iterations"] for n in by_node.values())
    assert 1500 - 100 * 9 <= started <= 1500 + 15, started
    assert "lost" in stdout
