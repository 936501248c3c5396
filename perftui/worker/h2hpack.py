"""HPACK caches for the HTTP/2 engine: each connection (``perftui.worker.h2conn``) wraps its
``hpack`` encoder and decoder in them.

A load test sends the same few requests and gets the same few answers over and over; HPACK in
pure Python (Huffman coding, debug logging) was ~45 % of the HTTP/2 client's CPU per request
against nginx. Both caches are exact: they only reuse a result where HPACK's own rules say the
result cannot differ (tests/test_http2.py checks them against plain ``hpack``).
"""

from __future__ import annotations

_CACHE_SIZE = 256  # header blocks per encoder (one per connection), and in the shared decoder cache

class _Counted:
    """Watches an HPACK dynamic table: counts its additions (``n``; an unchanged count means an
    unchanged table), and while ``log`` is a list, records them and notes a lookup of a dynamic
    entry (``dynamic_ref``)."""

    __slots__ = ("n", "log", "dynamic_ref")

    def __init__(self, table) -> None:
        self.n = 0
        self.log: list[tuple[bytes, bytes]] | None = None
        self.dynamic_ref = False
        add, get = table.add, table.get_by_index
        static = table.STATIC_TABLE_LENGTH

        def counting_add(name: bytes, value: bytes) -> None:
            self.n += 1
            if self.log is not None:
                self.log.append((name, value))
            add(name, value)

        def watching_get(index: int):
            if index > static:
                self.dynamic_ref = True
            return get(index)

        table.add = counting_add
        table.get_by_index = watching_get


class CachingEncoder:
    """HPACK encoder that remembers header blocks. Encoding a header list that adds nothing to
    the dynamic table yields the same bytes every time the table is in the same state, so such
    a block is kept (by header list and table state) and reused: a load test sends the same few
    requests over and over.

    Why not plain ``hpack``: measured against nginx h2c (64 connections, one stream each), HPACK
    in pure Python (Huffman, debug logging) was ~45 % of the client's CPU per request; with both
    caches a request costs about half as much."""

    def __init__(self, coder) -> None:
        object.__setattr__(self, "_coder", coder)
        object.__setattr__(self, "_watch", _Counted(coder.header_table))
        object.__setattr__(self, "_cache", {})

    def __getattr__(self, name):
        return getattr(self._coder, name)

    def __setattr__(self, name, value) -> None:
        setattr(self._coder, name, value)  # h2 sets the table sizes its peer announces

    def encode(self, headers, huffman: bool = True) -> bytes:
        headers = tuple(headers)
        table = self._coder.header_table
        if table.resized:  # a size update is due in this block
            return self._coder.encode(headers, huffman)
        watch = self._watch
        key = (headers, watch.n, table.maxsize, huffman)
        cache = self._cache
        block = cache.get(key)
        if block is None:
            before = watch.n
            block = self._coder.encode(headers, huffman)
            if watch.n == before:
                if len(cache) >= _CACHE_SIZE:
                    cache.clear()
                cache[key] = block
        return block


class CachingDecoder(CachingEncoder):
    """HPACK decoder that remembers blocks which refer to no dynamic-table entry and change no
    table size. Such a block decodes to the same headers whatever the table holds, and its only
    effect is adding the same entries: a hit replays those additions and returns the headers.
    (nginx sends each response's headers as literals with incremental indexing, Huffman-coded:
    a response to the same request is the same bytes, except ``date`` once a second.) What is
    kept does not depend on the connection, so all connections of a worker share one cache."""

    _shared: dict = {}

    def __init__(self, coder) -> None:
        super().__init__(coder)
        object.__setattr__(self, "_cache", CachingDecoder._shared)

    def decode(self, data: bytes, raw: bool = False):
        key = (data, raw)
        cache = self._cache
        hit = cache.get(key)
        table = self._coder.header_table
        if hit is not None:
            headers, adds, added, biggest, smallest = hit
            if adds:
                if biggest <= table._maxsize:
                    # hpack's HeaderTable.add for all of them at once: newest first, then evict
                    # the oldest until the table fits (the same entries survive as adding one by
                    # one, since no entry alone is too big). Adding them one by one (hpack's
                    # add, _shrink and its logging) was ~10 % of h2's receive path in a profile.
                    entries = table.dynamic_entries
                    entries.extendleft(adds)
                    size = table._current_size + added
                    maxsize = table._maxsize
                    while size > maxsize:
                        name, value = entries.pop()
                        size -= 32 + len(name) + len(value)
                    table._current_size = size
                elif smallest > table._maxsize:
                    # each of them alone is too big, and hpack clears the table for such an entry
                    # (nginx 1.22 shrinks this table to 0 in its first response, so every later
                    # nginx response lands here)
                    table.dynamic_entries.clear()
                    table._current_size = 0
                else:
                    for name, value in adds:
                        table.add(name, value)
            return list(headers)
        watch = self._watch
        size = table.maxsize
        watch.log, watch.dynamic_ref = [], False
        try:
            headers = self._coder.decode(data, raw)
        finally:
            adds, watch.log = watch.log, None
        if not watch.dynamic_ref and table.maxsize == size:
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            sizes = [32 + len(name) + len(value) for name, value in adds]  # hpack's entry size
            cache[key] = (tuple(headers), tuple(adds), sum(sizes),
                          max(sizes, default=0), min(sizes, default=0))
        return headers

