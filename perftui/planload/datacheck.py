"""Checks of ``[variables.NAME] file = "..."`` tables (``perftui.plan.data.DataFile``): the options
make sense, and the file reads (a missing, empty or malformed file is a plan problem that names the
plan's key and line, the data file and the data file's line). The file's path is made absolute
here, from the plan's folder, so that worker processes find it wherever they run. Mixed into the
validator by ``perftui.planload.validate``."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

from perftui.plan.data import DataError, DataFile, read_data, resolve_path
from perftui.planload.driver import Driver
from perftui.planload.source import _IDENT, Path_, _quote

_CHECKED: OrderedDict[tuple, str | None] = OrderedDict()
"""Data files already read by this process, by (path, size, mtime, options) -> the problem found
(None: fine): a plan is validated more than once (profiles, command-line overrides), and a data
file of 100,000 rows is worth reading once."""
_CHECKED_MAX = 32


class DataChecks(Driver):
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
        problem = _check_file(d, full)
        if problem is not None:
            self.problem(path + ("file",), problem)
        d.file = str(full)  # workers read it from here, whatever their working directory


def _check_file(d: DataFile, full: Path) -> str | None:
    try:
        st = full.stat()
        key: tuple = (str(full), st.st_size, st.st_mtime_ns, d.format, d.delimiter, tuple(d.columns))
    except OSError:
        key = (str(full), None)
    if key in _CHECKED:
        _CHECKED.move_to_end(key)
        return _CHECKED[key]
    shown = d.file if not os.path.isabs(d.file) else str(full)
    try:
        data = read_data(d, full)
    except DataError as e:
        where = f"{shown} line {e.line}" if e.line else shown
        problem: str | None = f"{where}: {e}"
    else:
        problem = None
        if data.columns is not None:
            bad = next((c for c in data.columns if not _IDENT.match(c)), None)
            if bad is not None:
                problem = (f"{shown} line 1: column {_quote(bad)} cannot be used in a template ({{{{ row.column }}}});"
                           " name columns with letters, digits and _ (or give columns = [...] and no header line)")
    if key[1] is not None:
        _CHECKED[key] = problem
        while len(_CHECKED) > _CHECKED_MAX:
            _CHECKED.popitem(last=False)
    return problem
