"""Checks of ``[variables.NAME] file = "..."`` tables (``perftui.plan.data.DataFile``): the options
make sense, and the file reads (a missing, empty or malformed file is a plan problem that names the
plan's key and line, the data file and the data file's line). The file's path is made absolute
here, from the plan's folder, so that worker processes find it wherever they run. Mixed into the
validator by ``perftui.planload.validate``."""

from __future__ import annotations

import difflib
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

from msgspec import UNSET

from perftui.plan import duration_s
from perftui.plan.data import DataError, DataFile, read_data, resolve_path
from perftui.planload.driver import Driver
from perftui.planload.source import _IDENT, Path_, _quote

_CHECKED: OrderedDict[tuple, tuple[str | None, tuple[str, ...] | None, int]] = OrderedDict()
"""Data files already read by this process, by (path, size, mtime, options) -> the problem found
(None: fine), the fields a row has (None: rows are plain values) and the number of rows: a plan is validated more
than once (profiles, command-line overrides), and a data file of 100,000 rows is worth reading
once."""
_CHECKED_MAX = 32
ANY_FIELD = ("*",)
_FIELD_USE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z0-9_]+)")
"""``{{ users.email`` in a template: a data variable and the field it reads."""


class DataChecks(Driver):
    data_fields: dict[str, tuple[str, ...] | None]
    """Data variables whose file read, by name -> the fields of a row (None: plain values)."""

    def data_dir(self) -> Path | None:
        """The plan's folder: relative data paths are read from there (from the working
        directory for plans built in memory)."""
        if self.file.startswith("<"):
            return None
        return Path(self.file).parent

    def check_datafile(self, d: DataFile, raw: dict[str, Any], path: Path_) -> None:
        if not isinstance(d.file, str):
            return  # reported as missing or as a wrong type
        if not d.file.strip():
            self.problem(path + ("file",), 'must name a data file, e.g. "users.csv" (read from the plan\'s folder)')
            return
        fmt = d.format if d.format != "auto" else ("json" if d.file.lower().endswith(".json") else "csv")
        if fmt == "json":
            for key in ("delimiter", "columns"):
                if key in raw:
                    self.problem(path + (key,), f"{key} is for CSV files; {_quote(d.file)} is read as JSON")
        if d.delimiter and (len(d.delimiter) != 1 or d.delimiter in "\"\r\n"):
            self.problem(path + ("delimiter",), f"must be one character other than a quote or a line break, got {_quote(d.delimiter)}")
            return
        for i, name in enumerate(d.columns):
            if not _IDENT.match(name):
                self.problem(path + ("columns", i), f"column names are used in templates ({{{{ row.name }}}}): letters,"
                                                    f" digits and _, got {_quote(name)}")
                return
        if len(set(d.columns)) != len(d.columns):
            self.problem(path + ("columns",), "a column is named twice")
            return
        full = resolve_path(d.file, self.data_dir()).absolute()
        problem, fields, _ = _check_file(d, full)
        if problem is not None:
            self.problem(path + ("file",), problem)
        elif path[:1] == ("variables",) and len(path) == 2 and isinstance(path[1], str):
            if not hasattr(self, "data_fields"):
                self.data_fields = {}
            self.data_fields[path[1]] = fields
            self.data_files = getattr(self, "data_files", {})
            self.data_files[path[1]] = d.file
        d.file = str(full)  # workers read it from here, whatever their working directory

    def _plan_checks(self, raw: dict[str, Any], plan: Any) -> None:
        super()._plan_checks(raw, plan)
        fields = getattr(self, "data_fields", None)
        if not fields:
            return
        captured = set()
        for sc in raw.get("scenarios") if isinstance(raw.get("scenarios"), list) else ():
            for st in (sc.get("steps") if isinstance(sc, dict) and isinstance(sc.get("steps"), list) else ()):
                for cap in (st.get("capture") if isinstance(st, dict) and isinstance(st.get("capture"), list) else ()):
                    if isinstance(cap, dict):
                        captured.add(cap.get("as"))
        known = {k: v for k, v in fields.items() if k not in captured and v is not ANY_FIELD}
        if known and isinstance(raw.get("scenarios"), list):
            self._field_uses(raw["scenarios"], ("scenarios",), known)

    def _field_uses(self, value: Any, path: Path_, known: dict[str, tuple[str, ...] | None]) -> None:
        """A template reading a field no row of the data file has is a typo found now, not an
        empty value sent for the whole run."""
        if isinstance(value, str):
            if "{{" not in value:
                return
            for m in _FIELD_USE.finditer(value):
                name, field = m.group(1), m.group(2)
                if name not in known:
                    continue
                have = known[name]
                file = self.data_files.get(name, "the data file")
                if have is None:
                    self.problem(path, f"{{{{ {name}.{field} }}}}: the elements of {file} are plain values, not"
                                       f" objects; write {{{{ {name} }}}}")
                elif field not in have:
                    close = difflib.get_close_matches(field, sorted(have), n=1)
                    hint = f"; did you mean {{{{ {name}.{close[0]} }}}}?" if close else ""
                    shown = ", ".join(have) if len(have) <= 12 else f"{len(have)} fields"
                    self.problem(path, f"{{{{ {name}.{field} }}}}: no row of {file} has a field {_quote(field)}"
                                       f" ({shown}){hint}")
        elif isinstance(value, dict):
            for k, v in value.items():
                self._field_uses(v, path + (k,), known)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self._field_uses(v, path + (i,), known)


