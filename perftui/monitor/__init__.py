"""Monitoring while the load runs: the target's health and metrics, a local SUT process, and
perftui's own health (is the generator the bottleneck?).

- ``perftui.monitor.target``: health checks and metrics scrapes over HTTP (httpx).
- ``perftui.monitor.metrics``: Prometheus selectors, series extraction, counter rates.
- ``perftui.monitor.process``: psutil sampling of perftui's processes, the machine, the SUT.
- ``perftui.monitor.health``: generator-bottleneck detection.
- ``perftui.monitor.pg``: PostgreSQL servers (``[monitor] postgres``) as ``db.NAME.*`` series.
- ``perftui.monitor.state``: ``MonitorState``, kept on the session (``SessionRecord.monitor``);
  the dashboard reads it. ``MonitoredRun`` is what monitoring needs of the session (a Protocol:
  this package never imports ``perftui.session``, which builds on it).
- ``perftui.monitor.report``: lines for the headless progress output and summary.

``Monitor`` wires them up for one run: the coordinator creates it, starts it with the run and
stops it at the end. All of it runs in the perftui process, never in the workers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from msgspec import UNSET

from perftui.monitor.health import Limits
from perftui.monitor.model import GeneratorWarning, HealthState, HealthTransition, MonitorRow
from perftui.monitor.state import MonitoredRun, MonitorState, series
from perftui.units import parse_duration

if TYPE_CHECKING:  # pragma: no cover
    from perftui.plan import Monitor as MonitorConfig

__all__ = ["GeneratorWarning", "HealthState", "HealthTransition", "Monitor", "MonitorRow", "MonitoredRun",
           "MonitorState", "limits_from", "series", "series_specs"]

PROCESS_INTERVAL_S = 1.0


def limits_from(config: MonitorConfig) -> Limits:
    g = config.generator
    return Limits(cpu_percent=float(g.cpu_percent), cpu_for_s=parse_duration(g.cpu_for),
                  loop_lag_ms=parse_duration(g.loop_lag) * 1000, schedule_lag_ms=parse_duration(g.schedule_lag) * 1000)


def health_urls(config: MonitorConfig) -> list[str]:
    return [config.health] if isinstance(config.health, str) else list(config.health)


def series_specs(config: MonitorConfig) -> list:
    """The plan's ``series`` as ``SeriesSpec`` objects (validated by the plan loader already)."""
    from perftui.jsonpath import compile_path
    from perftui.monitor.metrics import SeriesSpec, parse_selector

    specs = []
    for entry in config.series:
        if isinstance(entry, str):
            specs.append(SeriesSpec(name=entry.strip(), selector=parse_selector(entry), source=entry.strip()))
            continue
        source = entry.select if entry.select is not UNSET else entry.json
        specs.append(SeriesSpec(
            name=entry.name or source.strip(),
            selector=parse_selector(entry.select) if entry.select is not UNSET else None,
            json=compile_path(entry.json) if entry.json is not UNSET else None,
            rate=None if entry.rate is UNSET else entry.rate,
            scale=entry.scale,
            quantile=None if entry.quantile is UNSET else entry.quantile,
            source=source.strip(),
        ))
    return specs


class Monitor:
    """One run's monitoring. ``own_pids`` returns perftui's processes as (label, pid) pairs."""

    def __init__(self, config: MonitorConfig, *, target: str, session: MonitoredRun,
                 own_pids: Callable[[], list[tuple[str, int]]], tls_verify: bool = True,
                 databases: Mapping[str, Any] | None = None):
        from perftui.monitor.target import resolve_url

        self.config = config
        self.target = target
        self.session = session
        self.own_pids = own_pids
        self.tls_verify = tls_verify
        self.health = [(u, resolve_url(u, target)) for u in health_urls(config)]
        self.metrics_url = resolve_url(config.metrics, target) if config.metrics else None
        self.interval = parse_duration(config.interval)
        self.timeout = parse_duration(config.timeout)
        self.process = None if config.process is UNSET else config.process
        pg = [config.postgres] if isinstance(config.postgres, str) else list(config.postgres)
        self.postgres = [(name, databases[name].dsn) for name in pg if databases and name in databases]
        """(name, DSN) of each database to sample (``perftui.monitor.pg``)."""
        self.state: MonitorState = session.monitor
        self.state.configure(health=self.health, metrics_url=self.metrics_url, interval_s=self.interval,
                             limits=limits_from(config),
                             process_spec=None if self.process is None else str(self.process),
                             databases=[name for name, _ in self.postgres])
        self._tasks: list[asyncio.Task] = []
        self._sampler = None

    def _clock(self) -> float:
        return round(self.session.elapsed(), 3)

    def start(self) -> None:
        """Start polling and sampling (call once the session has started)."""
        if self._tasks:
            return
        from perftui.monitor.process import ProcessSampler

        self._sampler = ProcessSampler(own=self.own_pids, sut=self.process, target=self.target)
        self._sampler.prime()
        self._tasks.append(asyncio.ensure_future(self._sample_processes()))
        if self.health or self.metrics_url:
            from perftui.monitor.metrics import SeriesReader
            from perftui.monitor.target import TargetProbe

            probe = TargetProbe(health=self.health, metrics_url=self.metrics_url,
                                metrics_format=self.config.metrics_format, reader=SeriesReader(series_specs(self.config)),
                                interval=self.interval, timeout=self.timeout, headers=dict(self.config.headers),
                                verify=self.tls_verify, clock=self._clock, apply=self.state.apply,
                                warn=lambda message: self.state.emit("warning", message))
            self._tasks.append(asyncio.ensure_future(probe.run()))
        if self.postgres:
            from perftui.monitor.pg import PgProbe

            for name, dsn in self.postgres:
                pg = PgProbe(name, dsn, interval=self.interval, timeout=self.timeout, clock=self._clock,
                             apply=self.state.apply)
                self._tasks.append(asyncio.ensure_future(pg.run()))

    async def _sample_processes(self) -> None:
        """Sample just before each timeline second closes, so every row has a fresh sample."""
        started = self.session.started_mono or time.monotonic()
        k = 1
        while True:
            due = started + k * PROCESS_INTERVAL_S - 0.1
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            else:
                k = int((now - started + 0.1) / PROCESS_INTERVAL_S) + 1
                continue
            k += 1
            t = self._clock()
            try:
                sample = await asyncio.to_thread(self._sampler.sample, t)
            except Exception:  # noqa: BLE001 - a psutil surprise must not end monitoring
                continue
            self.state.apply(sample)

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
