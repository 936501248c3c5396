"""SQL steps against PostgreSQL: one connection pool per ``[databases.NAME]`` in each worker,
statements prepared once per connection, errors classified by SQLSTATE.

Driver: asyncpg. Measured with ``bench/sql_bench.py`` (one core, 8 connections, a prepared
two-parameter INSERT, same server and sitting, see bench/README.md): asyncpg on uvloop did
34 k inserts/s at 19 µs of CPU per statement, psycopg 3 (async, binary, server-side prepared)
16 k/s at 35 µs, pgbench 18 k/s at 20 µs. asyncpg speaks the protocol itself (binary codecs in
Cython, no libpq), so it is the one that keeps the generator off the critical path. It is an
optional extra (``pip install 'perftui[sql]'``): plans without SQL steps never import it.

The pool is perftui's own, not ``asyncpg.Pool``: asyncpg's pool resets every connection on
release (a ``RESET ALL``/``UNLISTEN`` round trip per statement, doubling the work of a short
INSERT), and it cannot tell how long a virtual user waited for a connection. Here a released
connection goes straight to the longest waiter; the pool counts connections in use (the most at
once in each interval: ``in_use_peak``), virtual users waiting, and the time they waited, shipped in
``Snapshot.extra`` as ``pool.NAME.*`` gauges and ``sql.NAME.*`` counters (``SqlStats``).

Timing follows the HTTP steps: the latency of an open-model iteration's first statement counts
from its intended start (so time queued for a connection counts), service time from the moment
the connection was in hand. ``timeout`` covers the wait and the statement; a statement past it
is cancelled on the server (asyncpg sends a cancel request) and the connection is kept.

Error kinds (``perftui.summary.ERROR_KINDS``), from the SQLSTATE's class:
``db_connection`` (08, 57P0x, refused or dropped connections), ``db_auth`` (28),
``db_constraint`` (23), ``db_syntax`` (42: syntax, unknown table or column, privileges),
``db_deadlock`` (40P01), ``db_serialization`` (40001), ``db_timeout`` (57014, 55P03, our own
timeout), ``db_data`` (22), ``db_resources`` (53, e.g. too many connections), ``db_param`` (a
parameter that does not fit its column's type, found before sending), ``db_pool_timeout`` (no
connection free within the timeout), ``db_error`` (anything else). A failed statement is counted
and the iteration goes on to its next step, as an HTTP error status does.

This module sees the scenario runner only as a ``perftui.worker.compiled.StepRunner``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import json
import re
import time
import uuid
from collections import deque
from typing import Any

import msgspec

from perftui.plan import Database, SqlCapture, SqlExpect, SqlStep, duration_s
from perftui.template import compile_template

__all__ = ["DRIVER_MISSING", "SqlAction", "SqlError", "SqlPool", "SqlStats", "classify", "driver_available"]

_now = time.monotonic

DRIVER_MISSING = ("SQL steps need the PostgreSQL driver: pip install 'perftui[sql]' (asyncpg)")


def driver_available() -> bool:
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return False
    return True


def _asyncpg():
    try:
        import asyncpg
    except ImportError:
        raise SqlError("db_connection", DRIVER_MISSING) from None
    return asyncpg


class SqlError(Exception):
    """A statement failed: ``kind`` (an ERROR_KINDS entry) and a short message."""

    def __init__(self, kind: str, message: str):
        super().__init__(kind, message)
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return self.message


_BY_CODE = {"40P01": "db_deadlock", "40001": "db_serialization", "57014": "db_timeout", "55P03": "db_timeout",
            "57P01": "db_connection", "57P02": "db_connection", "57P03": "db_connection"}
_BY_CLASS = {"08": "db_connection", "28": "db_auth", "23": "db_constraint", "42": "db_syntax", "22": "db_data",
             "53": "db_resources", "40": "db_serialization"}


def classify(exc: BaseException) -> SqlError:
    """Any failure of a statement or a connect as a ``SqlError`` with its kind."""
    if isinstance(exc, SqlError):
        return exc
    code = getattr(exc, "sqlstate", None)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(code, str) and code:
        kind = _BY_CODE.get(code) or _BY_CLASS.get(code[:2], "db_error")
        return SqlError(kind, f"{code} {text}")
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return SqlError("db_timeout", "timeout")
    if isinstance(exc, ConnectionRefusedError):
        return SqlError("db_connection", f"connection refused ({text})")
    if isinstance(exc, OSError):
        return SqlError("db_connection", f"connection failed: {text}")
    name = type(exc).__name__
    if name in ("ConnectionDoesNotExistError", "ConnectionFailureError", "InternalClientError") or "closed" in text:
        return SqlError("db_connection", f"connection lost: {text}")
    if name == "DataError":  # asyncpg could not encode a parameter
        return SqlError("db_param", text)
    return SqlError("db_error", f"{name}: {text}")


# ---- parameters: a template's text into the value the column's type wants -------------------

_TRUE = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "off", "0"})


def _to_int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if not v.is_integer():
            raise ValueError
        return int(v)
    return int(str(v).strip())


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError


def _to_datetime(v: Any, tz: bool) -> dt.datetime:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        d = dt.datetime.fromtimestamp(v, dt.timezone.utc)
    else:
        d = dt.datetime.fromisoformat(str(v).strip().replace("Z", "+00:00"))
    if tz and d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    if not tz and d.tzinfo is not None:
        d = d.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return d


def _to_json(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


_CONVERT: dict[str, Any] = {
    "int2": _to_int, "int4": _to_int, "int8": _to_int, "oid": _to_int,
    "float4": float, "float8": float,
    "numeric": lambda v: decimal.Decimal(str(v).strip()),
    "bool": _to_bool,
    "text": str, "varchar": str, "bpchar": str, "name": str, "char": str,
    "json": _to_json, "jsonb": _to_json,
    "uuid": lambda v: v if isinstance(v, uuid.UUID) else uuid.UUID(str(v).strip()),
    "timestamptz": lambda v: _to_datetime(v, True), "timestamp": lambda v: _to_datetime(v, False),
    "date": lambda v: v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v).strip()),
    "bytea": lambda v: v if isinstance(v, bytes) else str(v).encode(),
}
_TYPE_WORDS = {"int2": "smallint", "int4": "integer", "int8": "bigint", "float4": "real", "float8": "double precision",
               "bpchar": "char", "timestamptz": "timestamp with time zone", "timestamp": "timestamp",
               "bool": "boolean"}


def _converter(type_name: str):
    if type_name in _CONVERT:
        return _CONVERT[type_name]
    return lambda v: v if isinstance(v, (str, int, float, bool, list)) else str(v)


class _Statement:
    """One statement, compiled: its parameter templates, fetch mode, captures and checks."""

    __slots__ = ("captures", "converters", "expect", "fetch", "label", "max_rows", "min_rows", "params", "rows", "sql")

    def __init__(self, sql: str, params: list[Any], fetch: str, capture: list[SqlCapture],
                 expect: SqlExpect | msgspec.UnsetType):
        self.sql = sql
        self.label = re.sub(r"\s+", " ", sql).strip()[:80]
        self.params = [compile_template(p) if isinstance(p, str) else _Const(p) for p in params]
        self.fetch = fetch
        self.captures = [(c.as_, c.column) for c in capture]
        if self.captures and fetch == "none":
            self.fetch = "one"  # a capture needs the first row
        self.converters: list | None = None
        """Per parameter, from the types the server gave at the first prepare (same on every
        connection of the database)."""
        e = expect if isinstance(expect, SqlExpect) else None
        self.rows = e.rows if e is not None and e.rows is not msgspec.UNSET else None
        self.min_rows = e.min_rows if e is not None and e.min_rows is not msgspec.UNSET else None
        self.max_rows = e.max_rows if e is not None and e.max_rows is not msgspec.UNSET else None

    def args(self, vars: dict, stmt) -> list[Any]:
        if self.converters is None:
            types = stmt.get_parameters()
            self.converters = [(_converter(t.name), _TYPE_WORDS.get(t.name, t.name)) for t in types]
        out = []
        for i, (tpl, (conv, word)) in enumerate(zip(self.params, self.converters)):
            value = tpl.render_native(vars)
            if value is None:
                out.append(None)
                continue
            try:
                out.append(conv(value))
            except (ValueError, TypeError, ArithmeticError, OverflowError):
                shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
                raise SqlError("db_param", f"${i + 1} = {shown} is not a valid {word}") from None
        return out

    def check(self, rows: int) -> str | None:
        if self.rows is not None and rows != self.rows:
            return f"{rows} row(s), expected {self.rows}"
        if self.min_rows is not None and rows < self.min_rows:
            return f"{rows} row(s), expected at least {self.min_rows}"
        if self.max_rows is not None and rows > self.max_rows:
            return f"{rows} row(s), expected at most {self.max_rows}"
        return None


class _Const:
    """A TOML value in ``params`` that is not a string: sent as it is (converted to its type)."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def render_native(self, vars: dict) -> Any:
        return self.value


