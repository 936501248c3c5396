"""The live session's timeline, kept compact: one closed row is ~0.2 KB instead of ~2 KB.

A ``TimelineRow`` as Python objects (a struct, ~20 floats, the monitor's dicts of figures and
their floats, the endpoint points) took 2.07 KB in a 2,000/s run with monitoring: one a second,
kept for the whole run (up to ``TIMELINE_MAX_ROWS``), it was most of what a long run's
coordinator and dashboard grew by. ``Timeline`` keeps each closed row as its MessagePack
encoding (0.82 KB: the field and figure names repeat in every row), deflated against the run's
first row as a preset dictionary, which leaves mostly the numbers (~0.15 KB). Encoding a row
costs ~15 µs once a second; reading one back ~3 µs. The newest row is also kept as it is: the
live views read it several times a second.

Readers use it as a sequence of rows (``len``, indexing, slicing, iteration): every read decodes
a fresh ``TimelineRow``, so a change to it is kept only when written back (``timeline[i] = row``).
The live views take ``frozen()``: the rows as they are now, decoded only where a chart samples
them (``charts.downsample``), not all of them every second. Session documents, checkpoints and
``perftui open`` hold plain lists of rows; only the live ``SessionRecord`` holds a ``Timeline``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

import msgspec

from perftui.session.schema import TimelineRow

__all__ = ["Timeline", "TimelineView"]

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(TimelineRow).decode


class Timeline(Sequence[TimelineRow]):
    __slots__ = ("_rows", "_zdict", "_last")

    def __init__(self, rows: Iterable[TimelineRow] = ()) -> None:
        self._rows: list[bytes] = []
        self._zdict = b""
        """The first row's encoding: the dictionary every row is deflated against."""
        self._last: TimelineRow | None = None
        for row in rows:
            self.append(row)

    def _pack(self, row: TimelineRow) -> bytes:
        raw = _encode(row)
        if not self._zdict:
            self._zdict = raw
        z = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, self._zdict)
        return z.compress(raw) + z.flush()

    def _unpack(self, packed: bytes) -> TimelineRow:
        return _decode(zlib.decompressobj(-15, self._zdict).decompress(packed))

    def append(self, row: TimelineRow) -> None:
        self._rows.append(self._pack(row))
        self._last = row

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, i: int) -> TimelineRow: ...
    @overload
    def __getitem__(self, i: slice) -> list[TimelineRow]: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._unpack(p) for p in self._rows[i]]
        n = len(self._rows)
        if i == -1 or i == n - 1:
            if n == 0:
                raise IndexError("timeline index out of range")
            return self._last
        return self._unpack(self._rows[i])

    def __setitem__(self, i: int, row: TimelineRow) -> None:
        n = len(self._rows)
        self._rows[i] = self._pack(row)
        if i == -1 or i == n - 1:
            self._last = row

    def __iter__(self) -> Iterator[TimelineRow]:
        unpack = self._unpack
        n = len(self._rows)
        for k, p in enumerate(self._rows[:n]):
            yield self._last if k == n - 1 else unpack(p)

    def __repr__(self) -> str:
        return f"Timeline({len(self._rows)} rows)"

    def frozen(self) -> TimelineView:
        """The rows as they are now, for a view that must not change under its reader (a row
        appended later is not in it); nothing is decoded until read."""
        return TimelineView(self, len(self._rows))


class TimelineView(Sequence[TimelineRow]):
    """The first ``n`` rows of a ``Timeline`` (``Timeline.frozen``)."""

    __slots__ = ("_timeline", "_n")

    def __init__(self, timeline: Timeline, n: int) -> None:
        self._timeline, self._n = timeline, n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):
        n = self._n
        if isinstance(i, slice):
            return [self._timeline[k] for k in range(*i.indices(n))]
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("timeline index out of range")
        return self._timeline[i]

    def __iter__(self) -> Iterator[TimelineRow]:
        for k in range(self._n):
            yield self._timeline[k]
