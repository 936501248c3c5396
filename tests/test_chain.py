"""Closed-model users run as chains (``perftui.worker.chain``): a real ``Worker`` in process
against a server on 127.0.0.1 that the test starts and that misbehaves on purpose (closes
connections, drops them without a word, redirects, stops answering). Whatever it does, every
request is counted once, as the general path counts it; no timing asserts."""

from __future__ import annotations

import asyncio
import time

import pytest

from perftui.worker import chain as chain_mod
from perftui.worker import main as W
from perftui.worker.messages import SetLoad
from tests.test_worker_load import _worker


class _Server:
    """HTTP/1.1 on 127.0.0.1. ``close_every``: the Nth response of a connection says
    ``Connection: close``; ``drop_every``: the connection is closed without a word after its Nth
    response (the client's next request finds it stale); ``redirect_every``: every Nth request
    is answered 302 to ``/landed``; ``answer``: how many requests get an answer at all (the
    rest wait forever); ``twice``: the Nth response of a connection is sent twice in one write
    (a server out of step with its client); ``slow_first``: the first N requests are answered
    after 0.1 s; ``hang_at``: the Nth request is never answered (the others are)."""

    def __init__(self, *, close_every=0, drop_every=0, redirect_every=0, answer=None, twice=0, slow_first=0,
                 hang_at=0):
        self.close_every, self.drop_every, self.redirect_every = close_every, drop_every, redirect_every
        self.twice = twice
        self.answer = answer
        self.slow_first, self.hang_at = slow_first, hang_at
        self.requests = self.answered = self.redirects = self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests += 1
                if self.answer is not None and self.answered >= self.answer:
                    await asyncio.Event().wait()  # never answers
                if self.requests == self.hang_at:
                    await asyncio.Event().wait()
                if self.requests <= self.slow_first:
                    await asyncio.sleep(0.1)
                served += 1
                self.answered += 1
                close = self.close_every and served % self.close_every == 0
                extra = b"Connection: close\r\n" if close else b""
                if (self.redirect_every and self.requests % self.redirect_every == 0
                        and not head.startswith(b"GET /landed")):
                    self.redirects += 1
                    writer.write(b"HTTP/1.1 302 Found\r\nLocation: /landed\r\nContent-Length: 0\r\n" + extra + b"\r\n")
                else:
                    writer.write((b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + extra + b"\r\nok") * (2 if served == self.twice else 1))
                await writer.drain()
                if close or (self.drop_every and served % self.drop_every == 0):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        self.server.close()


def _closed(w: W.Worker, vus: int) -> None:
    now = time.monotonic()
    w.set_load(SetLoad(phase=0, kind="closed", start=now, clock_origin=now, duration=0, vus_from=vus, vus_to=vus))


def _counting(monkeypatch, method: str = "_send") -> list[int]:
    """Counts the calls of a ``Chain`` method: ``_send``, the requests sent by chains (not by the
    general path); ``_arrival``, the queued arrivals a lane's chain took; ``resume``, the arrivals
    handed to a parked chain."""
    calls = [0]
    original = getattr(chain_mod.Chain, method)

    def counted(self, *args):
        calls[0] += 1
        original(self, *args)

    monkeypatch.setattr(chain_mod.Chain, method, counted)
    return calls


async def _run(server: _Server, vus: int, seconds: float, grace: float = 1.0, **defaults) -> W.Worker:
    url = await server.start()
    w = _worker(url, vus=vus, extra_defaults=defaults or None)
    _closed(w, vus)
    await asyncio.sleep(seconds)
    await w.stop(grace)
    server.close()
    return w


def _endpoint(w: W.Worker):
    [rec] = w.runner.recorders.values()
    return rec


def test_chained_users_count_every_request_once_through_closes_and_redirects(monkeypatch):
    """Connections closed by the server every 7th response and a redirect every 13th request:
    the chains break and pick up again, and what the worker counts is what the server answered
    (a followed redirect is one request of the plan), every iteration one request."""
    sent = _counting(monkeypatch)
    server = _Server(close_every=7, redirect_every=13)
    w = asyncio.run(_run(server, vus=4, seconds=0.8))
    rec = _endpoint(w)
    assert sent[0] > 100, "the plan ran as chains"
    assert server.redirects > 0 and server.connections > 4
    assert rec.errors == 0, rec.error_kinds
    assert rec.requests == server.answered - server.redirects
    assert w.runner.iterations == rec.requests
    assert rec.status == {200: rec.requests}