_TAG_COUNT = re.compile(r"(\d+)\s*$")


def _tag_rows(tag: str | None) -> int:
    """Rows a command tag reports: ``INSERT 0 3`` -> 3, ``UPDATE 5`` -> 5, ``BEGIN`` -> 0."""
    m = _TAG_COUNT.search(tag or "")
    return int(m.group(1)) if m else 0


# ---- the pool ----------------------------------------------------------------------------------


class _Conn:
    __slots__ = ("conn", "prepared")

    def __init__(self, conn):
        self.conn = conn
        self.prepared: dict[str, Any] = {}


class SqlPool:
    """At most ``size`` connections to one database; a statement that finds none idle waits in
    line, and a new connection is opened in the background while the pool is below ``size``.
    Whichever comes first serves the longest waiter: a connection released by another virtual
    user or the new one (which otherwise goes idle). A burst at the start of a run thus opens only
    as many connections as it really needs at once, and connecting does not count as in use."""

    def __init__(self, name: str, db: Database, size: int, notes: deque[str]):
        self.name = name
        self.dsn = db.dsn
        self.size = size
        self.connect_timeout = duration_s(db.connect_timeout)
        self.notes = notes
        self.idle: list[_Conn] = []
        self.open = 0
        """Connections open or being opened."""
        self.in_use = 0
        self.waiters: deque[asyncio.Future] = deque()
        self._connecting: set[asyncio.Task] = set()
        self.stats: SqlStats | None = None
        self.min_connections = 0
        """Opened at start (``warm``): this worker's share of ``[databases.NAME].min_connections``."""
        # per interval (SqlStats.take)
        self.peak_in_use = 0
        self.acquires = 0
        self.waits = 0
        self.wait_s = 0.0
        self.connects = 0
        self.connect_failures = 0
        self.closing = False

    async def acquire(self, deadline: float) -> _Conn:
        self.acquires += 1
        if self.idle:
            return self._hand(self.idle.pop())
        t0 = _now()
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        if self.open < self.size:
            self._spawn_connect()
        try:
            async with asyncio.timeout_at(_loop_time(deadline)):
                conn = await fut
        except BaseException as exc:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.release(fut.result())  # handed over just as we gave up: pass it on
            else:
                fut.cancel()
                try:
                    self.waiters.remove(fut)
                except ValueError:
                    pass
            self._waited(t0)
            if isinstance(exc, TimeoutError):
                raise SqlError("db_pool_timeout", f"no free connection to {self.name} within the timeout"
                                                  f" ({self.size} in this worker's pool)") from None
            raise
        self._waited(t0)
        return conn

    def _waited(self, t0: float) -> None:
        self.waits += 1
        self.wait_s += _now() - t0

    def _hand(self, c: _Conn) -> _Conn:
        self.in_use += 1
        if self.in_use > self.peak_in_use:
            self.peak_in_use = self.in_use
        return c

    def warm(self, n: int) -> None:
        """Open ``n`` connections in the background now (``min_connections``)."""
        for _ in range(max(0, min(n, self.size - self.open))):
            self._spawn_connect()

    def _spawn_connect(self) -> None:
        self.open += 1
        task = asyncio.ensure_future(self._connect())
        self._connecting.add(task)
        task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task) -> None:
        self._connecting.discard(task)
        if task.cancelled():
            self.open -= 1
            return
        exc = task.exception()
        if exc is not None:
            self.open -= 1
            # the failure is the answer of the longest waiter; the others keep waiting for a
            # connection someone releases, or try again themselves
            for fut in list(self.waiters):
                if not fut.done():
                    self.waiters.remove(fut)
                    fut.set_exception(exc)
                    break
            else:  # nobody waited for it (min_connections): say so once it is shipped
                self.notes.append(f"{getattr(exc, 'kind', 'db_connection')}: {self.name}: {exc}")
            if self.waiters and self.open < self.size:
                self._spawn_connect()
            return
        self.release(task.result(), fresh=True)

    async def _connect(self) -> _Conn:
        asyncpg = _asyncpg()
        try:
            conn = await asyncpg.connect(self.dsn, timeout=self.connect_timeout, statement_cache_size=0)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - classified for the waiter
            self.connect_failures += 1
            err = classify(exc)
            if err.kind == "db_timeout":
                err = SqlError("db_connection", f"connect timeout after {self.connect_timeout:g}s")
            raise err from None
        self.connects += 1
        if self.closing:
            conn.terminate()
            raise SqlError("db_connection", "the run is ending")
        return _Conn(conn)

    def release(self, c: _Conn, broken: bool = False, fresh: bool = False) -> None:
        """Give a connection back (``fresh``: a new one, not in use yet); a broken one is
        closed, and a replacement opened when virtual users are waiting."""
        if not fresh:
            self.in_use -= 1
        if broken or c.conn.is_closed() or self.closing:
            self.open -= 1
            if not c.conn.is_closed():
                c.conn.terminate()
            if self.waiters and self.open < self.size and not self.closing:
                self._spawn_connect()
            return
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(self._hand(c))
                return
        self.idle.append(c)

    def take(self) -> dict[str, float]:
        """This interval's figures (``pool.NAME.*`` gauges, ``sql.NAME.*`` counts)."""
        p = f"pool.{self.name}."
        s = f"sql.{self.name}."
        out = {
            p + "size": float(self.size), p + "open": float(self.open), p + "in_use_peak": float(self.peak_in_use),
            p + "waiting": float(len(self.waiters)),
            s + "acquires": float(self.acquires), s + "waits": float(self.waits),
            s + "wait_ms": round(self.wait_s * 1000, 3), s + "connects": float(self.connects),
            s + "connect_failures": float(self.connect_failures),
        }
        self.peak_in_use = self.in_use
        self.acquires = self.waits = self.connects = self.connect_failures = 0
        self.wait_s = 0.0
        return out

    async def close(self) -> None:
        self.closing = True
        for task in list(self._connecting):
            task.cancel()
        idle, self.idle = self.idle, []
        for c in idle:
            self.open -= 1
            try:
                await asyncio.wait_for(c.conn.close(), 2.0)
            except BaseException:  # noqa: BLE001 - closing at the end of a run
                c.conn.terminate()


