"""Test data from files: ``[variables.NAME] file = "users.csv"`` (Artillery's ``payload``, k6's
``SharedArray``).

``DataFile`` is the table a plan writes; ``read_data`` reads the file into a ``DataSet``. The plan
loader calls ``read_data`` once to check the file (a bad file is a plan problem naming the data
file and its line), and every worker process calls it once at start; virtual users share the
worker's rows, nothing is copied per virtual user. Which row a virtual user gets is decided in
``perftui.worker.datafeed``.

Rows of a CSV file are kept as tuples (one per line) beside one tuple of column names, and made
into a ``{column: value}`` dict only when picked: 100,000 rows of three short columns cost about
20 MB per worker this way, and a dict per row would roughly double that.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Literal, TextIO

import msgspec

from perftui.plan.common import _Strict

MAX_DATA_BYTES = 512 * 1024 * 1024
"""Data files are read whole into every worker; larger ones are refused with a message."""


class DataFile(_Strict, kw_only=True):
    """``[variables.NAME]`` with ``file``: values read from a CSV or JSON file. A CSV row is a
    table of its columns (``{{ users.email }}``); a JSON array element is used as it is."""

    file: str
    """The data file; a relative path is read from the plan's folder."""
    format: Literal["auto", "csv", "json"] = "auto"
    """``auto``: JSON for ``.json`` files, CSV otherwise (tab-separated for ``.tsv``)."""
    pick: Literal["vu", "iteration"] = "vu"
    """``vu``: each virtual user keeps one row for its whole life (in the open model every
    arrival is a virtual user); ``iteration``: a row for every iteration."""
    order: Literal["sequential", "random"] = "sequential"
    """``sequential``: rows in file order, across all worker processes (no two virtual users get
    the same row until every row was handed out, then it starts over); ``random``: any row."""
    delimiter: str = ""
    """CSV field separator (one character); default ``,`` (a tab for ``.tsv``)."""
    columns: list[str] = []
    """CSV without a header line: the column names, in order. Without it the first line names
    the columns."""


class DataError(ValueError):
    """A data file that cannot be used; ``line`` is the file's line (1-based) when known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


class DataSet:
    """The rows of one data file, shared by every virtual user of a worker."""

    __slots__ = ("columns", "rows")

    def __init__(self, rows: list[Any], columns: tuple[str, ...] | None):
        self.rows = rows
        self.columns = columns
        """CSV: the column names (``rows`` holds tuples); JSON: None (``rows`` holds the values)."""

    def __len__(self) -> int:
        return len(self.rows)

    def row(self, index: int) -> Any:
        value = self.rows[index]
        return value if self.columns is None else dict(zip(self.columns, value))


def data_format(spec: DataFile) -> str:
    if spec.format != "auto":
        return spec.format
    return "json" if spec.file.lower().endswith(".json") else "csv"


def resolve_path(file: str, base: str | os.PathLike[str] | None) -> Path:
    """``file`` read from ``base`` (the plan's folder) when relative; ``~`` is expanded."""
    p = Path(file).expanduser()
    if not p.is_absolute() and base is not None:
        p = Path(base) / p
    return p


def read_data(spec: DataFile, path: Path) -> DataSet:
    """Read the data file at ``path`` as ``spec`` says. Raises ``DataError``."""
    try:
        if path.is_dir():
            raise DataError("is a directory, not a data file")
        size = path.stat().st_size
        if size > MAX_DATA_BYTES:
            raise DataError(f"is {size / 1048576:.0f} MB; data files above {MAX_DATA_BYTES // 1048576} MB are refused"
                            " (every worker process holds the whole file)")
        if data_format(spec) == "json":
            raw = path.read_bytes()
            if raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                raise DataError("the file is empty: give at least one row")
            return _read_json(raw)
        delimiter = spec.delimiter or ("\t" if spec.file.lower().endswith(".tsv") else ",")
        # read as a stream: the whole text and the rows would both be in memory otherwise
        with path.open(encoding="utf-8-sig", newline="") as f:
            try:
                return _read_csv(f, delimiter, list(spec.columns))
            except UnicodeDecodeError:
                raw = path.read_bytes()  # only to say where: the stream decodes in chunks
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"not valid UTF-8 text (byte 0x{raw[e.start]:02x}); save the file as UTF-8",
                                    raw.count(b"\n", 0, e.start) + 1) from None
                raise
    except FileNotFoundError:
        raise DataError("no such file") from None
    except PermissionError:
        raise DataError("permission denied: cannot read the file") from None
    except OSError as e:
        raise DataError(f"cannot read the file: {e.strerror or e}") from None


def _read_json(raw: bytes) -> DataSet:
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as e:
        msg = str(e)
        line = None
        if "(byte " in msg:
            try:
                at = int(msg.rsplit("(byte ", 1)[1].rstrip(")"))
                line = raw.count(b"\n", 0, at) + 1
                msg = msg.rsplit(" (byte ", 1)[0]
            except ValueError:
                pass
        raise DataError(f"invalid JSON: {msg[:1].lower() + msg[1:]}", line) from None
    if not isinstance(value, list):
        kind = "an object" if isinstance(value, dict) else f"a {type(value).__name__}"
        raise DataError(f"expected a JSON array (of objects or of values), got {kind}", 1)
    if not value:
        raise DataError("the JSON array is empty: give at least one element", 1)
    objects = [isinstance(v, dict) for v in value]
    if any(objects) and not all(objects):
        i = objects.index(not objects[0])
        first = "objects" if objects[0] else "plain values"
        raise DataError(f"element {i + 1} is {'an object' if objects[i] else 'not an object'}, but the array"
                        f" starts with {first}: use all objects or all plain values")
    return DataSet(value, None)


def _read_csv(f: TextIO, delimiter: str, columns: list[str]) -> DataSet:
    reader = csv.reader(f, delimiter=delimiter, strict=True)
    rows: list[tuple[str, ...]] = []
    header_line = 0
    try:
        if not columns:
            for fields in reader:
                if fields and any(f.strip() for f in fields):
                    columns = [f.strip() for f in fields]
                    header_line = reader.line_num
                    break
            seen: dict[str, int] = {}
            for i, name in enumerate(columns):
                if not name:
                    raise DataError(f"column {i + 1} of the header has no name (the first line names the columns;"
                                    " for a file without a header give columns = [...])", header_line)
                if name in seen:
                    raise DataError(f"two columns are named {name!r} (columns {seen[name] + 1} and {i + 1})", header_line)
                seen[name] = i
        width = len(columns)
        append = rows.append
        for fields in reader:
            if len(fields) != width:
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # a blank line
                raise DataError(f"{len(fields)} field(s), but there are {width} column(s) ({', '.join(columns)})",
                                reader.line_num)
            append(tuple(fields))
    except csv.Error as e:
        raise DataError(f"invalid CSV: {e}", reader.line_num) from None
    if not columns and not header_line:
        raise DataError("the file is empty: give a header line and at least one row")
    if not rows:
        raise DataError("no data rows" + (" after the header line" if header_line else ""), header_line or None)
    return DataSet(rows, tuple(columns))
