"""Issue 17 over the wire: Gzip and StaticFiles under real waitress and gunicorn.

The stack is tests/wireapp.py, loaded by each server in a subprocess started by
tests/servers.py's helpers and stopped by its PID.

The servers run with ``python -P`` and a PYTHONPATH that puts the code under test
first (the ``middleware`` package first found on PYTHONPATH, else the one this
process imported; then tests/, for ``wireapp``): so ``PYTHONPATH=/old/checkout
pytest tests/test_wire.py`` runs the old code in the servers, which ``/_where``
confirms. Without ``-P`` the ``-m`` runner would put the working directory, this
checkout, first; gunicorn's ``--chdir`` does the same, so it is pointed at a
directory of the test's own. The test process itself always imports this checkout
(pytest puts it first); it only compares bytes.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import http.client
import os
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import middleware

from .servers import free_port, running_command, wait_until
from .wireapp import PAGE, PASSWORD, USER

pytestmark = pytest.mark.server

TESTS = Path(__file__).resolve().parent
APP = "wireapp:app"  # found through PYTHONPATH (see the module docs)
# waitress's default is 262144; the hostile requests carry one value of ~100 KB.
HEADER_LIMIT = 1024 * 1024
SERVERS = ["waitress", "gunicorn", "gunicorn-gthread"]
# gunicorn's sync worker answers every request with Connection: close.
KEEPS_ALIVE = {"waitress": True, "gunicorn": False, "gunicorn-gthread": True}


def server_command(kind: str, port: int, workdir: Path) -> list[str]:
    python = [sys.executable, "-P", "-m"]
    if kind == "waitress":
        return [
            *python, "waitress", f"--listen=127.0.0.1:{port}",
            f"--max-request-header-size={HEADER_LIMIT}", APP,
        ]  # fmt: skip
    if kind.startswith("gunicorn"):
        threads = ["--threads=4", "--keep-alive=10"] if kind.endswith("gthread") else []
        return [
            *python, "gunicorn", "--workers=1", "--graceful-timeout=2",
            f"--bind=127.0.0.1:{port}", f"--chdir={workdir}", *threads, APP,
        ]  # fmt: skip
    raise ValueError(f"unknown server {kind!r}")


def code_under_test() -> Path:
    """The ``middleware/__init__.py`` the servers are to import: the first one on
    PYTHONPATH (``PYTHONPATH=/old/checkout`` tests that checkout), else the one
    this process imported. (pytest puts this checkout first on this process's
    sys.path, ahead of PYTHONPATH, as tests/ is a package.)"""
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        candidate = Path(entry or ".", "middleware", "__init__.py")
        if entry and candidate.is_file():
            return candidate.resolve()
    return Path(middleware.__file__ or "").resolve()


def server_env(static: Path) -> dict[str, str]:
    """The environment of a server: this process's, with the code under test first
    on PYTHONPATH (then tests/, for ``wireapp``), and the static directory."""
    package_root = str(code_under_test().parent.parent)
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    path = os.pathsep.join([package_root, str(TESTS), *inherited])
    return {**os.environ, "PYTHONPATH": path, "WIREAPP_STATIC": str(static)}


def get(
    port: int, path: str, headers: dict[str, str] | None = None
) -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


class Server:
    """A running server: its port and its process (whose PID it is stopped by)."""

    def __init__(self, kind: str, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.kind = kind
        self.port = port
        self.proc = proc


@contextlib.contextmanager
def serving(kind: str, tmp_path: Path) -> Iterator[Server]:
    """Run server *kind* over tests/wireapp.py; yield it once it is up and loaded
    the same middleware package as this process. Stopped by its PID on exit."""
    static = tmp_path / "static"
    static.mkdir(exist_ok=True)
    (static / "hello.txt").write_text("hello from the static directory\n" * 40)
    workdir = tmp_path / "cwd"
    workdir.mkdir(exist_ok=True)
    port = free_port()
    with running_command(
        server_command(kind, port, workdir),
        port,
        tmp_path / f"{kind}.log",
        env=server_env(static),
    ) as proc:
        response, where = get(port, "/_where")
        assert response.status == 200, where
        expected = code_under_test()
        assert Path(where.decode()).resolve() == expected, (
            f"{kind} imported {where.decode()}, not {expected}"
        )
        yield Server(kind, port, proc)


@pytest.fixture(params=SERVERS)
def server(request: Any, tmp_path: Path) -> Iterator[Server]:
    with serving(request.param, tmp_path) as running:
        yield running


# -- 1. keep-alive: a compressed body with an exact Content-Length ---------------------


@pytest.mark.parametrize("path", ["/page", "/flask-style"])
def test_compressed_responses_keep_the_connection_alive(
    server: Server, path: str
) -> None:
    """Defect 11: a compressed response whose whole body is known gets an exact
    Content-Length, so the server keeps the connection (one socket, ten requests).
    Before: no length, sent chunked or close-delimited."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    ports: list[int] = []
    sockets: list[int] = []
    try:
        for _ in range(10):
            conn.request("GET", path, headers={"Accept-Encoding": "gzip"})
            assert conn.sock is not None
            ports.append(conn.sock.getsockname()[1])
            sockets.append(id(conn.sock))
            response = conn.getresponse()
            raw = response.read()
            assert response.status == 200
            assert response.getheader("Content-Encoding") == "gzip"
            assert response.getheader("Transfer-Encoding") is None
            assert response.getheader("Content-Length") == str(len(raw)), (
                response.getheaders()
            )
            assert gzip.decompress(raw) == PAGE
            if KEEPS_ALIVE[server.kind]:
                connection = response.getheader("Connection") or ""
                assert "close" not in connection.lower(), response.getheaders()
                assert not response.will_close
                assert conn.sock is not None  # not closed after this response
                ports.append(conn.sock.getsockname()[1])
    finally:
        conn.close()
    if KEEPS_ALIVE[server.kind]:
        assert len(set(ports)) == 1, f"reconnected: local ports {ports}"
        assert len(set(sockets)) == 1


