"""The WebSocket client's own cut of complete text frames (``perftui.worker.ws._FastConnection``)
against a raw server on 127.0.0.1 that writes frames in awkward pieces: two frames in one read,
a frame split after its first byte, after its header, inside a UTF-8 character (the next read
then looks like a complete text frame of its own), a 16-bit length, a ping (answered with
a pong by the library), a binary message that turns the shortcut off. Every message must arrive
once, whole and in order, and most reads must never reach the library's parser."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json

from websockets.asyncio.connection import Connection

from perftui.planload import plan_from_dict
from perftui.worker import ws
from perftui.worker.scenario import ScenarioRunner

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    head = bytes([0x80 | opcode]) + (bytes([n]) if n < 126 else bytes([126]) + n.to_bytes(2, "big"))
    return head + payload


def text(obj) -> bytes:
    return frame(0x1, json.dumps(obj, ensure_ascii=False).encode())


def script() -> tuple[list[bytes], list]:
    """The chunks the server writes, one read each, and the messages the client must see."""
    t = [text({"seq": i}) for i in range(9)]
    wide = frame(0x1, "xā\x03abcdef".encode())  # ā is C4 81 in UTF-8
    cut = wide.index(b"\xc4\x81") + 1  # after C4: the next read is 81 03 "abcdef", a text frame "abc" to a
    # client that did not know the library was mid-frame
    big = text({"seq": "big", "pad": "x" * 300})
    chunks = [
        t[0] + t[1],  # two frames in one read
        t[2][:1],  # one byte
        t[2][1:] + t[3][:2],  # the rest, then a header alone: the parser is mid-frame, buffer empty
        t[3][2:],  # the payload alone
        wide[:cut],
        wide[cut:] + t[4],  # starts with 0x81 mid-character: not a frame
        big + t[5],  # 16-bit length
        frame(0x9, b"hi") + t[6],  # a ping first: the library takes the rest of the read
        t[7],  # between frames again
        frame(0x2, b"\x81\x02binary") + t[8],  # binary: recv() from here on
    ]
    expected = [{"seq": 0}, {"seq": 1}, {"seq": 2}, {"seq": 3}, "xā\x03abcdef", {"seq": 4},
                {"seq": "big", "pad": "x" * 300}, {"seq": 5}, {"seq": 6}, {"seq": 7}, b"\x81\x02binary", {"seq": 8}]
    return chunks, expected


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pongs: list[bytes]) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:"))
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.1)
    for chunk in script()[0]:
        writer.write(chunk)
        await writer.drain()
        await asyncio.sleep(0.03)  # one read per chunk on loopback
    while True:  # the client's frames (masked): a pong, then its close
        b0, b1 = await reader.readexactly(2)
        mask = await reader.readexactly(4)
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(await reader.readexactly(b1 & 0x7F)))
        if b0 & 0x0F == 0xA:
            pongs.append(data)
        elif b0 & 0x0F == 0x8:
            writer.write(frame(0x8, data))
            await writer.drain()
            writer.close()
            return


async def test_text_frames_cut_in_awkward_places_arrive_once_whole_and_in_order(monkeypatch):
    pongs: list[bytes] = []
    server = await asyncio.start_server(lambda r, w: serve(r, w, pongs), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    library_reads = []
    original = Connection.data_received
    monkeypatch.setattr(Connection, "data_received", lambda self, data: (library_reads.append(bytes(data)),
                                                                          original(self, data))[1])
    try:
        plan = plan_from_dict({"target": url, "phases": [{"duration": "1s", "vus": 1}],
                               "scenarios": [{"name": "s", "steps": [{"ws_connect": "/raw"}]}]}).plan
        runner = ScenarioRunner(plan, url)
        it = ws.IterationState()
        assert await ws.run_step(runner, runner.scenarios[0].steps[0], it, runner.new_vu(), None)
        chunks, expected = script()
        for _ in range(300):
            if runner.ws_stats.received >= len(expected):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # nothing more may come
        got = [m if isinstance(m, bytes) or not m.startswith("{") else json.loads(m) for m in it.ws.buffer]
        assert got == expected
        assert runner.ws_stats.received == len(expected)
        assert it.ws.ws.on_text is None  # the binary message turned the shortcut off
        await it.finish()
        for _ in range(100):
            if pongs:
                break
            await asyncio.sleep(0.01)
        assert pongs == [b"hi"]  # the ping went through the library, which answered it
        # Reads the client cut itself never reached the library: the first (two whole frames),
        # the seventh (a 16-bit length and a small frame) and the ninth (after the ping).
        reached = [c for c in chunks if any(c == r for r in library_reads)]
        assert chunks[0] not in reached and chunks[6] not in reached and chunks[8] not in reached
        assert chunks[1] in reached and chunks[3] in reached and chunks[5] in reached  # mid-frame: the library's
        assert not runner.errors_sample
    finally:
        server.close()
        await server.wait_closed()