def test_a_connection_dropped_without_a_word_is_retried_not_counted_as_an_error(monkeypatch):
    """The server closes every connection after its 5th response without saying so: the next
    request sent on it finds it stale and goes once more on another connection. No request is
    lost or counted twice."""
    sent = _counting(monkeypatch)
    server = _Server(drop_every=5)
    w = asyncio.run(_run(server, vus=3, seconds=0.8))
    rec = _endpoint(w)
    assert sent[0] > 50
    assert server.connections > 10
    assert rec.errors == 0, rec.error_kinds
    assert rec.requests == server.answered == w.runner.iterations


def test_bytes_after_a_response_are_never_read_as_the_next_one(monkeypatch):
    """A server that sends the 3rd response of each connection twice: the copy arrives in the
    same read as the response, before the chain's next request is sent, so the connection is
    dropped as out of step (the general path's rule) and the copy is never taken for the next
    request's answer (which would shift every later answer by one)."""
    sent = _counting(monkeypatch)
    server = _Server(twice=3)
    w = asyncio.run(_run(server, vus=2, seconds=0.5))
    rec = _endpoint(w)
    assert sent[0] > 20
    assert rec.requests == server.requests and rec.errors == 0, rec.error_kinds
    assert server.connections >= server.requests // 3  # no connection outlives its third request


def test_requests_in_flight_when_the_run_ends_are_counted_interrupted(monkeypatch):
    """The server answers 40 requests and then none: the 3 chains' requests still waiting when
    the grace period ends count as "interrupted", and every request sent is counted."""
    sent = _counting(monkeypatch)
    server = _Server(answer=40)
    w = asyncio.run(_run(server, vus=3, seconds=0.5, grace=0.2))
    rec = _endpoint(w)
    assert sent[0] > 0
    assert rec.error_kinds == {"interrupted": 3}
    assert rec.requests == server.answered + 3 == server.requests
    assert w.in_flight == 0


def test_a_timeout_breaks_the_chain_and_the_user_goes_on(monkeypatch):
    """A request the server never answers times out (the pool's sweep fails it), is counted as
    a "timeout", and its user carries on: the run ends with that error and nothing in flight
    from before it."""
    _counting(monkeypatch)
    server = _Server(answer=20)
    w = asyncio.run(_run(server, vus=1, seconds=0.9, grace=0.1, timeout="300ms"))
    rec = _endpoint(w)
    assert rec.error_kinds.get("timeout", 0) >= 1, rec.error_kinds
    assert rec.requests == 20 + rec.error_kinds["timeout"] + rec.error_kinds.get("interrupted", 0)


