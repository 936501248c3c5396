"""psutil sampling: perftui's own processes, the machine, and a local process of the system under
test. ``ProcessSampler.sample`` is blocking (it reads /proc); the monitor runs it in a thread once
a second and hands the ``ProcessSample`` to ``MonitorState.apply``.

The SUT process is named in the plan by pid, by process name or command-line substring, or as
``"target"``: whatever listens on the target's port on this machine. Its children are included
(a pre-forking server is one tree). If it goes away, it is looked up again every few seconds, so
a restarted server is picked up (as a new pid).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import psutil

from perftui.monitor.model import ProcessSample

__all__ = ["ProcessSampler", "find_sut"]

MB = 1 << 20
RESOLVE_EVERY_S = 2.0
CONNECTIONS_EVERY_S = 5.0
"""TCP connection counts are refreshed this often and carried between refreshes: counting them
means reading the machine's whole socket table, which cost the coordinator more CPU than the
rest of its work put together when it was done for every process every second."""


def _tcp_inodes() -> set[int] | None:
    """Socket inodes of every TCP socket on the machine (IPv4 and IPv6), from one read of
    /proc/net/tcp{,6}; None where /proc has no such tables."""
    inodes: set[int] = set()
    found = False
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name, "rb") as f:
                next(f, None)  # header
                for line in f:
                    parts = line.split(None, 10)
                    if len(parts) > 9:
                        inodes.add(int(parts[9]))
            found = True
        except (OSError, ValueError):
            continue
    return inodes if found else None


def _socket_inodes(pid: int) -> set[int] | None:
    """Inodes of the sockets a process holds open (from its /proc/PID/fd links)."""
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return None
    out: set[int] = set()
    for n in names:
        try:
            link = os.readlink(f"{fd_dir}/{n}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(int(link[8:-1]))
    return out


def _local_host(host: str) -> bool:
    if host in ("localhost", "127.0.0.1", "::1", "0.0.0.0", "::") or host.startswith("127."):
        return True
    try:
        addrs = {a.address for nic in psutil.net_if_addrs().values() for a in nic}
    except OSError:
        return False
    if host in addrs:
        return True
    try:
        return socket.gethostbyname(host) in addrs
    except OSError:
        return False


def find_sut(spec: str | int, target: str, exclude: set[int]) -> psutil.Process | None:
    """The process a plan's ``process`` names, or None."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        try:
            return psutil.Process(int(spec))
        except (psutil.Error, ValueError):
            return None
    spec = spec.strip()
    if spec == "target":
        parts = urlsplit(target)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if not _local_host(parts.hostname or ""):
            return None
        try:
            conns = psutil.net_connections(kind="tcp")
        except (psutil.Error, OSError):
            return None
        for c in conns:
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
                try:
                    return psutil.Process(c.pid)
                except psutil.Error:
                    continue
        return None
    exact, partial = [], []
    for p in psutil.process_iter(["pid", "name", "cmdline", "create_time"]):
        if p.pid in exclude:
            continue
        name = p.info.get("name") or ""
        if name == spec:
            exact.append(p)
        elif spec in " ".join(p.info.get("cmdline") or ()):
            partial.append(p)
    found = exact or partial
    if not found:
        return None
    return min(found, key=lambda p: p.info.get("create_time") or 0.0)