def _loop_time(deadline: float) -> float:
    """A ``time.monotonic()`` deadline on the running loop's clock (uvloop's differs)."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline - _now())


class SqlStats:
    """The pools of one worker and the rows its SQL endpoints returned, for ``Snapshot.extra``."""

    def __init__(self) -> None:
        self.pools: dict[str, SqlPool] = {}
        self.rows: dict[str, int] = {}

    def take(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pool in self.pools.values():
            out.update(pool.take())
        for name, n in self.rows.items():
            if n:
                out[f"sql.rows{{{name}}}"] = float(n)
        self.rows = dict.fromkeys(self.rows, 0)
        return out


def pool_share(total: int, workers: int, index: int) -> int:
    """Worker ``index``'s part of a pool of ``total`` connections: an even split, at least one."""
    base, extra = divmod(total, max(1, workers))
    return max(1, base + (1 if index < extra else 0))


class SqlAction:
    """A compiled ``sql`` / ``transaction`` step."""

    def __init__(self, step: SqlStep, pool: SqlPool, stats: SqlStats, endpoint: str):
        self.pool = pool
        self.stats = stats
        self.endpoint = endpoint
        if isinstance(step.transaction, list):
            self.statements = [_Statement(s.sql, s.params, s.fetch, s.capture, s.expect) for s in step.transaction]
            self.transaction = True
        else:
            self.statements = [_Statement(step.sql, step.params, step.fetch, step.capture, step.expect)]
            self.transaction = False
        stats.rows.setdefault(endpoint, 0)


