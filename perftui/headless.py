"""The headless reporter: runs a plan without a UI (CI, no TTY, ``--headless``).

One compact line per second while the run goes, then a summary table. It consumes the same
session record the dashboard does. SIGINT/SIGTERM/SIGHUP stop the run gracefully and still write
the session (``partial: true``); a second SIGINT stops at once, still writing what it has.
"""

from __future__ import annotations

import asyncio
import queue
import signal
import sys
import threading
from typing import TextIO

from perftui.run.cluster import node_lines
from perftui.run.coordinator import Coordinator
from perftui.run.limit import plan_line, summary_lines as limit_summary_lines
from perftui.monitor.report import progress_markers, summary_lines
from perftui.plan import shown_target
from perftui.planload import LoadedPlan
from perftui.runtime import Target, exit_code, resolve_target, save_session, sessions_dir
from perftui.session import SessionRecord
from perftui.slo import slo_summary_lines
from perftui.session.observer import OnInterval
from perftui.session.schema import asked_rate
from perftui.stages_text import bench_progress, benchmark_lines, stage_lines
from perftui.summary import StatsSummary
from perftui.units import format_count, format_duration, format_ms, printable, printable_lines


def progress_line(coord: Coordinator) -> str:
    s = coord.session
    row = s.timeline[-1] if s.timeline else None
    spec = coord.current
    phase = printable(spec.name) if spec else "-"
    if row is None:
        return f"{format_duration(s.elapsed()):>7}  {phase}"
    if row.target_vus:
        target = f"{row.target_vus} VUs"
    else:
        target = f"{asked_rate(s.timeline):,.1f}/s"  # over the row's span, as ``started`` is
    parts = [
        f"{format_duration(row.t, exact=True):>7}",  # (the run's last row: a part of a second)
        f"{phase[:18]:<18}",
        f"target {target:>10}",
        *([f"started {row.started_rps:>8,.1f}/s"] if not row.target_vus else []),
        f"req {row.rps:>9,.1f}/s",
        f"p50 {format_ms(row.p50_ms):>7}",
        f"p95 {format_ms(row.p95_ms):>7}",
        f"p99 {format_ms(row.p99_ms):>7}",
        f"err {row.error_rate * 100:5.2f}%",
    ]
    if row.late_starts or row.dropped:
        parts.append(f"late {row.late_starts} dropped {row.dropped}")
    if row.in_flight:
        parts.append(f"in-flight {row.in_flight}")
    if row.queued:
        parts.append(f"queued {row.queued}")
    if row.stalls:
        parts.append(f"stalls {row.stalls} (worst {row.loop_lag_ms:.1f}ms)")
    if s.benchmark and spec is not None:
        parts.insert(3, bench_progress(s.benchmark, s.endpoints, coord.phase_index))
    parts.extend(progress_markers(s))  # target down, generator-limited
    return "  ".join(parts)


def _lat_cells(s: StatsSummary) -> list[str]:
    l = s.latency_ms
    return [format_ms(l.p50), format_ms(l.p95), format_ms(l.p99), format_ms(l.max)]


def _pcts(ls, keys=("p50", "p95", "p99", "max")) -> str:
    return "  ".join(f"{k} {format_ms(getattr(ls, k))}" for k in keys)


def _kinds(kinds: dict[str, int]) -> str:
    return f" ({', '.join(f'{k} {format_count(v)}' for k, v in kinds.items())})" if kinds else ""


