"""One plan's run inside the dashboard: the target, the coordinator, the session file.

The dashboard screen drives a ``RunController`` and reads it through one view per tick
(``perftui.ui.view.build_view``); ``app.run_dashboard`` makes sure it is stopped and written
however the app ends (quit, Ctrl-C, SIGHUP, a crash). The engine is reached only through a
``Backend``, whose ``coordinator()`` returns a ``RunControl`` (typed Protocols), so tests can swap
in a scripted coordinator (``tests/ui_fakes.py``).

The coordinator calls ``_on_second`` once per closed timeline second (and at finish): it only bumps
``version``; the screen redraws on its own timers when it sees a new version.

``AttachedController`` is the same surface over a ``perftui.run.attach.RemoteCoordinator``: a run
going on in another process (``perftui attach``). Nothing to resolve or start; leaving detaches.

What the screens show from the plan comes from ``shown``: the plan with its secrets masked
(``perftui.planload.redacted_plan``), never the plan as run.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

import msgspec

from perftui.plan import is_benchmark, shown_target
from perftui.planload import LoadedPlan
from perftui.redact import masker
from perftui.run.clock import PhaseSpec
from perftui.runtime import Target, exit_code, resolve_target, save_session, write_session
from perftui.session import SessionObserver, SessionRecord
from perftui.session.observer import OnInterval
from perftui.ui.plans import is_monitored, shown_plan, uses_protocols

if TYPE_CHECKING:  # the attach client is loaded only by ``perftui attach``
    from perftui.run.attach import RemoteCoordinator

# What the controller is doing besides the coordinator's own state.
PREPARING = "preparing"  # resolving the target (starting the demo server)
READY = "ready"  # coordinator exists (its state says idle/running/paused/finished)
LAUNCHING = "launching"  # starting worker processes
STOPPING = "stopping"  # stop requested, waiting for the final snapshots
FAILED = "failed"  # the target or the workers could not be started


class RunControl(Protocol):
    """The run as the dashboard reads and drives it: ``perftui.run.coordinator.Coordinator``,
    ``perftui.run.attach.RemoteCoordinator`` (a run in another process) or the tests' scripted
    ``FakeCoordinator``. Read-only members are properties here so that a plain attribute and a
    computed one both satisfy it."""

    @property
    def state(self) -> str:
        """idle | running | paused | finished."""
        ...

    @property
    def phase_index(self) -> int: ...

    @property
    def current(self) -> PhaseSpec | None: ...

    @property
    def override(self) -> float | None:
        """The live rate/VU value set with +/- for the current phase (None: the plan's)."""
        ...

    @property
    def worker_count(self) -> int: ...

    specs: list[PhaseSpec]
    session: SessionRecord
    """Its observers' ``on_interval`` runs once per closed timeline second (and at the end)."""
    finished: asyncio.Event

    def current_phase_elapsed(self) -> float: ...

    def target_now(self) -> tuple[float, int]: ...

    async def stop(self, reason: str, *, grace: float | None = None) -> None: ...

    def toggle_pause(self) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def next_phase(self) -> None: ...

    def prev_phase(self) -> None: ...

    def scale_load(self, factor: float) -> float | None: ...

    def annotate(self, text: str) -> None: ...

    def kill_workers(self) -> None: ...


class LocalRunControl(RunControl, Protocol):
    """A run this process starts (not an attached one)."""

    async def start(self) -> None: ...


class Backend(Protocol):
    """How the dashboard reaches the engine (real, or scripted in tests)."""

    def resolve_target(self, loaded: LoadedPlan) -> Target: ...

    def coordinator(self, loaded: LoadedPlan, url: str, *, workers: int | None,
                    reveal_secrets: bool) -> LocalRunControl: ...

    def process_stats(self) -> tuple[float, int]:
        """CPU % (of one core) and RSS bytes of this (the UI) process."""
        ...

    def cpu_count(self) -> int | None:
        """Cores of this machine (the machine's CPU % is over all of them)."""
        ...


class EngineBackend:
    """The real engine: ``resolve_target`` (may start the demo server) and ``Coordinator``."""

    def __init__(self) -> None:
        self._proc = None

    def resolve_target(self, loaded: LoadedPlan) -> Target:
        return resolve_target(loaded)

    def coordinator(self, loaded: LoadedPlan, url: str, *, workers: int | None,
                    reveal_secrets: bool) -> LocalRunControl:
        from perftui.run.coordinator import Coordinator

        from perftui.runtime import sessions_dir

        # journaled like a headless run: listed by `perftui ls`, recoverable after a kill -9
        return Coordinator(loaded, url, workers=workers, reveal_secrets=reveal_secrets, sessions_dir=sessions_dir())

    def process_stats(self) -> tuple[float, int]:
        import psutil

        if self._proc is None:
            self._proc = psutil.Process(os.getpid())
            self._proc.cpu_percent(None)  # the first call only sets the baseline
        with self._proc.oneshot():
            return self._proc.cpu_percent(None), self._proc.memory_info().rss

    def cpu_count(self) -> int | None:
        return os.cpu_count()


@dataclass
class Written:
    path: Path
    final: bool
    """True when written after the run ended (the complete session)."""


class RunController:
    remote = False
    """True for a run going on in another process (``AttachedController``)."""

    def __init__(self, loaded: LoadedPlan, *, workers: int | None = None, out: str | None = None,
                 reveal_secrets: bool = False, backend: Backend | None = None,
                 observers: tuple[SessionObserver, ...] = ()):
        self.loaded = loaded
        self.observers = observers
        """Also follow the run's session (the outputs the command line asked for: ``--metrics-port``)."""
        self.plan = shown_plan(loaded, reveal=reveal_secrets)
        """What the screens show of the plan (secrets masked); the coordinator runs ``loaded``."""
        self.monitored = is_monitored(loaded.plan)
        self.protocols = uses_protocols(loaded.plan)
        self.benchmark = is_benchmark(loaded.plan)
        """A benchmark plan: the dashboard shows its table instead of the endpoints."""
        self.workers = workers
        self.out = out
        self.reveal_secrets = reveal_secrets
        self._mask = masker(() if reveal_secrets else loaded.secrets)
        self.backend: Backend = backend or EngineBackend()
        self.target: Target | None = None
        self.coord: RunControl | None = None
        self._launch: Callable[[], Awaitable[None]] | None = None
        """Starts the workers: the local coordinator's ``start`` (an attached run started itself)."""
        self.status = PREPARING
        self.error = ""
        self.version = 0
        """Bumped whenever there is new data to draw (each closed second, each control action)."""
        self.written: Written | None = None
        self.write_error = ""
        self.interrupted = False
        """True only when a signal (SIGINT/SIGTERM/SIGHUP) ended the run: exit code 130."""
        self.start_wanted = False
        self._stop_task: asyncio.Task | None = None
        self._resolving: asyncio.Future | None = None

    # ---- state ------------------------------------------------------------------------

    @property
    def shown_target(self) -> str:
        """The target URL as the screens show it: any ${ENV} value in it masked."""
        if self.target is None:
            return shown_target(self.plan)
        return shown_target(self.plan, self._mask(self.target.url))

    @property
    def state(self) -> str:
        """idle | running | paused | finished, as the coordinator says (idle before it exists)."""
        return self.coord.state if self.coord is not None else "idle"

    @property
    def started(self) -> bool:
        return self.coord is not None and self.coord.session.started_mono is not None

    @property
    def active(self) -> bool:
        """A run is going (running or paused) and has not been asked to stop."""
        return self.state in ("running", "paused")

    @property
    def ended(self) -> bool:
        """The coordinator has finished stopping (final snapshots folded in)."""
        return self.coord is not None and self.coord.finished.is_set()

    def elapsed(self) -> float:
        """Seconds since the run started (0 before the coordinator exists)."""
        return self.coord.session.elapsed() if self.coord is not None else 0.0

    def touch(self) -> None:
        self.version += 1

    def _on_second(self, session: SessionRecord, state: str) -> None:
        # Called by the coordinator in its clock loop (each closed second, the end): keep it cheap.
        self.version += 1

    def _follow(self, coord: RunControl) -> None:
        coord.session.add_observer(OnInterval(self._on_second))
        for ob in self.observers:
            coord.session.add_observer(ob, state=coord.state)

    # ---- lifecycle --------------------------------------------------------------------

    async def prepare(self) -> None:
        """Resolve the target (blocking ~1 s for the demo: done in a thread), make the coordinator."""
        loop = asyncio.get_running_loop()
        try:
            # shielded: if the app quits meanwhile, close_target still gets the demo server to stop it
            self._resolving = loop.run_in_executor(None, self.backend.resolve_target, self.loaded)
            self.target = await asyncio.shield(self._resolving)
            coord = self.backend.coordinator(self.loaded, self.target.url, workers=self.workers,
                                             reveal_secrets=self.reveal_secrets)
            self.coord, self._launch = coord, coord.start
        except Exception as exc:  # noqa: BLE001 - shown to the user, the app stays up
            self.status = FAILED
            self.error = f"cannot start the target: {exc}"
            self.touch()
            return
        self._follow(self.coord)
        self.status = READY
        self.touch()

    async def start(self) -> bool:
        if self.coord is None or self._launch is None:
            self.start_wanted = self.status == PREPARING
            return False
        if self.state != "idle" or self.status != READY:
            return False
        self.status = LAUNCHING
        self.touch()
        try:
            await self._launch()
        except Exception as exc:  # noqa: BLE001
            self.status = FAILED
            self.error = f"cannot start the workers: {exc}"
            self.coord.kill_workers()
            self.touch()
            return False
        self.status = READY
        self.touch()
        return True

    async def stop(self, reason: str, *, grace: float | None = None) -> None:
        """Stop the run gracefully (idempotent) and wait until the coordinator has finished."""
        if self.coord is None:
            return
        if self.active and self._stop_task is None:
            self.status = STOPPING
            self.touch()
            self._stop_task = asyncio.ensure_future(self.coord.stop(reason, grace=grace))
        if self._stop_task is not None:
            await asyncio.shield(self._stop_task)
            if self.status == STOPPING:
                self.status = READY
            self.touch()

    def force_stop(self, reason: str = "stopped by user (ctrl+c, forced)") -> None:
        """Second Ctrl-C: kill the workers; the stop in progress then ends at once, and says it
        was forced (if the graceful stop has not begun yet, this is the stop)."""
        if self.coord is None:
            return
        self.coord.kill_workers()
        if self._stop_task is None and self.active:
            self.status = STOPPING
            self._stop_task = asyncio.ensure_future(self.coord.stop(reason, grace=0.0))
        elif not self.ended:
            asyncio.ensure_future(self.coord.stop(reason, grace=0.0))  # overrides the graceful reason
        self.touch()

    # ---- session file -----------------------------------------------------------------

    def export(self) -> Path:
        """Write the session as it is now (an ``export`` event first, so the file records it)."""
        session = self.coord.session
        path = self._path()
        session.event("export", f"session exported to {path}")
        self.touch()
        return self._write(final=self.ended)

    def write_final(self) -> Path | None:
        """Write the finished session once (no-op if already written after the end). The
        journal wrote it into the session directory already; ``--out`` gets its own copy, and a
        disk that failed gets the fallback file (``runtime.save_session``)."""
        if not (self.started or self.ended) or (self.written is not None and self.written.final):
            return self.written.path if self.written else None
        if not self.ended:
            return self._write(final=False)
        path, note = save_session(self.coord.session, self.out, getattr(self.coord, "session_file", None))
        self.write_error = note
        if path is None:
            raise OSError(note)
        self.written = Written(path, True)
        return path

    def _path(self) -> Path:
        from perftui.runtime import default_session_path

        return Path(self.out) if self.out else default_session_path(self.coord.session)

    def _write(self, *, final: bool) -> Path:
        try:
            path = write_session(self.coord.session, self.out)
        except OSError as exc:
            self.write_error = f"cannot write the session: {exc}"
            raise
        self.written = Written(path, final)
        self.write_error = ""
        return path

    # ---- end --------------------------------------------------------------------------

    async def shutdown(self, reason: str) -> None:
        """However the app ended: stop a run still going, write it, stop workers and the demo."""
        if self.coord is not None:
            if self.active or self._stop_task is not None:
                try:
                    await asyncio.wait_for(self.stop(reason), timeout=10)
                except asyncio.TimeoutError:
                    self.coord.kill_workers()
            elif not self.ended and getattr(self.coord, "journal", None) is not None:
                # ended while the workers were starting: the journal still gets its end and the
                # (partial) session its file, as at any other moment
                try:
                    await asyncio.wait_for(self.coord.stop(reason, grace=0.0), timeout=10)
                except asyncio.TimeoutError:
                    self.coord.kill_workers()
            try:
                self.write_final()
            except OSError:
                pass
            self.coord.kill_workers()

    async def settle_target(self, timeout: float = 30.0) -> None:
        """Quitting while the demo server was still starting: wait for it, so it can be stopped."""
        fut = self._resolving
        if self.target is None and fut is not None:
            try:
                self.target = await asyncio.wait_for(asyncio.shield(fut), timeout)
            except Exception:  # noqa: BLE001 - it failed to start: nothing to stop
                pass

    def close_target(self) -> None:
        if self.target is not None:
            self.target.close()
            self.target = None

    def exit_code(self) -> int:
        if self.coord is None or not self.started:
            return 130 if self.interrupted else 0
        return exit_code(self.coord.session, self.interrupted)


class AttachedController(RunController):
    """A run going on in another process, through a connected ``RemoteCoordinator``: there is no
    target to resolve and nothing to start; leaving (quit, a signal, the terminal going away)
    detaches and the run goes on. Stopping it is a request to the background run."""

    remote = True

    def __init__(self, remote: RemoteCoordinator, *, backend: Backend | None = None):
        session = remote.session
        loaded = LoadedPlan(plan=remote.plan, path=Path(session.plan_file) if session.plan_file else None)
        super().__init__(loaded, backend=backend)
        # the background run masked its plan already (session.plan_dict); the name comes from there
        self.plan = msgspec.structs.replace(self.plan, name=session.plan_name)
        self.coord = remote
        self.target = Target(remote.target)
        self.status = READY
        self.detached = False
        self._follow(remote)

    @property
    def session_id(self) -> str:
        return self.coord.session.id

    async def prepare(self) -> None:
        self.touch()

    def force_stop(self, reason: str = "") -> None:
        """Not ours to kill: a second Ctrl-C only detaches."""

    def export(self) -> Path:
        """Write the replica as it is now, next to the background run's own files (never over
        its ``session.json``, which that run writes when it ends)."""
        from perftui.runtime import default_session_path

        path = default_session_path(self.coord.session).with_name("attached-export.json")
        try:
            written = write_session(self.coord.session, path)
        except OSError as exc:
            self.write_error = f"cannot write the session: {exc}"
            raise
        self.write_error = ""
        self.touch()
        return written

    def write_final(self) -> Path | None:
        """The background run writes the session file; this only records where it went."""
        f = self.coord.session_file
        if f and (self.written is None or not self.written.final):
            self.written = Written(Path(f), True)
        return self.written.path if self.written else None

    async def shutdown(self, reason: str) -> None:
        if not self.coord.finished.is_set():
            self.detached = True
            await self.coord.detach()

    async def settle_target(self, timeout: float = 30.0) -> None:
        return None

    def close_target(self) -> None:
        """The background run owns its target."""

    def exit_code(self) -> int:
        if self.detached or not self.started or self.coord.state != "finished":
            return 0
        return exit_code(self.coord.session, False)