async def _run_statement(c: _Conn, st: _Statement, vars: dict, deadline: float) -> tuple[int, str | None]:
    """Prepare (once per connection), bind, execute; captures into ``vars``. (rows, failed check)."""
    stmt = c.prepared.get(st.sql)
    remaining = deadline - _now()
    if remaining <= 0:
        raise SqlError("db_timeout", "timeout")
    if stmt is None:
        stmt = c.prepared[st.sql] = await c.conn.prepare(st.sql, timeout=remaining)
        remaining = deadline - _now()
    args = st.args(vars, stmt)
    if st.fetch == "one":
        row = await stmt.fetchrow(*args, timeout=max(0.001, remaining))
        records = [row] if row is not None else []
        rows = len(records)
    else:
        records = await stmt.fetch(*args, timeout=max(0.001, remaining))
        rows = len(records) if records else _tag_rows(stmt.get_statusmsg())
        if st.fetch == "none":
            records = []
    if st.captures and records:
        first = records[0]
        for name, column in st.captures:
            try:
                vars[name] = first[column]
            except (KeyError, IndexError):
                return rows, f"no column {column!r} in the result"
    elif st.captures:
        return rows, "no row to capture from"
    return rows, st.check(rows)


async def run_sql_step(runner, step, vars: dict, intended: float | None) -> bool:
    """Run one SQL step (``step.sql`` is its ``SqlAction``); record it; True to go on."""
    action: SqlAction = step.sql
    rec = step.recorder
    started = _now()
    if intended is not None and intended < started:
        started = intended
    deadline = _now() + step.timeout
    pool = action.pool
    try:
        c = await pool.acquire(deadline)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure is classified and counted
        err = classify(exc)
        rec.failure(err.kind)
        runner.errors_sample.append(f"{err.kind}: {step.name}: {err}")
        return True
    sent = _now()
    broken = False
    rows = 0
    failed: str | None = None
    kind: str | None = None
    try:
        if action.transaction:
            await c.conn.execute("BEGIN", timeout=max(0.001, deadline - _now()))
            try:
                for st in action.statements:
                    n, failed = await _run_statement(c, st, vars, deadline)
                    rows += n
                    if failed:
                        break
            except BaseException:
                if not c.conn.is_closed():
                    try:
                        await c.conn.execute("ROLLBACK", timeout=2.0)
                    except BaseException:  # noqa: BLE001 - the connection is dropped below
                        broken = True
                raise
            await c.conn.execute("ROLLBACK" if failed else "COMMIT", timeout=max(0.5, deadline - _now()))
        else:
            rows, failed = await _run_statement(c, action.statements[0], vars, deadline)
    except asyncio.CancelledError:
        pool.release(c, broken=True)  # cut off mid-statement: its state is unknown
        raise
    except BaseException as exc:  # noqa: BLE001
        err = classify(exc)
        kind = err.kind
        broken = broken or c.conn.is_closed() or kind == "db_connection"
        runner.errors_sample.append(f"{err.kind}: {step.name}: {err}")
    pool.release(c, broken=broken)
    done = _now()
    if kind is None and failed is not None:
        kind = "expect_failed"
        runner.errors_sample.append(f"expect_failed: {step.name}: {failed}")
    service_us = int((done - sent) * 1e6)
    # a connection in hand at once (closed model): one value, so the recorder keeps one
    # histogram, as for HTTP (perftui.worker.scenario._SAME_START)
    latency_us = service_us if intended is None and sent - started < 0.00005 else int((done - started) * 1e6)
    rec.op(latency_us, service_us, kind)
    if rows:
        action.stats.rows[action.endpoint] = action.stats.rows.get(action.endpoint, 0) + rows
    return True