def protocol_lines(session: SessionRecord) -> list[str]:
    """The WebSocket / GraphQL / MCP block of the summary (nothing for HTTP-only plans)."""
    p = session.protocol_summary()
    if not p:
        return []
    out = [""]
    if p.ws is not None:
        ws = p.ws
        rate = "-" if ws.success_rate is None else f"{ws.success_rate * 100:.2f}%"
        out.append(f"websocket      connections {ws.connections_opened:,} opened, {ws.connections_failed:,} failed"
                   f" (success {rate}), peak {ws.peak_open_connections:,} open, {ws.closed_by_server:,} closed by the server")
        out.append(f"               messages sent {ws.messages_sent:,} ({ws.sent_per_s:,.1f}/s), received"
                   f" {ws.messages_received:,} ({ws.received_per_s:,.1f}/s); errors {ws.errors:,}{_kinds(ws.error_kinds)}")
        out.append(f"               connect     {_pcts(ws.connect_ms)}")
        if ws.rtt_ms.p50 is not None:
            out.append(f"               round trip  {_pcts(ws.rtt_ms)}")
        if ws.expect_ms.p50 is not None:
            out.append(f"               expect wait {_pcts(ws.expect_ms)}")
    if p.graphql is not None:
        g = p.graphql
        out.append(f"graphql        requests {g.requests:,} ({g.rps:,.1f}/s), errors {g.errors:,}{_kinds(g.error_kinds)}"
                   f"  {_pcts(g.latency_ms)}")
    if p.mcp is not None:
        m = p.mcp
        out.append(f"mcp            sessions {m.sessions_initialized:,} opened, {m.initialize_failed:,} failed,"
                   f" {m.sessions_expired:,} expired  initialize {_pcts(m.initialize_ms, ('p50', 'p95', 'max'))}")
        out.append(f"               calls {m.requests:,} ({m.rps:,.1f}/s), errors {m.errors:,}{_kinds(m.error_kinds)}"
                   f"  {_pcts(m.latency_ms)}")
    if p.sql is not None:
        q = p.sql
        out.append(f"sql            statements {q.statements:,} ({q.rps:,.1f}/s), rows {q.rows:,} ({q.rows_per_s:,.1f}/s),"
                   f" errors {q.errors:,}{_kinds(q.error_kinds)}  {_pcts(q.latency_ms)}")
        for name, pool in q.databases.items():
            use = "-" if pool.utilization is None else f"{pool.utilization * 100:.0f}%"
            wait = "-" if pool.wait_ms_mean is None else f"{pool.wait_ms_mean:.2f}ms"
            out.append(f"               pool {name}: {pool.size} connections, peak {pool.peak_in_use} in use ({use}),"
                       f" {pool.waits:,} waits, mean wait {wait}, {pool.connect_failures:,} failed connects")
    return out


def summary_text(session: SessionRecord) -> str:
    doc_summary = session.summary()
    out: list[str] = []
    w = out.append
    w("")
    profile = session.plan_dict.get("profile") if isinstance(session.plan_dict, dict) else None
    w(f"perftui · {session.plan_name}{f' [profile {profile}]' if profile else ''} · {session.target} · {format_duration(session.run_seconds())}"
      f" · {session.end_reason or 'running'}")
    w("")
    head = f"{'endpoint':<36} {'requests':>9} {'rps':>9} {'err %':>7} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}"
    w(head)
    w("─" * len(head))
    for e in sorted(session.endpoint_summaries(), key=lambda e: -e.requests):
        w(f"{e.name[:36]:<36} {e.requests:>9,} {e.rps:>9,.1f} {e.error_rate * 100:>7.2f} "
          + " ".join(f"{c:>8}" for c in _lat_cells(e)))
    w("─" * len(head))
    s = doc_summary
    w(f"{'all':<36} {s.requests:>9,} {s.rps:>9,.1f} {s.error_rate * 100:>7.2f} "
      + " ".join(f"{c:>8}" for c in _lat_cells(s)))
    w("")
    l, sv = s.latency_ms, s.service_time_ms
    w("latency (from intended start)  " + "  ".join(
        f"{k} {format_ms(getattr(l, k))}" for k in ("min", "mean", "p50", "p90", "p95", "p99", "p999", "max")))
    w("service time (from send)       " + "  ".join(
        f"{k} {format_ms(getattr(sv, k))}" for k in ("min", "mean", "p50", "p90", "p95", "p99", "p999", "max")))
    if s.status_codes:
        w("status codes   " + "  ".join(f"{k}: {format_count(v)}" for k, v in s.status_codes.items()))
    if s.error_kinds:
        w("error kinds    " + "  ".join(f"{k}: {format_count(v)}" for k, v in s.error_kinds.items()))
    w(f"late starts    {s.late_starts:,}    dropped arrivals {s.dropped:,}    iterations {session.iterations:,}")
    if s.error_kinds.get("interrupted"):
        w(f"interrupted    {s.error_kinds['interrupted']:,} request(s) still in flight when the run ended, after its"
          " grace period (defaults.graceful_stop); counted as errors")
    asked = session.asked_arrivals()
    if asked:  # open model: asked vs started, and why
        stalls = sum(r.stalls for r in session.timeline)
        w(f"arrivals       asked ~{asked:,.0f}    started {session.iterations:,} ({session.iterations / asked:.1%})"
          f"    late {s.late_starts:,}    dropped {s.dropped:,}"
          + (f"    worker loop stalls {stalls:,}" if stalls else ""))
    out.extend(protocol_lines(session))
    out.extend(benchmark_lines(session.benchmark, session.endpoint_summaries()))
    out.extend(stage_lines(session.setup, session.teardown))
    out.extend(limit_summary_lines(session.find_limit))  # a breaking-point search: its steps and verdict
    out.extend(summary_lines(session))  # target health/metrics, SUT process, generator-limited intervals
    out.extend(node_lines(session.generator.nodes))  # --cluster: each node's share and health
    warnings = [e for e in session.events if e.kind in ("worker", "warning", "node")]
    for e in warnings[-5:]:
        w(f"! {format_duration(max(0.0, e.t))}: {e.message}")
    out.extend(slo_summary_lines(session.slo_results))
    if session.threshold_results:
        w("")
        w("thresholds")
        for r in session.threshold_results:
            mark = "✓ pass" if r.ok else "✗ FAIL"
            val = r.detail or ("-" if r.value is None else f"{r.value:g}")
            w(f"  {mark}  {r.expr:<40} {val}")
    return printable_lines("\n".join(out))


