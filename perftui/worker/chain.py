"""Requests that follow one another from the connection's callbacks: closed-model virtual users,
and the open model's lanes while arrivals wait in the queue.

The commonest plan a load generator is compared on is one plain HTTP/1.1 request in a loop over
keep-alive connections (wrk's only mode). Through the general path each of its requests costs a
coroutine chain (the virtual user, the iteration, the request, the pool), a future, and a task
wake-up to resume them: Python work wrk does not do. A ``Chain`` runs such a user without them:
when a response completes, its connection's callback counts it (``ScenarioRunner.judge``, the
same code as the general path) and sends the user's next request on the same connection, and the
user's coroutine sleeps until the chain breaks. Measured with ``bench/ab.py`` (see bench/README.md).

Open model (``arrivals``: the worker's queue of intended starts): a lane given an arrival sends
it on an idle connection, and while arrivals wait in the queue each completed response sends the
next of them on the same connection, as a fresh virtual user, timed from its intended start (late
starts counted as the lane counts them). Under overload this is the path most requests take.
When the queue is empty, or the lane must give way (the adaptive bound was lowered), the chain
parks (``Worker.idle_chains``) instead of ending: the arrival loop hands it the next arrival,
which it sends on an idle connection at once, so an arrival costs no task wake-up either (ending
the chain and waiting as an idle lane cost two wake-ups an arrival: 15 % more CPU a request at
5,000/s and 30,000/s asked; bench/README.md).

It breaks, and the user goes on through the general path for one iteration, whenever the next
request would need more than an idle connection: the connection closed or went to a request
waiting for one, a transport failure, a stale keep-alive connection to retry, a redirect to
follow, a change of load (fewer users, another phase) or the run stopping. Every request is
counted exactly as on the general path: same latency (closed model: from the send), same error
kinds, same iteration counter, and a request cut off by the end of the run is "interrupted".
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from perftui.worker.scenario import _REDIRECTS
from perftui.worker.transport import TransportError, _Conn, _StaleConnection, _monotonic as _now, request_mode

if TYPE_CHECKING:  # pragma: no cover
    from perftui.worker.compiled import CompiledStep
    from perftui.worker.scenario import ScenarioRunner

__all__ = ["Chain", "chained_step"]


def chained_step(runner: ScenarioRunner) -> CompiledStep | None:
    """The step a closed-model user repeats if the plan can run as chains: one scenario of one
    plain HTTP/1.1 request (``ScenarioRunner.single_request``) without per-iteration data; else
    None."""
    return runner.single_request if not runner.iteration_feeds else None


class Chain:
    """One closed-model virtual user's requests, sent from the callbacks of its connection.

    To a connection it is the request's future (``_Conn.fut``): ``set_result`` with the
    response, ``set_exception`` with a ``TransportError``, ``done()``."""

    __slots__ = ("worker", "runner", "index", "vars", "step", "pool", "mode", "conn", "ended", "pending", "queue",
                 "intended", "parked")

    def __init__(self, worker: Any, index: int, vars: dict[str, Any], step: CompiledStep, *, arrivals: Any = None):
        self.worker = worker
        """The ``perftui.worker.main.Worker`` running the user: its ``runner``, ``vu_target``, ``stopping``."""
        self.runner = worker.runner
        self.index = index
        """The user's index: it stops when the load wants fewer users than that."""
        self.vars = vars
        self.step = step
        self.pool = step.pool or self.runner._bind_pool(step)
        self.mode = request_mode(step.head, step.want_headers)
        self.conn: _Conn | None = None
        """The connection our request is on; None between requests."""
        self.ended: asyncio.Future | None = None
        """What ``run`` waits for: set when the chain breaks."""
        self.pending: tuple | None = None
        """What the chain left for ``run`` to finish: a redirect to follow, a stale retry, or an
        exception of perftui's own to raise where the general path would have raised it."""
        self.queue = arrivals
        """Open model: the worker's queue of arrivals waiting for a lane (their intended starts);
        a lane's chain sends the next of them when a response completes, each as a fresh
        virtual user timed from its intended start. None: a closed-model user."""
        self.intended: float | None = None
        """Open model: the intended start of the request in flight."""
        self.parked = False
        """Open model: waiting in ``Worker.idle_chains`` for the next arrival (not in flight)."""

    def ready(self) -> bool:
        """A connection is idle: the chain can start on it."""
        return bool(self.pool._idle)

    async def run(self, intended: float | None = None) -> bool:
        """Requests one after another until the chain breaks; then the request it broke on is
        finished here (a redirect followed, a stale connection retried). ``intended``: the open
        model's arrival the lane was started for. True: the lane ends (released while parked)."""
        self.intended = intended
        pool = self.pool
        self.ended = ended = asyncio.get_running_loop().create_future()
        pool.enter()
        try:
            self._send(pool._idle.pop())
            await ended
        except asyncio.CancelledError:
            if self.parked:  # (so that the counts below and the lane's stay balanced)
                self.worker.idle_chains.remove(self)
                self._unpark()
            conn, self.conn = self.conn, None
            if conn is not None:  # still in flight when the run ended and its grace ran out
                conn.fut = None
                conn._fail(TransportError("reset", "cancelled"))
                self.step.recorder.failure("interrupted")  # counted, never dropped
            raise
        finally:
            pool._in_flight -= 1
        pending, self.pending = self.pending, None
        if pending is None:
            return False
        runner, step = self.runner, self.step
        kind = pending[0]
        if kind == "release":
            return True
        if kind == "error":
            raise pending[1]  # the user's loop reports it as the general path's would be
        if kind == "stale":  # nothing was processed: once more on another connection
            await runner._request(step, self.vars, self.intended)
            return False
        if kind == "arrival":  # handed over while no connection was idle: the general path
            await runner.iteration(self.vars, self.intended)
            return False
        resp = pending[1]
        started = self._started(resp)
        try:
            resp, kind = await runner._follow(step, self.vars, resp)
        except TransportError as exc:
            step.recorder.failure(exc.kind)
            runner.errors_sample.append(f"{exc.kind}: {step.name} (after a redirect): {exc}")
            return False
        runner.judge(step, self.vars, started, resp, kind, self.intended)
        return False

    # ---- open model: parked between arrivals --------------------------------------------

    def resume(self, intended: float) -> None:
        """The arrival loop hands a parked chain an arrival: sent on an idle connection now, as a
        fresh virtual user; with none idle, the lane sends it through the general path."""
        self._unpark()
        self.intended = intended
        self.vars = self.runner.new_vu()
        idle = self.pool._idle
        if idle and not idle[-1].closed:
            self._send(idle.pop())
        else:
            self._break(("arrival",))

    def release(self) -> None:
        """The load changed or the run stops: a parked chain's lane ends."""
        self._unpark()
        self._break(("release",))

    def _park(self) -> None:
        self.parked = True
        self.worker.in_flight -= 1
        self.pool._in_flight -= 1
        self.worker.idle_chains.append(self)

    def _unpark(self) -> None:
        self.parked = False
        self.worker.in_flight += 1
        self.pool.enter()

    def _started(self, resp) -> float:
        """What a request's latency runs from: its intended start (open model; the send if it
        went out a moment early, as on the general path), else the send."""
        intended = self.intended
        return resp.t_sent if intended is None or intended > resp.t_sent else intended

    # ---- the request's future, to its connection ---------------------------------------

    def done(self) -> bool:
        return self.conn is None

    def set_result(self, resp) -> None:
        conn, self.conn = self.conn, None
        step = self.step
        if step.max_redirects and resp.status in _REDIRECTS:
            self._break(("redirect", resp))
            return
        try:
            self.runner.judge(step, self.vars, self._started(resp), resp, None, self.intended)
        except Exception as exc:  # noqa: BLE001 - not inside the connection's callback: in run()
            self._break(("error", exc))
            return
        worker = self.worker
        idle = self.pool._idle
        if self.queue is None:
            go = self.index < worker.vu_target
        else:  # an arrival is waiting, and this lane may go on (the bound may have been lowered)
            go = bool(self.queue) and worker._lane_room(1)
            if not go and not worker.stopping:
                self._park()  # until the arrival loop hands it the next one
                return
        if go and not worker.stopping and idle and idle[-1] is conn:
            idle.pop()
            conn.after = self._send if self.queue is None else self._arrival  # once the parser is done
        else:
            self._break(None)

    def set_exception(self, exc: BaseException) -> None:
        self.conn = None
        if isinstance(exc, _StaleConnection):
            self._break(("stale",))
            return
        kind = exc.kind if isinstance(exc, TransportError) else "reset"
        self.step.recorder.failure(kind)
        self.runner.errors_sample.append(f"{kind}: {self.step.name}: {exc}")
        self._break(None)

    # ---- internals ----------------------------------------------------------------------

    def _arrival(self, conn: _Conn) -> None:
        """Open model: the next queued arrival, as a fresh virtual user, on this connection."""
        if conn.closed:  # (before taking it: the general path sends it instead)
            self._break(None)
            return
        worker = self.worker
        self.intended = intended = self.queue.popleft()
        if _now() - intended > self.runner.late_threshold:
            worker.late += 1  # waited in the queue past its slot
        self.vars = self.runner.new_vu()
        self._send(conn)

    def _send(self, conn: _Conn) -> None:
        if conn.closed:  # bytes after the response closed it: the user goes on elsewhere
            self._break(None)
            return
        runner, vars, step = self.runner, self.vars, self.step
        runner.iterations += 1
        vars["$iteration"] += 1
        try:
            data = step.request_bytes(vars)
        except Exception as exc:  # noqa: BLE001 - not inside the connection's callback: in run()
            self.pool._idle.append(conn)
            self._break(("error", exc))
            return
        self.conn = conn
        conn.start(self, data, 0.0, step.timeout, self.mode, step.want_body, step.want_headers)

    def _break(self, pending: tuple | None) -> None:
        self.pending = pending
        ended = self.ended
        if ended is not None and not ended.done():
            ended.set_result(None)