def _check_file(d: DataFile, full: Path) -> tuple[str | None, tuple[str, ...] | None, int]:
    try:
        st = full.stat()
        key: tuple = (str(full), st.st_size, st.st_mtime_ns, d.format, d.delimiter, tuple(d.columns))
    except OSError:
        key = (str(full), None)
    if key in _CHECKED:
        _CHECKED.move_to_end(key)
        return _CHECKED[key]
    shown = d.file if not os.path.isabs(d.file) else str(full)
    fields: tuple[str, ...] | None = None
    rows = 0
    try:
        data = read_data(d, full)
    except DataError as e:
        where = f"{shown} line {e.line}" if e.line else shown
        problem: str | None = f"{where}: {e}"
    else:
        problem = None
        rows = len(data)
        if data.columns is None:
            if isinstance(data.rows[0], dict):
                fields = tuple(dict.fromkeys(k for row in data.rows for k in row))
            elif any(isinstance(row, list) for row in data.rows):
                fields = ANY_FIELD  # arrays: {{ x.0 }} reads an element
        else:
            fields = tuple(data.columns)
            bad = next((c for c in data.columns if not _IDENT.match(c)), None)
            if bad is not None:
                problem = (f"{shown} line 1: column {_quote(bad)} cannot be used in a template ({{{{ row.column }}}});"
                           " name columns with letters, digits and _ (or give columns = [...] and no header line)")
    if key[1] is not None:
        _CHECKED[key] = (problem, fields, rows)
        while len(_CHECKED) > _CHECKED_MAX:
            _CHECKED.popitem(last=False)
    return problem, fields, rows


def data_summary(plan: Any) -> list[str]:
    """One line per data-file variable of a validated plan, for ``perftui validate`` and the
    picker: ``users ← data/users.csv · 200 rows (email, password) · per virtual user, in order``."""
    out = []
    for name, d in plan.variables.items():
        if not isinstance(d, DataFile):
            continue
        full = Path(d.file)
        _, fields, rows = _check_file(d, full)
        try:
            shown = str(full.relative_to(Path.cwd()))
        except ValueError:
            shown = str(full)
        what = f"{rows:,} rows" + (f" ({', '.join(fields)})" if fields and fields is not ANY_FIELD
                                   and len(fields) <= 8 else "")
        pick = "per virtual user" if d.pick == "vu" else "per iteration"
        order = "in order" if d.order == "sequential" else "at random"
        line = f"{name} ← {shown} · {what} · {pick}, {order}"
        users = _planned_users(plan)
        if d.pick == "vu" and d.order == "sequential" and rows and users > rows:
            line += f" (up to {users:,} virtual users: rows will be shared)"
        out.append(line)
    return out


def _planned_users(plan: Any) -> int:
    """Virtual users the phases start at most: the peak of the closed-model phases, and every
    arrival of the open-model ones (each is a virtual user)."""
    peak = arrivals = 0.0
    for ph in plan.phases:
        end = ph.ramp_to if ph.ramp_to is not UNSET else None
        if ph.vus is not UNSET:
            peak = max(peak, ph.vus, end or 0)
        elif ph.arrival_rate is not UNSET:
            try:
                seconds = duration_s(ph.duration)
            except ValueError:
                continue
            arrivals += (ph.arrival_rate + (ph.arrival_rate if end is None else end)) / 2 * seconds
    return int(peak + arrivals)
