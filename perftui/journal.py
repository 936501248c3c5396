"""Sessions on disk, while they run: an append-only journal plus periodic checkpoints.

Each run has a directory in the sessions directory, ``<id>-<plan>/``:

- ``journal.ndjson`` — append-only, one JSON object per line: a ``header`` (plan, target, start
  time), then every timeline ``row`` (one per second) and every ``event``, flushed as they happen.
- ``checkpoint.msgpack`` — replaced atomically every ``CHECKPOINT_EVERY`` seconds: the cumulative
  histograms and counters (overall and per endpoint) that the rows do not carry.
- ``run.json`` — who runs it (pid, control socket when detached) and its state.
- ``session.json`` — the final session document, written when the run ends.

After a ``kill -9`` or a crash, ``recover()`` rebuilds the session document from the newest
checkpoint plus the journal: at most the last few seconds are lost, and the document says
``partial: true`` with an ``end_reason`` stating what is known. The same ``Checkpoint`` is what
an attaching dashboard receives first (``perftui.run.attach``), so recovery and attach share one path.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import msgspec
from msgspec import Struct

from perftui.aggregate import Aggregate, decode_histogram, encode_histogram
from perftui.session.stages import restore_stages, stage_extensions
from perftui.session.timeline import Timeline
from perftui.session import (
    WINDOW_SECONDS, Event, GeneratorState, PhaseRecord, SessionObserver, SessionRecord, TimelineRow,
)

CHECKPOINT_EVERY = 2.0
JOURNAL = "journal.ndjson"
CHECKPOINT = "checkpoint.msgpack"
RUN_INFO = "run.json"
FINAL = "session.json"


class AggState(Struct, array_like=True):
    requests: int
    errors: int
    status: dict[int, int]
    error_kinds: dict[str, int]
    latency: bytes
    service: bytes
    latency_sum: float
    service_sum: float
    bytes_received: int
    late_starts: int
    dropped: int


def dump_aggregate(a: Aggregate) -> AggState:
    return AggState(
        requests=a.requests, errors=a.errors, status=dict(a.status), error_kinds=dict(a.error_kinds),
        latency=encode_histogram(a.latency) if a.latency.total_count else b"",
        service=encode_histogram(a.service) if a.service.total_count else b"",
        latency_sum=a.latency_sum, service_sum=a.service_sum, bytes_received=a.bytes_received,
        late_starts=a.late_starts, dropped=a.dropped,
    )


def load_aggregate(st: AggState, into: Aggregate | None = None) -> Aggregate:
    a = into or Aggregate()
    a.clear()
    a.requests, a.errors = st.requests, st.errors
    a.status.update(st.status)
    a.error_kinds.update(st.error_kinds)
    if st.latency:
        a.latency.add(decode_histogram(st.latency))
    if st.service:
        a.service.add(decode_histogram(st.service))
    a.latency_sum, a.service_sum = st.latency_sum, st.service_sum
    a.bytes_received, a.late_starts, a.dropped = st.bytes_received, st.late_starts, st.dropped
    return a


class Checkpoint(Struct, kw_only=True):
    """Everything needed to rebuild a SessionRecord except (optionally) the timeline."""

    id: str
    plan_name: str
    plan_file: str | None
    plan: dict[str, Any]
    target: str
    workers: int
    started_wall: float | None
    started_mono: float | None
    elapsed: float
    """Seconds since start when the checkpoint was taken."""
    total: AggState
    second: AggState
    window: list[AggState]
    endpoints: dict[str, AggState]
    endpoint_window: dict[str, list[int]]
    phases: list[PhaseRecord]
    generator: GeneratorState
    iterations: int
    last_errors: list[str]
    threshold_results: list[Any]
    events: list[Event] = []
    timeline: list[TimelineRow] = []
    resolution: float = 1.0
    pending: list[TimelineRow] = []
    boundary: float = 0.0
    end_reason: str = ""
    partial: bool = True
    ended_wall: float | None = None
    extensions: dict[str, Any] = {}
    slo_results: list[Any] = []
    """``perftui.slo.SloResult`` per ``[[slos]]`` entry, as of the checkpoint."""
    endpoint_protocol: dict[str, str] = {}
    roles: dict[str, str] | None = None
    """The record's protocol roles (``SessionRecord.roles``); None in checkpoints written before
    they were recorded."""


def _window_states(session: SessionRecord, cache: dict[int, tuple[object, AggState]] | None) -> list[AggState]:
    """The 10 s window's seconds, encoded. A second in the window is closed and never changes, so
    with a ``cache`` (kept by the caller between checkpoints) each is encoded once, not once per
    checkpoint; entries are keyed by the window's own (time, aggregate) tuple, held in the cache so
    its id cannot be reused while the entry lives."""
    if cache is None:
        return [dump_aggregate(a) for _, a in session.window]
    out, live = [], {}
    for entry in session.window:
        hit = cache.get(id(entry))
        state = hit[1] if hit is not None and hit[0] is entry else dump_aggregate(entry[1])
        live[id(entry)] = (entry, state)
        out.append(state)
    cache.clear()
    cache.update(live)
    return out


def capture(session: SessionRecord, *, with_timeline: bool,
            window_cache: dict[int, tuple[object, AggState]] | None = None) -> Checkpoint:
    return Checkpoint(
        id=session.id, plan_name=session.plan_name, plan_file=session.plan_file, plan=session.plan_dict,
        target=session.target, workers=session.workers, started_wall=session.started_wall,
        started_mono=session.started_mono, elapsed=session.elapsed(),
        total=dump_aggregate(session.total), second=dump_aggregate(session.second),
        window=_window_states(session, window_cache),
        endpoints={k: dump_aggregate(a) for k, a in session.endpoints.items()},
        endpoint_window={k: list(v) for k, v in session.endpoint_window.items()},
        endpoint_protocol=dict(session.endpoint_protocol),
        phases=session.phases, generator=session.generator, iterations=session.iterations,
        last_errors=list(session.last_errors),
        threshold_results=[msgspec.to_builtins(r) for r in session.threshold_results],
        slo_results=[msgspec.to_builtins(r) for r in session.slo_results],
        events=list(session.events) if with_timeline else [],
        timeline=list(session.timeline) if with_timeline else [],
        resolution=session.resolution, pending=list(session._pending) if with_timeline else [],
        boundary=session.boundary, end_reason=session.end_reason, partial=session.partial,
        ended_wall=session.ended_wall, roles=dict(session.roles),
        extensions={**stage_extensions(session),
                    **({"find_limit": msgspec.to_builtins(session.find_limit)} if session.find_limit is not None else {})},
    )


def restore(cp: Checkpoint) -> SessionRecord:
    from perftui.thresholds import ThresholdResult

    s = SessionRecord(plan_name=cp.plan_name, plan_file=cp.plan_file, plan_dict=cp.plan, target=cp.target,
                      workers=cp.workers, phases=cp.phases, session_id=cp.id,
                      roles=cp.roles if cp.roles is not None else _older_roles(cp.plan))
    s.started_wall, s.started_mono = cp.started_wall, cp.started_mono
    load_aggregate(cp.total, s.total)
    load_aggregate(cp.second, s.second)
    for st in cp.window:
        s.window.append((0.0, load_aggregate(st)))
    for name, st in cp.endpoints.items():
        s.endpoints[name] = load_aggregate(st)
    from collections import deque

    for name in cp.endpoints:
        s.endpoint_window[name] = deque(cp.endpoint_window.get(name, []), maxlen=WINDOW_SECONDS)
    s.endpoint_protocol.update(cp.endpoint_protocol)
    s.generator = cp.generator
    s.iterations = cp.iterations
    s.last_errors.extend(cp.last_errors)
    s.threshold_results = [msgspec.convert(r, ThresholdResult) for r in cp.threshold_results]
    from perftui.slo import SloResult

    s.slo_results = [msgspec.convert(r, SloResult) for r in cp.slo_results]
    s.events = list(cp.events)
    s.timeline = Timeline(cp.timeline)
    s.resolution = cp.resolution
    s._pending = list(cp.pending)
    s.boundary = cp.boundary
    s.end_reason, s.partial, s.ended_wall = cp.end_reason, cp.partial, cp.ended_wall
    restore_stages(s, cp.extensions)
    if cp.extensions.get("find_limit") is not None:
        from perftui.session.limit import FindLimitDocument

        s.find_limit = msgspec.convert(cp.extensions["find_limit"], FindLimitDocument)
    return s


def _older_roles(plan: dict[str, Any]) -> dict[str, str]:
    """Protocol roles for a session journaled before checkpoints and headers carried them: derived
    from the recorded (redacted) plan, as perftui then did."""
    from perftui.plan import Plan, protocol_endpoints

    try:
        return protocol_endpoints(msgspec.convert(plan, Plan))
    except (msgspec.ValidationError, TypeError, ValueError):
        return {}


_encoder = msgspec.msgpack.Encoder()
_json = msgspec.json.Encoder()


def session_directory(sessions_dir: Path, session: SessionRecord) -> Path:
    return directory_for(sessions_dir, session.id, session.plan_name)


def directory_for(sessions_dir: Path, session_id: str, plan_name: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", plan_name).strip("-") or "plan"
    return sessions_dir / f"{session_id}-{slug}"


def _atomic_write(path: Path, data: bytes) -> None:
    """Temp file + fsync + rename; the file is user-only (0600) like its directory (0700)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with open(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)  # a full disk must not also keep a half-written temp file
        except OSError:
            pass
        raise


