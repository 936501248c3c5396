"""PostgreSQL on the run's timeline: ``[monitor] postgres = ["NAME"]`` samples the server behind a
``[databases.NAME]`` entry every ``[monitor].interval``.

One connection of its own (asyncpg, the ``sql`` extra), in the perftui process, never in the
workers; its own backend is left out of the counts. Each sample reads:

- ``pg_stat_activity``: client connections on the whole server by state (``active``, ``idle``,
  ``idle in transaction``, waiting on a lock) and ``max_connections``, so ``connections_percent``
  says how close the server is to refusing connections;
- ``pg_stat_database`` of the DSN's database: commits, rollbacks, deadlocks, blocks read from
  disk and found in shared buffers, rows inserted and returned, turned into per-second rates
  between two samples, and the buffer cache hit ratio over the interval.

They become monitor series named ``db.NAME.<figure>`` (``DbSample``): charted on the dashboard's
target panel beside the target's own metrics, in every timeline row's ``monitor.metrics``, and in
the session's ``monitor.series`` like any named series. A server that cannot be reached is
reported once as an event (and again when it answers) and the run goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from perftui.monitor.model import DbSample, Sample, SeriesInfo

__all__ = ["PgProbe", "SERIES", "series_infos"]

_ACTIVITY = """
SELECT count(*) FILTER (WHERE backend_type = 'client backend') AS connections,
       count(*) FILTER (WHERE backend_type = 'client backend' AND state = 'active') AS active,
       count(*) FILTER (WHERE backend_type = 'client backend' AND state = 'idle') AS idle,
       count(*) FILTER (WHERE backend_type = 'client backend' AND state LIKE 'idle in transaction%') AS idle_in_tx,
       count(*) FILTER (WHERE backend_type = 'client backend' AND wait_event_type = 'Lock') AS waiting_on_lock,
       current_setting('max_connections')::int AS max_connections
FROM pg_stat_activity WHERE pid <> pg_backend_pid()
"""
_DATABASE = """
SELECT xact_commit, xact_rollback, deadlocks, blks_read, blks_hit, tup_inserted, tup_returned, tup_fetched
FROM pg_stat_database WHERE datname = current_database()
"""

SERIES: list[tuple[str, str, str]] = [
    ("connections", "value", "pg_stat_activity: client connections on the server"),
    ("connections_percent", "value", "pg_stat_activity: client connections, % of max_connections"),
    ("active", "value", "pg_stat_activity: connections running a statement"),
    ("idle", "value", "pg_stat_activity: idle connections"),
    ("idle_in_transaction", "value", "pg_stat_activity: connections idle inside a transaction"),
    ("waiting_on_lock", "value", "pg_stat_activity: connections waiting for a lock"),
    ("max_connections", "value", "max_connections"),
    ("commits_per_s", "rate", "pg_stat_database.xact_commit"),
    ("rollbacks_per_s", "rate", "pg_stat_database.xact_rollback"),
    ("deadlocks_per_s", "rate", "pg_stat_database.deadlocks"),
    ("blocks_read_per_s", "rate", "pg_stat_database.blks_read"),
    ("blocks_hit_per_s", "rate", "pg_stat_database.blks_hit"),
    ("cache_hit_percent", "value", "pg_stat_database: blks_hit / (blks_hit + blks_read) over the interval"),
    ("rows_inserted_per_s", "rate", "pg_stat_database.tup_inserted"),
    ("rows_fetched_per_s", "rate", "pg_stat_database.tup_fetched"),
]
"""(figure, kind, source) of every ``db.NAME.<figure>`` series, in chart order."""

_COUNTERS = {"commits_per_s": 0, "rollbacks_per_s": 1, "deadlocks_per_s": 2, "blocks_read_per_s": 3,
             "blocks_hit_per_s": 4, "rows_inserted_per_s": 5, "rows_fetched_per_s": 7}


def series_infos(name: str) -> list[SeriesInfo]:
    return [SeriesInfo(name=f"db.{name}.{fig}", source=src, kind=kind) for fig, kind, src in SERIES]


class PgProbe:
    """Samples one database every ``interval`` until cancelled."""

    def __init__(self, name: str, dsn: str, *, interval: float, timeout: float, clock: Callable[[], float],
                 apply: Callable[[Sample], None]):
        self.name = name
        self.dsn = dsn
        self.interval = interval
        self.timeout = timeout
        self.clock = clock
        self.apply = apply
        self.conn = None
        self._last: tuple[float, list[int]] | None = None
        self._sent_series = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        k = 0
        try:
            while True:
                await self.sample()
                now = loop.time()
                k = max(k + 1, int((now - start) / self.interval) + 1)
                await asyncio.sleep(start + k * self.interval - now)
        finally:
            conn, self.conn = self.conn, None
            if conn is not None:
                conn.terminate()

    async def sample(self) -> None:
        try:
            values = await asyncio.wait_for(self._read(), self.timeout)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - a failing database must not end monitoring
            if self.conn is not None:
                self.conn.terminate()
                self.conn = None
            self._last = None
            self.apply(DbSample(database=self.name, t=self.clock(), ok=False, error=_describe(exc)))
            return
        series = None if self._sent_series else series_infos(self.name)
        self._sent_series = True
        self.apply(DbSample(database=self.name, t=self.clock(), ok=True, values=values, series=series))

    async def _read(self) -> dict[str, float]:
        if self.conn is None or self.conn.is_closed():
            try:
                import asyncpg
            except ImportError:
                raise RuntimeError("needs the PostgreSQL driver: pip install 'perftui[sql]'") from None
            self.conn = await asyncpg.connect(self.dsn, timeout=self.timeout, statement_cache_size=0,
                                              server_settings={"application_name": "perftui monitor"})
        act = await self.conn.fetchrow(_ACTIVITY)
        db = await self.conn.fetchrow(_DATABASE)
        t = time.monotonic()
        p = f"db.{self.name}."
        out = {p + "connections": float(act["connections"]), p + "active": float(act["active"]),
               p + "idle": float(act["idle"]), p + "idle_in_transaction": float(act["idle_in_tx"]),
               p + "waiting_on_lock": float(act["waiting_on_lock"]), p + "max_connections": float(act["max_connections"])}
        if act["max_connections"]:
            out[p + "connections_percent"] = round(100.0 * act["connections"] / act["max_connections"], 2)
        if db is not None:
            counters = [int(db[i] or 0) for i in range(8)]
            if self._last is not None:
                t0, before = self._last
                span = max(1e-3, t - t0)
                for fig, i in _COUNTERS.items():
                    out[p + fig] = round(max(0, counters[i] - before[i]) / span, 3)
                read, hit = counters[3] - before[3], counters[4] - before[4]
                if read + hit > 0:
                    out[p + "cache_hit_percent"] = round(100.0 * hit / (read + hit), 2)
            self._last = (t, counters)
        return out


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "timeout"
    code = getattr(exc, "sqlstate", None)
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, ConnectionRefusedError) or "refused" in text.lower():
        return "connection refused"
    return f"{code} {text}" if code else f"{type(exc).__name__}: {text}"
