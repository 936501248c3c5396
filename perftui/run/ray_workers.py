"""The Ray actor that hosts one perftui worker on a cluster node.

The actor runs where Ray placed it and starts the ordinary worker process there
(``python -m perftui.worker``, the same loop as on one machine); it only relays frames: commands
from the coordinator to the worker's stdin, the worker's stdout back in answer to ``poll``. The
worker holds the actor's lifeline (``perftui.lifeline``), so it never outlives the actor: when Ray
kills the actor, or its node goes away, the worker goes with it.

Only imported where Ray is installed (``perftui.run.cluster`` imports it on demand).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections import deque

import ray

POLL_BYTES = 1 << 20
"""At most this much of the worker's output goes back in one ``poll`` answer."""
ORPHAN_AFTER = 5.0
"""Seconds without a poll after which the coordinator is taken for gone (killed, its machine
lost): the worker's stdin is closed, which stops it, and the actor exits, rather than loading the
target and holding a CPU for as long as Ray keeps an orphaned actor."""


class WorkerHost:
    """One worker process on this node (see the module docstring). Async: ``poll`` waits for
    output while ``send`` calls come in."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.out = bytearray()
        self.ready = asyncio.Event()
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self.next_seq = 0
        self.held: dict[int, bytes] = {}
        self.reader: asyncio.Task | None = None
        self.errs: asyncio.Task | None = None
        self.last_poll = time.monotonic()
        self.watch: asyncio.Task | None = None

    async def start(self) -> dict:
        """Start the worker process; what the coordinator needs to know about where it runs."""
        from perftui.lifeline import child_options

        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "perftui.worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True, **child_options())
        self.reader = asyncio.ensure_future(self._read())
        self.errs = asyncio.ensure_future(self._read_stderr())
        self.last_poll = time.monotonic()
        self.watch = asyncio.ensure_future(self._watch_coordinator())
        ctx = ray.get_runtime_context()
        return {"pid": self.proc.pid, "node_id": ctx.get_node_id(), "host": socket.gethostname(),
                "ip": ray.util.get_node_ip_address()}

    async def clock(self) -> tuple[float, str]:
        """This node's ``time.monotonic()`` and its kernel's boot id (the coordinator estimates
        the offset to its own clock; one kernel has one monotonic clock)."""
        return time.monotonic(), boot_id()

    async def send(self, seq: int, data: bytes) -> None:
        """Frames for the worker's stdin, written in ``seq`` order whatever order calls arrive in."""
        self.held[seq] = data
        proc = self.proc
        while self.next_seq in self.held:
            chunk = self.held.pop(self.next_seq)
            self.next_seq += 1
            if proc is not None and proc.stdin is not None and not proc.stdin.is_closing():
                try:
                    proc.stdin.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass

    async def poll(self, wait: float) -> tuple[bytes, int | None, list[str]]:
        """The worker's output since the last poll, once there is some or after ``wait`` seconds:
        (frames, exit code or None while it runs, its last stderr lines once it has exited)."""
        self.last_poll = time.monotonic()
        if not self.out and not self._done():
            self.ready.clear()
            try:
                await asyncio.wait_for(self.ready.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass
        data = bytes(self.out[:POLL_BYTES])
        del self.out[:POLL_BYTES]
        if self.out or not self._done():
            return data, None, []
        if self.errs is not None:
            await asyncio.wait([self.errs], timeout=1.0)
        return data, self.proc.returncode if self.proc else -1, list(self.stderr_tail)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()

    async def _watch_coordinator(self) -> None:
        while not self._done():
            await asyncio.sleep(1.0)
            if time.monotonic() - self.last_poll > ORPHAN_AFTER and self.proc.stdin is not None:
                self.proc.stdin.close()  # the worker stops by itself when its stdin closes
                try:
                    await asyncio.wait_for(self.proc.wait(), timeout=5.0)
                except asyncio.TimeoutError:
                    self.proc.kill()
                # and the actor ends, so that its node's CPU is free for the next run at once
                # (Ray would keep an orphaned client's actors for its reconnect grace period)
                os._exit(0)

    def _done(self) -> bool:
        return self.reader is not None and self.reader.done()

    async def _read(self) -> None:
        stream = self.proc.stdout
        while True:
            data = await stream.read(65536)
            if not data:
                break
            self.out += data
            self.ready.set()
        await self.proc.wait()
        self.ready.set()

    async def _read_stderr(self) -> None:
        async for line in self.proc.stderr:
            self.stderr_tail.append(line.decode("utf-8", "replace").rstrip())


def boot_id() -> str:
    """This kernel's boot id ("" where there is none to read): processes that see the same one
    read the same ``time.monotonic()``."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def actor_class(num_cpus: float):
    """``WorkerHost`` as a Ray actor class that holds ``num_cpus`` of its node."""
    return ray.remote(num_cpus=num_cpus, max_restarts=0, max_task_retries=0)(WorkerHost)