class JournalWriter(SessionObserver):
    """Session observer that keeps the on-disk journal and checkpoint current.

    Creating it fails (``OSError``) when the directory cannot be written. Once the run goes, a
    failing disk (full, read-only, gone) never stops the run: the first failure becomes a
    ``warning`` event (on screen and in the record), journaling stops, and the run goes on in
    memory; ``finish`` then returns None and the caller writes the document elsewhere."""

    def __init__(self, session: SessionRecord, directory: Path, *, pid: int | None = None,
                 socket_path: str | None = None):
        self.session = session
        self.dir = directory
        self.error = ""
        """Why journaling stopped ('' while it works)."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)
        self._file = open(os.open(self.dir / JOURNAL, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab",
                          buffering=0)
        self._last_checkpoint = 0.0
        self._window_cache: dict[int, tuple[object, AggState]] = {}
        self.info: dict[str, Any] = {"id": session.id, "plan_name": session.plan_name, "plan_file": session.plan_file,
                                     "profile": session.plan_dict.get("profile", ""), "target": session.target, "pid": pid or os.getpid(), "socket": socket_path,
                                     "state": "starting", "started_at": None, "ended_at": None}
        try:
            self._write_info()
            self._file.write(_json.encode(self._header()) + b"\n")
        except OSError:
            self._file.close()
            raise
        session.add_observer(self)

    def _header(self) -> dict:
        s = self.session
        return {"k": "header", "id": s.id, "plan_name": s.plan_name, "plan_file": s.plan_file, "plan": s.plan_dict,
                "target": s.target, "workers": s.workers, "phases": msgspec.to_builtins(s.phases),
                "roles": s.roles}

    def _failed(self, exc: OSError) -> None:
        """The first write that fails ends journaling, not the run."""
        if self.error:
            return
        self.error = f"{exc.strerror or exc}"
        try:
            self._file.close()
        except OSError:
            pass
        self.session.event("warning", f"journal stopped: cannot write to {self.dir}: {self.error}; "
                                      "the run goes on in memory and its document is written at the end")

    def _write_info(self) -> None:
        _atomic_write(self.dir / RUN_INFO, json.dumps(self.info, indent=1).encode())

    def write_info(self, **changes) -> None:
        self.info.update(changes)
        if self.error:
            return
        try:
            self._write_info()
        except OSError as exc:
            self._failed(exc)

    def _append(self, obj: dict) -> None:
        if self.error or self._file.closed:
            return
        try:
            self._file.write(_json.encode(obj) + b"\n")
        except OSError as exc:
            self._failed(exc)

    def on_event(self, ev: Event) -> None:
        if ev.kind == "start" and self.info["state"] == "starting":
            self.write_info(state="running", started_at=self.session.started_wall)
            self._append({"k": "started", "started_wall": self.session.started_wall,
                          "started_mono": self.session.started_mono})
        self._append({"k": "event", **msgspec.to_builtins(ev)})

    def on_tick(self, now, phase, target_rps, target_vus, final, row: TimelineRow) -> None:
        self._append({"k": "row", **msgspec.to_builtins(row)})
        if final or now - self._last_checkpoint >= CHECKPOINT_EVERY:
            self.checkpoint()
            self._last_checkpoint = now

    def checkpoint(self) -> None:
        if self.error:
            return
        try:
            cp = capture(self.session, with_timeline=False, window_cache=self._window_cache)
            _atomic_write(self.dir / CHECKPOINT, _encoder.encode(cp))
        except OSError as exc:
            self._failed(exc)

    def finish(self, final_json: bytes | None = None) -> Path | None:
        """The run ended: final document, closed journal, state 'finished'. Returns where the
        document went, or None when the disk failed (the caller writes it elsewhere)."""
        self.session.remove_observer(self)
        self.checkpoint()
        path: Path | None = self.dir / FINAL
        if self.error:
            path = None
        else:
            try:
                # the journal's own warning must be in the document: serialise after it
                _atomic_write(path, final_json if final_json is not None else self.session.to_json())
            except OSError as exc:
                self._failed(exc)
                path = None
        self._append({"k": "end", "end_reason": self.session.end_reason, "partial": self.session.partial})
        if not self._file.closed:
            self._file.close()
        self.write_info(state="finished", ended_at=time.time(), end_reason=self.session.end_reason, socket=None)
        return path


def read_journal(directory: Path) -> tuple[dict | None, list[TimelineRow], list[Event], dict | None]:
    """(header, rows, events, end marker) from a journal; a torn last line is ignored."""
    header, rows, events, end = None, [], [], None
    path = directory / JOURNAL
    if not path.exists():
        return None, [], [], None
    with open(path, "rb") as f:
        for line in f:
            try:
                obj = json.loads(line)
            except ValueError:
                continue  # the line being written when the process died
            kind = obj.pop("k", None)
            if kind == "header":
                header = obj
            elif kind == "row":
                rows.append(msgspec.convert(obj, TimelineRow))
            elif kind == "event":
                events.append(msgspec.convert(obj, Event))
            elif kind == "started":
                if header is not None:
                    header.update(obj)
            elif kind == "end":
                end = obj
    return header, rows, events, end


def recover(directory: Path) -> SessionRecord:
    """Rebuild a session from its directory after an unclean exit.

    The document is consistent with one checkpoint: its totals, endpoints, thresholds (evaluated
    again here, on those totals), timeline and events all stop at the second the checkpoint was
    taken (at most ``CHECKPOINT_EVERY`` s plus the current second before the death), and its
    ``duration_s`` and rates are the run's true ones up to there. ``recovered`` says so."""
    from perftui.errors import UserError

    directory = Path(directory)
    if directory.is_file():
        directory = directory.parent
    header, rows, events, end = read_journal(directory)
    cp_path = directory / CHECKPOINT
    if header is None and not cp_path.exists():
        raise UserError(f"{directory}: not a perftui session directory (no {JOURNAL} or {CHECKPOINT})")
    if cp_path.exists():
        try:
            cp = msgspec.msgpack.decode(cp_path.read_bytes(), type=Checkpoint)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UserError(f"{cp_path}: unreadable checkpoint ({exc})") from None
        session = restore(cp)
        checkpoint_at = cp.elapsed
        # the rows the checkpoint's totals include: those closed before it was taken
        rows = [r for r in rows if r.t <= checkpoint_at + 1e-6]
    else:
        session = SessionRecord(plan_name=header["plan_name"], plan_file=header.get("plan_file"),
                                plan_dict=header.get("plan", {}), target=header.get("target", ""),
                                workers=header.get("workers", 0),
                                phases=[msgspec.convert(p, PhaseRecord) for p in header.get("phases", [])],
                                session_id=header.get("id"),
                                roles=header["roles"] if "roles" in header else _older_roles(header.get("plan", {})))
        session.started_wall = (header or {}).get("started_wall")
        checkpoint_at = None
        rows = []  # no totals to agree with: an empty record rather than a timeline that lies
    session.timeline, session.resolution, session._pending = Timeline(), 1.0, []
    for row in rows:
        session._append_row(row)
    last_t = rows[-1].t if rows else (checkpoint_at or 0.0)
    session.events = [e for e in events if e.t <= last_t + 1.0]
    info = _read_info(directory)
    session.started_mono = None  # elapsed() is meaningless in another process
    session.fixed_span = last_t
    if session.started_wall is not None:
        session.ended_wall = session.started_wall + last_t
    dead = False
    if end is not None:
        session.end_reason = end.get("end_reason", "")
        session.partial = bool(end.get("partial", True))
    else:
        pid = info.get("pid")
        dead = not (pid and _alive(pid))
        what = "the perftui process died" if dead else "the run was not finished"
        session.partial = True
        session.recovered = True
        cp_note = f"; statistics from the checkpoint at {checkpoint_at:.0f}s" if checkpoint_at is not None else ""
        session.end_reason = (f"recovered: {what} (kill -9, crash or power loss) after {last_t:.0f}s; "
                              f"timeline up to {last_t:.0f}s{cp_note}")
    _evaluate_thresholds(session)
    if session.recovered and session.find_limit is not None:
        session.find_limit.cut_short("the run died")
    if dead and info:
        # the run is over: `ls` shows it recovered, with a length that no longer grows
        info.update(state="recovered", ended_at=session.ended_wall or info.get("started_at"),
                    end_reason=session.end_reason, socket=None)
        try:
            _atomic_write(directory / RUN_INFO, json.dumps(info, indent=1).encode())
        except OSError:
            pass  # the document is what matters; the caller writes it
    return session