class LineWriter:
    """Prints from a thread, so a terminal that stops reading (a frozen SSH link) never blocks
    the coordinator's event loop: past ``MAX_QUEUED`` lines, lines are dropped and counted. A
    terminal that is gone (EIO, EPIPE) ends the printing, not the run."""

    MAX_QUEUED = 1000

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.dropped = 0
        self.broken = False
        self._queue: queue.Queue[str | None] = queue.Queue(self.MAX_QUEUED)
        self._thread = threading.Thread(target=self._run, name="perftui-output", daemon=True)
        self._thread.start()

    def write(self, line: str) -> None:
        if self.broken:
            return
        try:
            self._queue.put_nowait(printable_lines(line))  # no control character reaches the terminal
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while (line := self._queue.get()) is not None:
            if self.broken:
                continue
            try:
                if self.dropped:
                    n, self.dropped = self.dropped, 0
                    print(f"… {n} line(s) not shown: the terminal did not keep up", file=self.stream)
                print(line, file=self.stream, flush=self._queue.empty())
            except (OSError, ValueError):
                self.broken = True  # the terminal is gone: keep draining, print nothing

    def close(self, timeout: float = 3.0) -> None:
        """Flush what is queued (bounded: a stuck terminal is not waited for)."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)
        if not self.broken:
            try:
                self.stream.flush()
            except (OSError, ValueError):
                pass


class HeadlessRun:
    def __init__(self, loaded: LoadedPlan, *, workers: int | None, out: str | None,
                 stream: TextIO = sys.stdout, quiet: bool = False, reveal_secrets: bool = False,
                 serve: bool = False, session_id: str | None = None, after=None, observers=()):
        self.loaded = loaded
        self.observers = tuple(observers)
        """``SessionObserver``s to follow the run's session (``--metrics-port``'s exporter)."""
        # after(document: dict, path) -> exit code: end-of-run outputs (baseline comparison,
        # reports) that the command line asked for; see perftui.cli
        self.after = after
        self.workers = workers
        self.out = out
        self.stream = stream
        self.output = LineWriter(stream)
        self.quiet = quiet
        self.reveal_secrets = reveal_secrets
        self.interrupted = False
        self.signals = 0
        self.last_signal = ""
        self.coord: Coordinator | None = None
        self.target: Target | None = None
        self.serve = serve
        self.session_id = session_id
        self._events_shown = 0
        self._row_shown: float | None = None

    def _print(self, text: str) -> None:
        self.output.write(text)

    def _progress(self, session=None, state: str = "") -> None:
        coord = self.coord
        events = coord.session.events
        for ev in events[self._events_shown:]:
            if ev.kind in ("worker", "warning", "phase", "pause", "resume", "rate", "vus", "annotation", "health", "generator",
                           "setup", "teardown", "benchmark", "limit", "cluster", "node", "slo", "threshold"):
                self._print(f"{'!' if ev.kind in ('worker', 'warning', 'health', 'generator', 'node', 'slo', 'threshold') else '·'} {format_duration(max(0.0, ev.t), exact=True):>6}  {ev.message}")
        self._events_shown = len(events)
        timeline = coord.session.timeline
        # the run's last, partial second too (its row closes as the run finishes); once
        if timeline and timeline[-1].t != self._row_shown:
            self._row_shown = timeline[-1].t
            self._print(progress_line(coord))
        elif coord.state != "finished" and not timeline:
            self._print(progress_line(coord))

    def _on_signal(self, signame: str) -> None:
        self.signals += 1
        self.interrupted = True
        self.last_signal = signame
        coord = self.coord
        if coord is None:
            return
        if self.signals == 1:
            self._print(f"\n{signame}: stopping gracefully (again to stop at once)…")
            asyncio.ensure_future(coord.stop(f"interrupted ({signame})", grace=1.0))
        else:
            self._print(f"{signame}: stopping now")
            coord.kill_workers()
            asyncio.ensure_future(coord.stop(f"interrupted ({signame}, forced)", grace=0.0))

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self._on_signal, sig.name)
        try:
            self.target = await loop.run_in_executor(None, resolve_target, self.loaded)
            coord = self.coord = Coordinator(self.loaded, self.target.url, workers=self.workers,
                                            reveal_secrets=self.reveal_secrets, sessions_dir=sessions_dir(),
                                            session_id=self.session_id)
            if not self.quiet:
                plan = self.loaded.plan
                if plan.find_limit is not None:
                    load = plan_line(plan)
                elif coord.session.benchmark:
                    load = f"benchmark of {len(coord.specs)} operation(s)"
                else:
                    load = f"{len(coord.specs)} phase(s), {format_duration(sum(s.duration for s in coord.specs), exact=True)} planned"
                shown = f"{plan.name} [profile {plan.profile}]" if plan.profile else plan.name
                self._print(f"perftui · {shown} → {shown_target(plan, coord.session.target)} · {load} · "
                            f"{coord.worker_count} worker(s)")
                coord.session.add_observer(OnInterval(self._progress))
            for ob in self.observers:
                coord.session.add_observer(ob, state=coord.state)
            if self.interrupted:  # a signal arrived while the target was starting: no load sent
                await coord.stop(f"interrupted ({self.last_signal}) before the run started")
            server = None
            if self.serve:
                from perftui.run.attach import ControlServer, socket_dir

                server = ControlServer(coord, socket_dir() / f"{coord.session.id}.sock")
                await server.start()
            await coord.start()
            if server is not None and coord.journal is not None:
                coord.journal.write_info(socket=str(server.path))
            await coord.finished.wait()
            if server is not None:
                await server.close()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            if self.coord is not None:
                self.coord.kill_workers()
            if self.target is not None:
                self.target.close()
        session = self.coord.session
        # the file first: a terminal that went away must not cost the results
        path, note = save_session(session, self.out, self.coord.session_file)
        self._print(summary_text(session))
        if note:
            self._print(f"! {note}")
        if path is not None:
            self._print(f"\nsession written to {path}" + ("  (partial)" if session.partial else ""))
        else:
            self._print("\nperftui: the session could not be written anywhere (see above)")
        self.output.close()
        code = exit_code(session, self.interrupted)
        if self.after is not None:
            import json

            extra = self.after(json.loads(session.to_json()), path)
            code = code or extra
        return code


def run_headless(loaded: LoadedPlan, **kwargs) -> int:
    run = HeadlessRun(loaded, **kwargs)
    try:
        import uvloop

        return uvloop.run(run.run())
    except ImportError:  # pragma: no cover
        return asyncio.run(run.run())
