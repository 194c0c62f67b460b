"""The stack over real HTTP: waitress, gunicorn and wsgiref in subprocesses."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from .servers import running, wait_until
from .test_gzip import incremental

SERVERS = ["waitress", "gunicorn", "wsgiref"]
FILE = Path(__file__).with_name("serverapp.py")

pytestmark = pytest.mark.server


def request(
    port: int, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def stats(port: int) -> dict[str, int]:
    data: dict[str, int] = json.loads(request(port, "GET", "/_stats")[1])
    return data


def wait_for(port: int, key: str) -> dict[str, int]:
    """The server's stats once *key* is in them."""
    wait_until(lambda: key in stats(port), 15, lambda: f"no {key}: {stats(port)}")
    return stats(port)


@pytest.fixture(params=SERVERS)
def server(request: Any, tmp_path: Path) -> Any:
    with running(request.param, tmp_path) as port:
        yield port


def test_responses_through_the_stack(server: int) -> None:
    response, body = request(server, "GET", "/hello?id=h")
    assert response.status == 200 and body == b"HELLO"
    assert response.getheader("X-Tag") == "yes"
    assert response.getheader("X-Upper") == "1"
    assert response.getheader("Content-Length") in (None, "5")

    response, body = request(server, "HEAD", "/hello?id=head")
    assert response.status == 200 and body == b""
    assert response.getheader("X-Upper") == "0"

    response, body = request(server, "GET", "/lazy?id=l")
    assert body == b"LAZY BODY"

    counts = wait_for(server, "observer-close:l")
    assert counts["observer-close:h"] == 1
    assert counts["observer-close:l"] == 1
    assert counts["observer-bytes:l"] == len(b"LAZY BODY")


def test_file_wrapper_reaches_the_server_as_its_own_object(server: int) -> None:
    response, body = request(server, "GET", "/file?id=f")
    assert body == FILE.read_bytes()
    assert response.getheader("Content-Length") == str(len(body))
    counts = wait_for(server, "observer-close:f")
    assert counts.get("passthrough:f") == 1, counts
    assert counts["observer-close:f"] == 1
    assert counts["observer-bytes:f"] == len(body)


STATIC = Path(__file__).parent / "fixtures" / "static" / "app.css"


def test_static_files_go_out_as_the_servers_own_file_wrapper(server: int) -> None:
    """sendfile: the server gets its own wrapper back through the whole stack."""
    response, body = request(server, "GET", "/static/app.css?id=s")
    assert response.status == 200 and body == STATIC.read_bytes()
    assert response.getheader("Content-Length") == str(len(body))
    assert response.getheader("Content-Type") == "text/css; charset=utf-8"
    counts = wait_for(server, "observer-close:s")
    assert counts.get("passthrough:s") == 1, counts
    assert counts["observer-bytes:s"] == len(body)
    etag = response.getheader("ETag")
    assert etag is not None

    response, body = request(
        server, "GET", "/static/app.css", {"If-None-Match": etag, "Range": "x"}
    )
    assert response.status == 304 and body == b""
    response, body = request(server, "GET", "/static/app.css", {"Range": "bytes=-9"})
    assert response.status == 206 and body == STATIC.read_bytes()[-9:]
    response, body = request(server, "HEAD", "/static/app.css")
    assert response.status == 200 and body == b""
    assert response.getheader("Content-Length") == str(STATIC.stat().st_size)
    response, body = request(
        server, "GET", "/static/app.css", {"Accept-Encoding": "gzip"}
    )
    assert response.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(body) == STATIC.read_bytes()
    response, body = request(server, "GET", "/static/../serverapp.py")
    assert response.status in (400, 404)


def test_client_disconnect_mid_stream_closes_once(server: int) -> None:
    sock = socket.create_connection(("127.0.0.1", server), timeout=20)
    sock.sendall(b"GET /stream?id=gone HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    received = b""
    while len(received) < 32 * 1024:
        chunk = sock.recv(65536)
        assert chunk, "the server ended the stream early"
        received += chunk
    sock.close()

    counts = wait_for(server, "observer-close:gone")
    assert counts.get("app-close:gone") == 1, counts
    assert counts.get("observer-close:gone") == 1, counts
    time.sleep(0.5)  # and it stays at one
    later = stats(server)
    assert later["app-close:gone"] == 1 and later["observer-close:gone"] == 1
    assert later["observer-bytes:gone"] >= 32 * 1024 - 200


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_compressed_event_stream_flows_event_by_event(
    server: int, tmp_path: Path, coding: str
) -> None:
    """The first event arrives, compressed and decodable, while the app is still
    waiting to send the second (which it does only once the marker exists)."""
    marker = tmp_path / f"marker-{coding}"
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=5)
    try:
        conn.request(
            "GET", f"/events?marker={marker}", headers={"Accept-Encoding": coding}
        )
        response = conn.getresponse()
        assert response.getheader("Content-Encoding") == coding
        decode = incremental(coding)
        first = b""
        while not first.endswith(b"\n\n"):
            data = response.read1(65536)  # raises TimeoutError if the body stalls
            assert data, "the stream ended before its first event"
            first += decode(data)
        assert first == b"data: first\n\n"
        marker.touch()
        rest = decode(response.read())
    finally:
        conn.close()
    assert rest == b"data: second\n\n"
