"""Checks of meaning for SQL: ``[databases.NAME]`` tables, ``sql`` / ``transaction`` steps and
``[monitor] postgres``. Mixed into the validator by ``perftui.planload.validate``; the whole-plan
part (``sql_plan_checks``) runs on the raw data from ``PlanChecks._plan_checks``."""

from __future__ import annotations

import difflib
from typing import Any
import re
from urllib.parse import urlsplit, urlunsplit

from msgspec import UNSET

from perftui.plan import Database, SqlStatement, SqlStep
from perftui.planload.driver import Driver
from perftui.planload.source import Path_, _IDENT, _has_space_or_control, _quote

_DSN_SCHEMES = ("postgresql", "postgres")
_EXAMPLE_DSN = '"postgresql://app:${PGPASSWORD}@127.0.0.1:5432/metrics"'


def _max_placeholder(sql: str) -> int:
    """The highest ``$N`` in a statement, outside quotes and comments (0 if none)."""
    top, i, n = 0, 0, len(sql)
    while i < n:
        c = sql[i]
        if c in ("'", '"'):
            end = sql.find(c, i + 1)
            i = n if end < 0 else end + 1
            continue
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if c == "$" and i + 1 < n and sql[i + 1].isdigit():
            j = i + 1
            while j < n and sql[j].isdigit():
                j += 1
            top = max(top, int(sql[i + 1 : j]))
            i = j
            continue
        i += 1
    return top


def dsn_password(dsn: str) -> str | None:
    """The password written in a ``postgresql://user:PASSWORD@host/db`` DSN, or None."""
    try:
        password = urlsplit(dsn).password
    except ValueError:
        return None
    return password or None


def dsn_without_password(dsn: str) -> str:
    """The DSN with its password (in the URI or a ``password=`` option) as ``***``."""
    try:
        parts = urlsplit(dsn)
        password = parts.password
    except ValueError:
        return dsn
    if password:
        user, _, host = parts.netloc.rpartition("@")
        name = user.split(":", 1)[0]
        parts = parts._replace(netloc=f"{name}:***@{host}")
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit(parts._replace(query=query))


class SqlChecks(Driver):
    """``check_database``, ``check_sqlstep``, ``check_sqlstatement`` and the whole-plan checks."""

    def check_database(self, db: Database, raw: dict[str, Any], path: Path_) -> None:
        self.duration(db.connect_timeout, path + ("connect_timeout",))
        if db.min_connections > db.pool:
            self.problem(path + ("min_connections",), f"must be at most pool ({db.pool}), got {db.min_connections}")
        dsn = db.dsn
        at = path + ("dsn",)
        if not dsn.strip():
            self.problem(at, f"must not be empty: e.g. dsn = {_EXAMPLE_DSN}")
            return
        if _has_space_or_control(dsn):
            self.problem(at, "a DSN cannot contain spaces, line breaks or control characters")
            return
        try:
            parts = urlsplit(dsn)
            port = parts.port
        except ValueError as e:
            self.problem(at, f"not a valid DSN ({e}); expected the form {_EXAMPLE_DSN}")
            return
        if parts.scheme not in _DSN_SCHEMES or "://" not in dsn:
            self.problem(at, f"expected a postgresql:// URI such as {_EXAMPLE_DSN}")
            return
        del port

    def check_sqlstatement(self, st: SqlStatement, raw: dict[str, Any], path: Path_) -> None:
        self._statement(st.sql, st.params, path)

    def check_sqlstep(self, st: SqlStep, raw: dict[str, Any], path: Path_) -> None:
        self.step_timeout(st, path)  # type: ignore[attr-defined]
        self.step_common(st, path)  # type: ignore[attr-defined]
        has_sql, has_tx = st.sql is not UNSET, st.transaction is not UNSET
        if has_sql and has_tx:
            self.problem(path, "a SQL step has sql (one statement) or transaction (several), not both")
            return
        if has_sql:
            self._statement(st.sql, st.params, path)
        else:
            if not st.transaction:
                self.problem(path + ("transaction",), 'needs at least one statement: transaction = [ { sql = "..." } ]')
            for key in ("params", "capture", "expect"):
                if key in raw:
                    self.problem(path + (key,), f"{key} goes on each statement of the transaction")
            if "fetch" in raw:
                self.problem(path + ("fetch",), "fetch goes on each statement of the transaction")

    def _statement(self, sql: str, params: list[Any], path: Path_) -> None:
        if not sql.strip():
            self.problem(path + ("sql",), 'must not be empty: e.g. sql = "SELECT count(*) FROM events WHERE id = $1"')
            return
        if "{{" in sql:
            self.problem(path + ("sql",), "a statement is not a template: write $1, $2, ... and put the values"
                                          ' in params = ["{{ id }}", ...] (the server receives them as data)')
        for i, p in enumerate(params):
            if isinstance(p, str):
                self.template(p, path + ("params", i))
            elif isinstance(p, (dict, list)):
                self.problem(path + ("params", i), "a parameter is a single value (string, number, boolean);"
                                                   " send JSON as a string for a json/jsonb column")
        wanted = _max_placeholder(sql)
        if wanted != len(params):
            self.problem(path + ("params",), f"the statement uses {wanted} parameter(s) ($1 ... ${wanted})"
                                             f" but params has {len(params)} value(s)" if wanted else
                         f"the statement has no $1, $2, ... placeholders but params has {len(params)} value(s)")

    def sql_plan_checks(self, raw: dict[str, Any]) -> None:
        """Steps name a database that exists; ``[monitor] postgres`` names databases."""
        dbs = raw.get("databases")
        names = sorted(k for k in dbs if isinstance(k, str)) if isinstance(dbs, dict) else []
        if isinstance(dbs, dict):
            for name in names:
                if not _IDENT.match(name.replace("-", "_")):
                    self.problem(("databases", name), "database names use letters, digits, _ and -")

        def known(name: Any, at: Path_) -> None:
            if not isinstance(name, str) or name in names:
                return
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {_quote(close[0])}?" if close else (
                f"; databases: {', '.join(names)}" if names else
                f"; add [databases.{name}] with dsn = {_EXAMPLE_DSN}")
            self.problem(at, f"no [databases.{name}] in the plan{hint}")

        scenarios = raw.get("scenarios")
        for i, sc in enumerate(scenarios if isinstance(scenarios, list) else ()):
            steps = sc.get("steps") if isinstance(sc, dict) else None
            for j, st in enumerate(steps if isinstance(steps, list) else ()):
                if not isinstance(st, dict) or not ("sql" in st or "transaction" in st):
                    continue
                at = ("scenarios", i, "steps", j)
                if "database" in st:
                    known(st["database"], at + ("database",))
                elif len(names) != 1:
                    self.problem(at, "a SQL step needs database = \"NAME\" of a [databases.NAME] entry"
                                     + (f" (the plan has {', '.join(names)})" if names else
                                        f"; add [databases.NAME] with dsn = {_EXAMPLE_DSN}"))
        monitor = raw.get("monitor")
        pg = monitor.get("postgres") if isinstance(monitor, dict) else None
        for k, name in enumerate([pg] if isinstance(pg, str) else pg if isinstance(pg, list) else []):
            known(name, ("monitor", "postgres") + ((k,) if isinstance(pg, list) else ()))