def _evaluate_thresholds(session: SessionRecord) -> None:
    """The plan's thresholds on the recovered totals (the checkpoint's own verdicts date from
    the second before it)."""
    from perftui.thresholds import METRICS, evaluate, parse_threshold

    exprs = session.plan_dict.get("thresholds") or []
    if not all(isinstance(t, str) for t in exprs):
        return  # windows and aborts were judged second by second: keep the checkpoint's verdicts
    try:
        parsed = [parse_threshold(t) for t in exprs]
    except Exception:  # noqa: BLE001 - keep the checkpoint's verdicts
        return
    if any(t.metric.startswith(("slo.", "target.", "host.", "series", "health.")) for t in parsed):
        return  # judged from per-second data the journal does not keep
    if not parsed:
        return
    overall = session.summary()
    eps = {e.name: e for e in session.endpoint_summaries()}
    extra = session.protocol_extra() if any(t.metric not in METRICS for t in parsed) else {}
    session.threshold_results = [evaluate(t, overall, eps, extra) for t in parsed]


def _read_info(directory: Path) -> dict:
    try:
        return json.loads((directory / RUN_INFO).read_text())
    except (OSError, ValueError):
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SessionEntry(Struct, kw_only=True):
    id: str
    plan_name: str
    state: str
    """running, finished, dead (process gone without finishing: recover it), or recovered
    (``perftui recover`` rebuilt its document)."""
    directory: str
    started_at: float | None
    ended_at: float | None
    pid: int | None
    socket: str | None
    end_reason: str = ""
    profile: str = ""
    """The plan's profile that ran (``--profile``), "" for none."""


def list_sessions(sessions_dir: Path) -> list[SessionEntry]:
    out = []
    if not sessions_dir.is_dir():
        return out
    for d in sorted(sessions_dir.iterdir()):
        if not d.is_dir():
            continue
        info = _read_info(d)
        if not info:
            continue
        state = info.get("state", "?")
        if state in ("starting", "running") and not _alive(info.get("pid") or 0):
            state = "dead"
        out.append(SessionEntry(id=info.get("id", d.name), plan_name=info.get("plan_name", ""), state=state,
                                directory=str(d), started_at=info.get("started_at"), ended_at=info.get("ended_at"),
                                pid=info.get("pid"), socket=info.get("socket") if state == "running" else None,
                                end_reason=info.get("end_reason", ""), profile=str(info.get("profile") or "")))
    return out
