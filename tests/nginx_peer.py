"""A real nginx on 127.0.0.1 for transport tests and benchmarks.

``NginxPeer`` writes a config and a few static files into a temporary prefix, starts nginx in the
foreground on a free port and stops it on exit. Used by tests/test_transport.py and by
benchmarks (``cpu=0`` pins it with taskset). The Debian package provides the binary
(``apt-get install -y nginx``); ``nginx_binary()`` is None when it is absent.

Paths served:
  /small.txt          "ok" (2 bytes)          /1mb.bin       1 MiB of deterministic bytes
  /index.html         a small HTML page       /status/NNN    `return NNN` for STATUS_CODES
  /chunked/<file>     the file through sub_filter, so nginx sends it chunked (no length)
  /close/<file>       the file with keep-alive disabled (Connection: close)
  /headers            200 "hi" with X-Perftui-A / X-Perftui-B headers
  /proto              the protocol nginx saw ("HTTP/1.1", or "HTTP/2.0" with http2=True)
  /redirect           302 to /proto (relative Location)
  /conn               "<connection serial> <requests on it>": server-side view of keep-alive
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

STATUS_CODES = (200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 429, 500, 502, 503)
SMALL_BODY = b"ok"
MB_BODY = bytes(range(256)) * 4096  # 1 MiB
INDEX_HTML = b"<!doctype html><html><head><title>perftui</title></head><body>ok</body></html>\n"


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _status_location(code: int) -> str:
    if code in (301, 302):
        return f"location = /status/{code} {{ return {code} /small.txt; }}"
    if code in (204, 304):
        return f"location = /status/{code} {{ return {code}; }}"
    return f'location = /status/{code} {{ return {code} "status {code}\\n"; }}'


class NginxPeer:
    """``with NginxPeer() as nginx: nginx.url("/small.txt")``."""

    def __init__(
        self,
        *,
        workers: int = 1,
        cpu: int | None = None,
        keepalive_requests: int = 1_000_000,
        start_timeout: float = 10.0,
        http2: bool = False,
        tls: tuple[str, str] | None = None,
    ):
        self.workers = workers
        self.cpu = cpu
        self.keepalive_requests = keepalive_requests
        self.start_timeout = start_timeout
        self.http2 = http2  # cleartext HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1
        # (certificate file, key file): serve HTTPS; with http2=True, HTTP/2 and HTTP/1.1 over
        # TLS, chosen by ALPN
        self.tls = tls
        self.host = "127.0.0.1"
        self.port = 0
        self.prefix: Path | None = None
        self._proc: subprocess.Popen | None = None

    def url(self, path: str = "/") -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}{path}"

    def __enter__(self) -> NginxPeer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx not found (apt-get install -y nginx)")
        self.prefix = Path(tempfile.mkdtemp(prefix="perftui-nginx-"))
        self._write_files()
        last_error = ""
        for _ in range(5):  # the free port can be taken between probing and nginx's bind
            self.port = _free_port()
            conf = self.prefix / "nginx.conf"
            conf.write_text(self._config())
            cmd = [
                binary,
                "-p",
                str(self.prefix),
                "-c",
                str(conf),
                "-e",
                str(self.prefix / "error.log"),
            ]
            if self.cpu is not None and shutil.which("taskset"):
                cmd = ["taskset", "-c", str(self.cpu), *cmd]
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            if self._wait_ready():
                return
            last_error = self._stop_proc()
            if "Address already in use" not in last_error:
                break
        self._cleanup_prefix()
        raise RuntimeError(f"nginx did not start: {last_error.strip()}")

    def stop(self) -> None:
        self._stop_proc()
        self._cleanup_prefix()

    # ---- internals ----------------------------------------------------------------------

    def _write_files(self) -> None:
        assert self.prefix is not None
        # Workers run as an unprivileged user when nginx starts as root: make files readable.
        self.prefix.chmod(0o755)
        html = self.prefix / "html"
        html.mkdir(mode=0o755)
        (html / "small.txt").write_bytes(SMALL_BODY)
        (html / "1mb.bin").write_bytes(MB_BODY)
        (html / "index.html").write_bytes(INDEX_HTML)
        for path in html.iterdir():
            path.chmod(0o644)
        (self.prefix / "tmp").mkdir(mode=0o755)

    def _config(self) -> str:
        # HTTP/2 without sendfile: with it, nginx (1.22) writes a static file's DATA frame as a
        # second segment that Nagle holds until the client's delayed ACK, 40 ms per request
        # (h2load: 1.4 k req/s with it, 23 k without).
        assert self.prefix is not None
        p = self.prefix
        statuses = "\n        ".join(_status_location(c) for c in STATUS_CODES)
        return f"""
daemon off;
worker_processes {self.workers};
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    types {{ text/plain txt; text/html html; application/octet-stream bin; }}
    default_type application/octet-stream;
    client_body_temp_path {p}/tmp/body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    keepalive_requests {self.keepalive_requests};
    keepalive_timeout 65;
    sendfile {"off" if self.http2 else "on"};
    server {{
        listen {self.host}:{self.port}{" ssl" if self.tls else ""}{" http2" if self.http2 else ""};
        server_name localhost;
        {f"ssl_certificate {self.tls[0]}; ssl_certificate_key {self.tls[1]};" if self.tls else ""}
        root {p}/html;
        {statuses}
        location /chunked/ {{
            alias {p}/html/;
            sub_filter_types *;
            sub_filter "perftui" "PERFTUI";
            sub_filter_once off;
        }}
        location /close/ {{
            alias {p}/html/;
            keepalive_timeout 0;
        }}
        location = /proto {{
            return 200 "$server_protocol";
        }}
        location = /redirect {{
            absolute_redirect off;
            return 302 /proto;
        }}
        location = /conn {{
            return 200 "$connection $connection_requests";
        }}
        location = /headers {{
            add_header X-Perftui-A "one";
            add_header X-Perftui-B "two";
            return 200 "hi";
        }}
    }}
}}
"""

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return True
            except OSError:
                time.sleep(0.02)
        return False

    def _stop_proc(self) -> str:
        proc, self._proc = self._proc, None
        if proc is None:
            return ""
        if proc.poll() is None:
            proc.terminate()  # SIGTERM: fast shutdown of master and workers
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        if self.prefix is not None and (self.prefix / "error.log").exists():
            stderr += (self.prefix / "error.log").read_text(errors="replace")
        return stderr

    def _cleanup_prefix(self) -> None:
        if self.prefix is not None:
            shutil.rmtree(self.prefix, ignore_errors=True)
            self.prefix = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
