"""Start a real WSGI server in a subprocess on 127.0.0.1, and stop it by its PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = "tests.serverapp:app"


def wait_until(
    ready: Callable[[], bool], timeout: float, what: Callable[[], str]
) -> None:
    """Poll *ready* until it is true; after *timeout* seconds raise TimeoutError
    with *what* (a description of the state), so a hung server fails the test."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(what())
        time.sleep(0.05)


def accepting(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def command(kind: str, port: int) -> list[str]:
    if kind == "waitress":
        return [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", APP]
    if kind == "gunicorn":
        return [
            sys.executable, "-m", "gunicorn", "--workers=1", "--graceful-timeout=2",
            f"--bind=127.0.0.1:{port}", APP,
        ]  # fmt: skip
    if kind == "wsgiref":
        return [sys.executable, "-m", "tests.serverapp", str(port)]
    raise ValueError(f"unknown server {kind!r}")


@contextlib.contextmanager
def running_command(
    command: list[str],
    port: int,
    log_path: Path,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run *command* (a server that will listen on *port*), its output in
    *log_path*; yield the process once the port accepts, and stop it by its PID."""
    log = log_path.open("wb")
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"},
    )
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{command[:4]} exited with {proc.returncode}: "
                    f"{log_path.read_text()}"
                )
            return accepting(port)

        wait_until(
            up, 30, lambda: f"{command[:4]} did not start: {log_path.read_text()}"
        )
        yield proc
    finally:
        stop(proc)
        log.close()


@contextlib.contextmanager
def running(kind: str, tmp_path: Path) -> Iterator[int]:
    """Run server *kind* serving tests.serverapp; yield its port."""
    port = free_port()
    with running_command(command(kind, port), port, tmp_path / f"{kind}.log"):
        yield port


def redis_binary() -> str | None:
    """The ``redis-server`` to test against; None (the tests skip) when it is not
    installed, except under CI (``CI=true``), where that is a failure."""
    import shutil

    import pytest

    binary = shutil.which("redis-server")
    if binary is None and os.environ.get("CI") == "true":
        pytest.fail(
            "redis-server is not installed (CI=true): apt-get install redis-server"
        )
    return binary


@contextlib.contextmanager
def redis_server(tmp_path: Path) -> Iterator[str]:
    """Run a real ``redis-server`` on 127.0.0.1 (no persistence, its files in
    *tmp_path*); yield its URL; stop it by its PID."""
    import pytest

    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    log_path = tmp_path / "redis.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(tmp_path),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ],  # fmt: skip
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {log_path.read_text()}")
            return accepting(port)

        wait_until(
            up, 30, lambda: f"redis-server did not start: {log_path.read_text()}"
        )
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop *proc* by its PID: SIGTERM, then SIGKILL after 15 seconds."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
