"""A private PostgreSQL server on 127.0.0.1 for the SQL tests and benchmarks.

``PgPeer`` runs ``initdb`` in a temporary directory and starts ``postgres`` on a free port; on
exit (or on any failure while starting) it stops the server with a fast shutdown and removes the
directory. PostgreSQL refuses to run as root, so when the tests run as root the cluster belongs
to an unprivileged user (the ``postgres`` system user Debian's package creates, else ``nobody``)
and the commands run through ``runuser``. The binaries come from Debian's ``postgresql`` package
(``apt-get install -y postgresql``, in tests/setup.sh); ``pg_bin()`` is None when it is absent.

The superuser ``perftui`` has the password ``PASSWORD`` (md5/scram over TCP), so a test can put
the password in a DSN and check it never reaches the session.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PASSWORD = "s3cret-pg-pw"
USER = "perftui"


def pg_bin() -> str | None:
    """The directory of ``initdb``/``postgres``/``pgbench`` (newest version installed), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return os.path.dirname(found[-1])
    which = shutil.which("initdb")
    return os.path.dirname(which) if which else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgPeer:
    """``with PgPeer() as pg: pg.dsn()`` — a throw-away PostgreSQL cluster."""

    def __init__(self, *, max_connections: int = 100, cpu: int | None = None, fsync: bool = False):
        bindir = pg_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql)")
        self.bindir = bindir
        self.max_connections = max_connections
        self.cpu = cpu
        self.fsync = fsync
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.dir: Path | None = None
        self.user: str | None = None

    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", self.user, "--", *argv] if self.user else argv

    def _run(self, argv: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(self._as_owner(argv), check=True, capture_output=True, text=True, timeout=120, **kw)

    def __enter__(self) -> "PgPeer":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="perftui-pg-"))
        data = self.dir / "data"
        pwfile = self.dir / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    pwd.getpwnam(name)
                except KeyError:
                    continue
                self.user = name
                break
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        self._run([f"{self.bindir}/initdb", "-D", str(data), "-U", USER, "--pwfile", str(pwfile),
                   "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync"])
        self.port = _free_port()
        argv = [f"{self.bindir}/postgres", "-D", str(data), "-p", str(self.port), "-h", "127.0.0.1",
                "-k", str(self.dir), "-c", f"max_connections={self.max_connections}",
                "-c", f"fsync={'on' if self.fsync else 'off'}", "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off", "-c", "shared_buffers=64MB", "-c", "log_min_messages=warning",
                "-c", "deadlock_timeout=200ms"]
        if self.cpu is not None:
            argv = ["taskset", "-c", str(self.cpu), *argv]
        self.log = open(self.dir / "log", "wb")
        self.proc = subprocess.Popen(self._as_owner(argv), stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited: " + (self.dir / "log").read_text(errors="replace")[-2000:])
            r = subprocess.run([f"{self.bindir}/pg_isready", "-h", "127.0.0.1", "-p", str(self.port)],
                               capture_output=True)
            if r.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("postgres did not become ready within 60 s")
            time.sleep(0.2)

    def dsn(self, database: str = "postgres", password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL through psql over the socket directory (trusted); its output, unaligned."""
        r = subprocess.run([f"{self.bindir}/psql", "-h", str(self.dir), "-p", str(self.port), "-U", USER,
                            "-d", database, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                           capture_output=True, text=True, timeout=120)
        if r.returncode:
            raise RuntimeError(f"psql failed: {r.stderr}")
        return r.stdout.strip()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            # SIGINT: "fast" shutdown (roll back sessions, then exit); postgres runs as another
            # user, so signal it through its process group with the owner's rights
            try:
                os.killpg(proc.pid, 2)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(timeout=10)
        if getattr(self, "log", None) is not None:
            self.log.close()
            self.log = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
