"""The coordinator's own work per second stays small and exact: what it caches or samples less
often must give the same record as doing the work every time."""

from __future__ import annotations

import asyncio
import socket

import msgspec

import perftui.monitor.process as process_mod
from perftui.journal import _encoder, capture
from perftui.monitor.process import ProcessSampler
from tests.ui_fakes import FakeCoordinator, sample_plan

SOAK = [{"name": "soak", "duration": "1h", "arrival_rate": 40}]


def test_checkpoint_window_cache_gives_the_same_bytes():
    """Checkpoints taken every second over 40 s with one cache kept between them are byte for byte
    the checkpoints taken without it, while the window's seconds keep rotating (and their
    aggregates are recycled)."""

    async def main():
        c = FakeCoordinator(sample_plan(phases=SOAK), "http://127.0.0.1:8088")
        await c.start()
        cache: dict = {}
        compared = 0
        for i in range(40):
            c.step(1, latency_ms=5.0 + i, error_rate=0.02 * (i % 3))
            cached = _encoder.encode(capture(c.session, with_timeline=False, window_cache=cache))
            plain = _encoder.encode(capture(c.session, with_timeline=False))
            assert cached == plain, f"second {i}"
            assert len(cache) == len(c.session.window)
            compared += 1
        return compared, c.session

    compared, session = asyncio.run(main())
    assert compared == 40
    assert len(session.window) == 10
    # the window really moved: its seconds carry the last ten latencies, not the first ten
    cp = msgspec.msgpack.decode(_encoder.encode(capture(session, with_timeline=False)))
    assert cp["window"] and cp["total"][0] > 0


def test_connection_counts_come_from_one_socket_table_read(monkeypatch):
    """This process opens real TCP connections to a listener of its own on 127.0.0.1: the sampler
    counts both ends (client and accepted sockets), and sees them go at the next refresh."""
    monkeypatch.setattr(process_mod, "CONNECTIONS_EVERY_S", 0.0)
    sampler = ProcessSampler(own=lambda: [("coordinator", __import__("os").getpid())])
    sampler.prime()
    before = sampler.sample(0.0).generator["connections"]
    srv = socket.create_server(("127.0.0.1", 0))
    clients, accepted = [], []
    try:
        for _ in range(5):
            clients.append(socket.create_connection(srv.getsockname()))
            accepted.append(srv.accept()[0])
        during = sampler.sample(1.0).generator["connections"]
        assert during >= before + 10 + 1  # 5 client ends, 5 accepted ends, the listener
    finally:
        for s in clients + accepted:
            s.close()
        srv.close()
    after = sampler.sample(2.0).generator["connections"]
    assert after <= during - 11


def test_connection_counts_are_carried_between_refreshes(monkeypatch):
    """Between two refreshes the count is the last refresh's: the machine's socket table is read
    once per refresh, not once per process per second."""
    reads = []
    real = process_mod._tcp_inodes
    monkeypatch.setattr(process_mod, "_tcp_inodes", lambda: reads.append(1) or real())
    monkeypatch.setattr(process_mod, "CONNECTIONS_EVERY_S", 3600.0)
    sampler = ProcessSampler(own=lambda: [("coordinator", __import__("os").getpid())] * 3)
    for t in range(5):
        sampler.sample(float(t))
    assert len(reads) == 1