# -- 2. truncation: a short body stays visibly short -----------------------------------


def raw_get(port: int, path: str) -> bytes:
    """Everything the server sends for one GET (Connection: close), up to EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    return data


def dechunk(body: bytes) -> tuple[bytes, bool]:
    """A chunked body's data, and whether its last chunk (``0``) arrived."""
    data = b""
    while True:
        line, sep, rest = body.partition(b"\r\n")
        if not sep:
            return data, False
        try:
            size = int(line.split(b";")[0], 16)
        except ValueError:
            return data, False
        if size == 0:
            return data, True
        if len(rest) < size + 2:
            return data + rest[:size], False
        data += rest[:size]
        body = rest[size + 2 :]


def looks_complete(response: bytes) -> tuple[bool, str]:
    """Whether a client would take *response* for a whole 200, and why."""
    head, sep, body = response.partition(b"\r\n\r\n")
    if not sep:
        return False, f"no complete head: {response[:200]!r}"
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:])
    }
    if status >= 500:
        return False, f"status {status}"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        data, terminated = dechunk(body)
        if not terminated:
            return False, "closed before the chunked terminator"
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if len(body) < length:
            return False, f"{len(body)} of Content-Length {length} bytes"
        data = body[:length]
    else:
        data = body
    if headers.get("content-encoding") == "gzip":
        decoder = zlib.decompressobj(31)
        try:
            decoder.decompress(data)
        except zlib.error as exc:
            return False, f"the gzip stream is broken: {exc}"
        if not decoder.eof:
            return False, "the gzip stream does not end"
        return True, f"status {status}, a gzip stream to its end, {headers}"
    # Identity without a length or chunking: close-delimited, cannot be told short.
    return status == 200, f"status {status}, identity, {headers}"


@pytest.mark.parametrize("path", ["/short", "/short-stream"])
def test_a_short_body_stays_visibly_short(server: Server, path: str) -> None:
    """Defect 10: the app declares more than it sends. The compressed response must
    not look whole: a 5xx, a body short of its length or chunked terminator, or a
    gzip stream that does not end. Before: a complete-looking gzip response."""
    response = raw_get(server.port, path)
    complete, why = looks_complete(response)
    assert not complete, f"{path} over {server.kind} looks whole: {why}"

    # And as http.client sees it: a 5xx, IncompleteRead, or a gzip stream cut short.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        conn.request("GET", path, headers={"Accept-Encoding": "gzip"})
        answer = conn.getresponse()
        try:
            body = answer.read()
        except http.client.IncompleteRead:
            return
    finally:
        conn.close()
    if answer.status >= 500:
        return
    decoder = zlib.decompressobj(31)
    decoder.decompress(body)
    assert not decoder.eof, f"{path} over {server.kind}: http.client read it whole"


