"""The README's demo: served by waitress in a subprocess, over real HTTP."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .servers import ROOT, free_port

pytestmark = pytest.mark.server


def test_demo_serves_and_logs_after_the_stream_ends(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "demo.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "examples/demo.py", str(port)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "the demo did not start"
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200 and b"composed stack" in response.read()
        conn.request("GET", "/stream")
        body = conn.getresponse().read()
        conn.close()
        assert body == b"tick 1\ntick 2\ntick 3\n"
        deadline = time.monotonic() + 10
        while "GET /stream -> 200 OK, 21 bytes" not in log_path.read_text():
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        text = log_path.read_text()
        assert "1. Timing()" in text  # describe() of the stack
        assert "GET / -> 200 OK" in text
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
