"""The README's demo: served by waitress in a subprocess, over real HTTP."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from .servers import ROOT, accepting, free_port, wait_until

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

        def up() -> bool:
            assert proc.poll() is None, log_path.read_text()
            return accepting(port)

        wait_until(up, 30, log_path.read_text)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200 and b"composed stack" in response.read()
        conn.request("GET", "/stream")
        body = conn.getresponse().read()
        conn.close()
        assert body == b"tick 1\ntick 2\ntick 3\n"
        # The line is logged when the response is closed, after the last tick.
        wait_until(
            lambda: '"GET /stream HTTP/1.1" 200 21' in log_path.read_text(),
            10,
            log_path.read_text,
        )
        # Gzip in the stack: the stream comes compressed, one tick at a time.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.request("GET", "/stream", headers={"Accept-Encoding": "gzip"})
        response = conn.getresponse()
        assert response.getheader("Content-Encoding") == "gzip"
        decoder = zlib.decompressobj(31)
        first = decoder.decompress(response.read1(65536))
        assert first == b"tick 1\n"
        assert first + decoder.decompress(response.read()) == body
        assert decoder.eof
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.request("GET", "/boom")
        response = conn.getresponse()
        assert response.status == 500
        assert b"Internal Server Error" in response.read()
        conn.close()
        wait_until(
            lambda: '"GET /boom HTTP/1.1" 500' in log_path.read_text(),
            10,
            log_path.read_text,
        )
        text = log_path.read_text()
        assert "GET /boom raised RuntimeError" in text
        assert "the /boom route always fails" in text  # the traceback, in the log
        assert "1. AccessLog(" in text  # describe() of the stack
        assert "2. ErrorCatcher(" in text and "3. Gzip(" in text
        assert '"GET / HTTP/1.1" 200' in text
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)


def test_flask_session_example_counts_logs_in_and_out() -> None:
    import importlib

    from webob import Request

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        example = importlib.import_module("flask_visits")
    finally:
        sys.path.pop(0)
    jar: dict[str, str] = {}

    def get(path: str) -> tuple[int, bytes, list[str]]:
        request = Request.blank(path)
        if jar:
            request.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        response = request.get_response(example.app)
        cookies = response.headers.getall("Set-Cookie")
        for header in cookies:
            name, _, rest = header.partition("=")
            jar[name] = rest.split(";")[0]
        return response.status_int, response.body, cookies

    assert get("/")[1] == b"Hello, nobody. Visits in this session: 1.\n"
    assert get("/")[1] == b"Hello, nobody. Visits in this session: 2.\n"
    before = jar["app_session"]
    assert get("/login?user=bob")[0] == 302
    assert jar["app_session"] != before
    assert get("/")[1] == b"Hello, bob. Visits in this session: 3.\n"
    status, _, cookies = get("/logout")
    assert status == 302 and cookies[0].startswith("app_session=; Max-Age=0")
    jar.clear()
    assert get("/")[1] == b"Hello, nobody. Visits in this session: 1.\n"


def test_basic_auth_example() -> None:
    import base64
    import importlib

    from webob import Request

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        example = importlib.import_module("basic_auth")
    finally:
        sys.path.pop(0)
    assert Request.blank("/").get_response(example.app).status_int == 401
    assert Request.blank("/healthz").get_response(example.app).status_int == 200
    request = Request.blank("/")
    token = base64.b64encode(b"demo:demo-password").decode()
    request.headers["Authorization"] = f"Basic {token}"
    assert request.get_response(example.app).body == b"Hello, demo.\n"


def test_static_files_example() -> None:
    import gzip
    import importlib

    from webob import Request

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        example = importlib.import_module("static_files")
    finally:
        sys.path.pop(0)
    css = (ROOT / "examples" / "public" / "css" / "site.css").read_bytes()
    response = Request.blank("/static/css/site.css").get_response(example.app)
    assert response.status_int == 200 and response.body == css
    request = Request.blank("/static/css/site.css")
    request.headers["Accept-Encoding"] = "gzip"
    response = request.get_response(example.app)
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.body) == css  # the variant is what it says
    assert (
        b"Served by StaticFiles"
        in Request.blank("/static/").get_response(example.app).body
    )
    assert b"The app" in Request.blank("/").get_response(example.app).body