# -- 3. memory: hostile values are not remembered --------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


HOSTILE = 100_000
# Warm-up requests: 150 of each kind, so more than 128 long paths.
WARM_UP = 600


def hostile(number: int) -> tuple[str, dict[str, str], int]:
    """Request *number* of the hostile cycle: path, headers, expected status; each
    carries a unique value of about 100 KB."""
    unique = f"{number:07d}-" + "a" * HOSTILE
    kind = number % 4
    if kind == 0:  # a miss under /static/, remembered by the old miss memo
        return f"/static/m{unique}", {}, 404
    if kind == 1:  # an Accept-Encoding, remembered by the old negotiation caches
        return "/page", {"Accept-Encoding": f"gzip, x-{unique}"}, 200
    accept = {"Accept": f"text/html, application/x-{unique}"}
    if kind == 2:  # the 401 page is chosen by Accept
        return "/private", accept, 401
    return "/boom", accept, 500  # so is the error page


def send_all(port: int, numbers: range) -> None:
    """The hostile requests *numbers*, over keep-alive connections."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for number in numbers:
            path, headers, status = hostile(number)
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status == status, (number, path, response.status)
    finally:
        conn.close()


def test_hostile_values_do_not_grow_the_servers_memory(tmp_path: Path) -> None:
    """Defects 1-3: 2,000 requests, each with a unique ~100 KB path, Accept-Encoding
    or Accept, grow a waitress process by less than 5 MiB. Before: the StaticFiles
    miss memo and the Accept-Encoding memos kept every value (about 100 MiB)."""
    with serving("waitress", tmp_path) as server:
        response, body = get(
            server.port,
            "/private",
            {"Authorization": "Basic " + _basic(USER, PASSWORD)},
        )
        assert response.status == 200, body
        # Warm-up: every kind of request, on every thread, before the first reading;
        # and enough long paths to fill the stdlib's own bounded cache: waitress
        # parses each request target with urllib.parse.urlsplit, an lru_cache of
        # 128 entries since Python 3.11, which holds ~22 MiB of 100 KB paths once
        # full (a bare app under waitress grows that much, once, then not at all).
        send_all(server.port, range(10**6, 10**6 + WARM_UP))
        for path in ("/page", "/flask-style", "/static/hello.txt"):
            assert get(server.port, path, {"Accept-Encoding": "gzip"})[0].status == 200
        time.sleep(0.5)
        before = rss_kib(server.proc.pid)
        started = time.monotonic()
        for first in range(0, 2_000, 50):  # a new connection every 50 requests
            send_all(server.port, range(first, first + 50))
        elapsed = time.monotonic() - started
        time.sleep(0.5)
        after = rss_kib(server.proc.pid)
        growth = after - before
        print(
            f"\nwaitress RSS {before} KiB -> {after} KiB: {growth / 1024:+.1f} MiB "
            f"over 2000 hostile requests in {elapsed:.1f} s"
        )
        assert growth < 5 * 1024, (
            f"RSS grew {growth / 1024:.1f} MiB ({before} -> {after} KiB)"
        )


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


# -- 4. process hygiene ----------------------------------------------------------------


def gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status  # exited, waiting for its parent to reap it


@pytest.mark.parametrize("kind", ["waitress", "gunicorn"])
def test_servers_are_stopped_by_their_pid(tmp_path: Path, kind: str) -> None:
    """The helper stops the server it started (and gunicorn its worker) on exit."""
    with serving(kind, tmp_path) as server:
        pid = server.proc.pid
        response, body = get(server.port, "/_pid")
        worker = int(body)
        assert not gone(pid) and not gone(worker)
        if kind == "waitress":
            assert worker == pid
    assert server.proc.returncode is not None
    assert gone(pid)
    wait_until(lambda: gone(worker), 15, lambda: f"worker {worker} still runs")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