def _schedstat(pid: int) -> tuple[int, int] | None:
    """(ns on a CPU, ns runnable but waiting for one) of a process's main thread (Linux)."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as f:
            run, wait, _ = f.read().split()
        return int(run), int(wait)
    except (OSError, ValueError):
        return None


class ProcessSampler:
    def __init__(self, *, own: Callable[[], list[tuple[str, int]]], sut: str | int | None = None, target: str = ""):
        self.own = own
        """-> [(label, pid)]: ``("coordinator", pid)``, ``("worker 0", pid)``, ..."""
        self.sut_spec = sut
        self.target = target
        self._procs: dict[int, psutil.Process] = {}
        self._primed: set[int] = set()
        self._sut: psutil.Process | None = None
        self._sut_looked = 0.0
        self._host_times: tuple[float, float] | None = None
        self._sched: dict[int, tuple[float, int]] = {}  # pid -> (monotonic, wait ns)
        self._last = time.monotonic()
        self._conns: dict[int, float] = {}  # pid -> TCP connections at the last refresh
        self._conns_at = -CONNECTIONS_EVERY_S
        self._tcp: set[int] | None = None

    def _proc(self, pid: int) -> psutil.Process | None:
        p = self._procs.get(pid)
        if p is not None and p.is_running():
            return p
        try:
            p = self._procs[pid] = psutil.Process(pid)
        except psutil.Error:
            self._procs.pop(pid, None)
            return None
        p.cpu_percent(None)  # the first call only starts the measurement
        self._primed.discard(pid)
        return p

    def _measure(self, p: psutil.Process, *, connections: bool = True) -> dict[str, float] | None:
        """cpu (None until primed), rss, threads, fds, connections of one process."""
        try:
            with p.oneshot():
                cpu = p.cpu_percent(None)
                out = {"cpu_percent": cpu if p.pid in self._primed else None, "rss": float(p.memory_info().rss),
                       "threads": float(p.num_threads())}
                try:
                    out["fds"] = float(p.num_fds())
                except (psutil.Error, AttributeError):
                    pass
                if connections:
                    n = self._connections(p)
                    if n is not None:
                        out["connections"] = n
            self._primed.add(p.pid)
            out["cpu_wait_percent"] = self._wait_percent(p.pid)
            return out
        except psutil.Error:
            return None

    def _connections(self, p: psutil.Process) -> float | None:
        """TCP connections of one process, as of the last refresh (see CONNECTIONS_EVERY_S)."""
        if self._tcp is None or p.pid not in self._conns:
            if self._tcp is None:
                try:
                    return float(len(p.net_connections(kind="tcp")))
                except psutil.Error:
                    return None
            held = _socket_inodes(p.pid)
            if held is None:
                return None
            self._conns[p.pid] = float(len(held & self._tcp))
        return self._conns[p.pid]

    def _refresh_connections(self, now: float) -> None:
        if now - self._conns_at < CONNECTIONS_EVERY_S:
            return
        self._conns_at = now
        self._conns.clear()
        self._tcp = _tcp_inodes()

    def _wait_percent(self, pid: int) -> float | None:
        """Share of the interval the process's main thread was runnable but waiting for a CPU:
        on a busy machine a CPU-bound worker gets less than 100 % of a core yet still wants it."""
        st = _schedstat(pid)
        now = time.monotonic()
        if st is None:
            return None
        prev, self._sched[pid] = self._sched.get(pid), (now, st[1])
        if prev is None or now <= prev[0]:
            return None
        return max(0.0, (st[1] - prev[1]) / 1e9 / (now - prev[0]) * 100)

    def prime(self) -> None:
        """Start the CPU measurements, so that the first sample already has percentages."""
        for _, pid in self.own():
            if self._proc(pid) is not None:
                self._primed.add(pid)
                self._wait_percent(pid)
        self._host_cpu()
        if self.sut_spec is not None:
            for p in self._sut_tree():
                self._primed.add(p.pid)

    def _host_cpu(self) -> float | None:
        """Machine-wide CPU % since the previous call (psutil.cpu_percent keeps its state per
        thread, and samples run in whichever executor thread is free)."""
        times = psutil.cpu_times()
        total = sum(times)
        idle = times.idle + getattr(times, "iowait", 0.0)
        prev, self._host_times = self._host_times, (total, idle)
        if prev is None or total <= prev[0]:
            return None
        return max(0.0, min(100.0, 100.0 * (1 - (idle - prev[1]) / (total - prev[0]))))

    def sample(self, t: float) -> ProcessSample:
        now = time.monotonic()
        interval, self._last = max(1e-3, now - self._last), now
        self._refresh_connections(now)
        gen: dict[str, float] = {}
        busy: dict[str, float] = {}
        totals = {"cpu_percent": 0.0, "rss": 0.0, "threads": 0.0, "connections": 0.0}
        worker_max = None
        seen = set()
        for label, pid in self.own():
            seen.add(pid)
            p = self._proc(pid)
            m = self._measure(p) if p is not None else None
            if m is None:
                continue
            for k in totals:
                totals[k] += m.get(k) or 0.0
            key = label.replace(" ", "")
            if m["cpu_percent"] is not None:
                wait = m.get("cpu_wait_percent")
                # CPU demand: time on a CPU plus time waiting for one
                busy[label] = round(m["cpu_percent"] + (wait or 0.0), 1)
                gen[f"{key}_cpu_percent"] = round(m["cpu_percent"], 1)
                if wait is not None:
                    gen[f"{key}_cpu_wait_percent"] = round(wait, 1)
                if label.startswith("worker"):
                    worker_max = max(worker_max or 0.0, m["cpu_percent"])
            gen[f"{key}_rss_mb"] = round(m["rss"] / MB, 2)
        gen.update(cpu_percent=round(totals["cpu_percent"], 1), rss_mb=round(totals["rss"] / MB, 2),
                   threads=totals["threads"], connections=totals["connections"])
        if worker_max is not None:
            gen["worker_cpu_max_percent"] = round(worker_max, 1)
        host: dict[str, float] = {}
        try:
            cpu = self._host_cpu()
            if cpu is not None:
                host["cpu_percent"] = round(cpu, 1)
            vm = psutil.virtual_memory()
            host["memory_percent"] = round(vm.percent, 1)
            host["memory_used_mb"] = round((vm.total - vm.available) / MB, 1)
            host["load1"] = round(os.getloadavg()[0], 2)
        except (OSError, psutil.Error):
            pass
        sut = sut_pid = None
        sut_name = ""
        if self.sut_spec is not None:
            sut, sut_pid, sut_name = self._sample_sut(seen)
        # forget processes that are gone
        for pid in [pid for pid, p in self._procs.items() if not p.is_running()]:
            self._procs.pop(pid, None)
            self._primed.discard(pid)
            self._sched.pop(pid, None)
        return ProcessSample(t=t, interval=round(interval, 3), generator=gen, busy=busy, host=host,
                             sut=sut, sut_pid=sut_pid, sut_name=sut_name)

    def _sut_tree(self) -> list[psutil.Process]:
        root = self._sut
        if root is None or not root.is_running():
            now = time.monotonic()
            if now - self._sut_looked < RESOLVE_EVERY_S and root is None and self._sut_looked:
                return []
            self._sut_looked = now
            own = {pid for _, pid in self.own()} | {os.getpid()}
            root = self._sut = find_sut(self.sut_spec, self.target, own)  # type: ignore[arg-type]
            if root is None:
                return []
            root = self._sut = self._proc(root.pid)
            if root is None:
                return []
        try:
            children = root.children(recursive=True)
        except psutil.Error:
            children = []
        procs = [root]
        for c in children:
            p = self._proc(c.pid)
            if p is not None:
                procs.append(p)
        return procs

    def _sample_sut(self, own: set[int]) -> tuple[dict[str, float], int | None, str]:
        procs = self._sut_tree()
        if not procs:
            self._sut = None
            return {}, None, ""
        cpu, rss, threads, fds, conns, n = None, 0.0, 0.0, 0.0, 0.0, 0
        for p in procs:
            m = self._measure(p)
            if m is None:
                continue
            n += 1
            if m["cpu_percent"] is not None:
                cpu = (cpu or 0.0) + m["cpu_percent"]
            rss += m["rss"]
            threads += m["threads"]
            fds += m.get("fds", 0.0)
            conns += m.get("connections", 0.0)
        if n == 0:
            self._sut = None
            return {}, None, ""
        out = {"rss_mb": round(rss / MB, 2), "threads": threads, "connections": conns, "open_fds": fds,
               "processes": float(n)}
        if cpu is not None:
            out["cpu_percent"] = round(cpu, 1)
        root = procs[0]
        try:
            name = root.name()
        except psutil.Error:
            name = ""
        return out, root.pid, name