def test_a_bug_while_counting_a_response_is_reported_and_the_user_goes_on(monkeypatch):
    """An exception of perftui's own inside a chain (here: counting the 20th response) is not
    raised inside the connection's callback, where the event loop would swallow it and the user
    would wait for ever, but in the user's loop, which reports it as "internal" as the general
    path does, and carries on."""
    from perftui.worker.scenario import ScenarioRunner

    sent = _counting(monkeypatch)
    judge = ScenarioRunner.judge
    calls = [0]

    def failing(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == 20:
            raise RuntimeError("boom")
        return judge(self, *args, **kwargs)

    monkeypatch.setattr(ScenarioRunner, "judge", failing)
    server = _Server()
    w = asyncio.run(_run(server, vus=1, seconds=0.6))
    assert any("internal: RuntimeError: boom" in e for e in w.runner.errors_sample), list(w.runner.errors_sample)
    assert calls[0] > 40 and sent[0] > 40  # the user went on after it
    assert _endpoint(w).requests == server.answered - 1  # the one whose counting failed


def test_fewer_users_end_their_chains(monkeypatch):
    """Going from 6 users to 2 ends four chains at their next response; the other two go on."""
    sent = _counting(monkeypatch)

    async def main():
        server = _Server()
        url = await server.start()
        w = _worker(url, vus=6)
        _closed(w, 6)
        await asyncio.sleep(0.4)
        _closed(w, 2)
        await asyncio.sleep(0.4)
        alive = sum(1 for t in w.vus if not t.done())
        before = sent[0]
        await asyncio.sleep(0.2)
        after = sent[0]
        await w.stop(1.0)
        server.close()
        return w, server, alive, after - before

    w, server, alive, later = asyncio.run(main())
    assert alive == 2
    assert later > 0
    assert _endpoint(w).requests == server.answered


_STEP = {"url": "/"}


@pytest.mark.parametrize(("steps", "chained"), [
    ([_STEP], True),
    ([{**_STEP, "expect": {"status": 200, "body_contains": "ok"}, "capture": [{"json": "$.id", "as": "id"}]}], True),
    ([{**_STEP, "think": "10ms"}], False),
    ([_STEP, _STEP], False),
])
def test_which_plans_run_as_chains(steps, chained):
    """One plain request runs as chains, its checks and captures included (the same ``judge``
    as the general path); think time or a second step need the general path."""
    from perftui.planload import plan_from_dict
    from perftui.worker.chain import chained_step
    from perftui.worker.scenario import ScenarioRunner

    plan = plan_from_dict({"target": "http://127.0.0.1:9", "phases": [{"duration": "1s", "vus": 1}],
                           "scenarios": [{"steps": steps}]}).plan
    assert (chained_step(ScenarioRunner(plan, plan.target)) is not None) is chained


# ---- open model: a lane's chain sends queued arrivals -------------------------------------------


async def _open_load(server: _Server, rate: float, seconds: float, connections: int, rate_to: float = 0.0,
                     **defaults) -> W.Worker:
    """The server started, and a worker given an open load from ``rate`` a second to ``rate_to``
    over ``seconds`` (to 0: a schedule of ``rate * seconds / 2`` arrivals that ends by itself;
    ``seconds`` 0: ``rate`` until stopped) over at most ``connections``."""
    url = await server.start()
    w = _worker(url, rate=rate, extra_defaults={"max_connections": connections, **defaults})
    now = time.monotonic()
    w.set_load(SetLoad(phase=0, kind="open", start=now, clock_origin=now, duration=seconds, rate_from=rate,
                       rate_to=rate_to))
    return w


async def _open_run(server: _Server, rate: float, seconds: float, connections: int, grace: float = 1.0) -> tuple:
    """``_open_load`` from ``rate`` down to 0 over ``seconds``; waits for the queue to drain, then
    stops; returns the worker and the snapshot taken at the end."""
    w = await _open_load(server, rate, seconds, connections)
    await asyncio.wait_for(w.shape_task, 30)  # the schedule ends by itself
    for _ in range(400):  # the queue drains (generous: a busy machine)
        if not w.queue and w.in_flight == 0:
            break
        await asyncio.sleep(0.05)
    rec = _endpoint(w)
    counts = {"requests": rec.requests, "errors": rec.errors, "kinds": dict(rec.error_kinds),
              "iterations": w.runner.iterations, "dropped": w.dropped, "queued": len(w.queue)}
    snap = w.snapshot(time.monotonic(), seconds)  # (takes the counts above as its deltas)
    await w.stop(grace)
    server.close()
    return counts, snap


def test_open_model_lanes_send_queued_arrivals_as_chains_and_count_each_once(monkeypatch):
    """2,000 arrivals (8,000/s falling to 0 over 0.5 s) over 4 connections to a server that closes a connection
    every 7th response and redirects every 13th request: arrivals queue, lanes send them from the
    connection's callbacks, and every arrival is one iteration and one counted request, timed
    from its intended start (queueing is in the latency, not in the service time)."""
    from perftui.worker.scenario import ScenarioRunner

    taken = _counting(monkeypatch, "_arrival")
    judge = ScenarioRunner.judge
    timed = []  # (started, sent, intended) of every counted response

    def judging(self, step, vars, started, resp, kind=None, intended=None):
        timed.append((started, resp.t_sent, intended))
        return judge(self, step, vars, started, resp, kind, intended)

    monkeypatch.setattr(ScenarioRunner, "judge", judging)
    server = _Server(close_every=7, redirect_every=13)
    c, snap = asyncio.run(_open_run(server, rate=8000, seconds=0.5, connections=4))
    assert taken[0] > 100, "queued arrivals went out as chains"
    assert server.redirects > 0 and server.connections > 4
    assert c["errors"] == 0, c["kinds"]
    assert c["dropped"] == 0 and c["queued"] == 0
    assert c["iterations"] == c["requests"] == 2000
    assert c["requests"] == server.answered - server.redirects
    assert len(timed) == 2000
    assert all(i is not None and s <= min(i, sent) for s, sent, i in timed)  # from the intended start
    # many waited in the queue (4 connections for 8,000/s; how many depends on the machine: 422
    # to over 1,000 of 2,000 seen, fewer since arrivals wake on time, waker.py)
    assert sum(1 for s, sent, _ in timed if s < sent) > 100
    ep = snap.endpoints[0]
    assert ep.latency_sum > ep.service_sum  # and that is in the latency, not the service time


def test_open_model_chain_retries_a_stale_connection_with_its_arrival(monkeypatch):
    """Connections dropped without a word after every 5th response: a queued arrival sent on one
    finds it stale and goes once more on another connection; none is lost or counted twice."""
    taken = _counting(monkeypatch, "_arrival")
    server = _Server(drop_every=5)
    c, _ = asyncio.run(_open_run(server, rate=6000, seconds=0.4, connections=3))
    assert taken[0] > 50
    assert server.connections > 10
    assert c["errors"] == 0, c["kinds"]
    assert c["iterations"] == c["requests"] == server.answered == 1200
    assert c["dropped"] == 0


def test_open_model_chain_in_flight_at_the_end_is_interrupted(monkeypatch):
    """The server answers 300 requests and then none: arrivals still queued when the run stops are
    dropped (counted), requests in flight count as "interrupted", and every arrival of the
    schedule is accounted for."""
    _counting(monkeypatch, "_arrival")

    async def main():
        server = _Server(answer=300)
        w = await _open_load(server, 4000, 0.5, 3)
        await asyncio.wait_for(w.shape_task, 30)
        await w.stop(0.2)
        server.close()
        return w, server

    w, server = asyncio.run(main())
    rec = _endpoint(w)
    assert rec.error_kinds == {"interrupted": 3}
    assert rec.requests == server.answered + 3 == server.requests
    assert w.runner.iterations + w.dropped == 1000  # the schedule: 4,000/s falling to 0 over 0.5 s
    assert w.in_flight == 0


def test_open_model_chain_times_out_a_request_while_other_connections_are_idle(monkeypatch):
    """40 arrivals/s; the first four answers are slow, so four connections open, then every
    request but the 20th is answered at once. The 20th goes out as a chain on an idle connection
    while nothing else is in flight (the pool's deadline sweeps had stopped): it must still time
    out as a "timeout" during the run, not wait until the end to be "interrupted"."""
    taken = _counting(monkeypatch, "_send")

    async def main():
        server = _Server(slow_first=4, hang_at=20)
        w = await _open_load(server, 40, 0, 8, rate_to=40, timeout="300ms")
        for _ in range(100):  # the 20th request and its timeout (generous: a busy machine)
            await asyncio.sleep(0.05)
            if w.runner.iterations > 40:
                break
        await w.stop(0.1)
        server.close()
        return w, server

    w, server = asyncio.run(main())
    rec = _endpoint(w)
    assert taken[0] > 20, "arrivals went out as chains"
    assert server.connections >= 2
    assert rec.error_kinds == {"timeout": 1}
    assert rec.requests == server.requests == w.runner.iterations


def test_open_model_parked_chains_take_arrivals_and_end_with_the_load(monkeypatch):
    """600 arrivals/s falling to 0 over 0.6 s (180 arrivals) to a server that closes every second
    connection's response: between arrivals a lane's chain parks, the arrival loop hands it the
    next arrival (sent at once on an idle connection, or through the general path when none is
    idle), every arrival is one counted request; parked chains are not in flight, and they end
    when the load does."""
    resumed = _counting(monkeypatch, "resume")
    sent = _counting(monkeypatch, "_send")

    async def main():
        server = _Server(close_every=2)
        w = await _open_load(server, 600, 0.6, 4)
        await asyncio.wait_for(w.shape_task, 30)
        for _ in range(200):
            if w.in_flight == 0 and not w.queue:
                break
            await asyncio.sleep(0.05)
        parked, in_flight, lanes = len(w.idle_chains), w.in_flight, w.lanes
        await w.stop(1.0)
        server.close()
        return w, server, parked, in_flight, lanes

    w, server, parked, in_flight, lanes = asyncio.run(main())
    rec = _endpoint(w)
    assert resumed[0] > 20 and sent[0] > 20
    assert parked >= 1 and in_flight == 0 and lanes >= parked
    assert rec.errors == 0, rec.error_kinds
    assert rec.requests == w.runner.iterations == server.answered == 180
    assert w.dropped == 0
    assert w.lanes == 0 and not w.idle_chains and not w.tasks
