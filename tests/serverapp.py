"""A stack for real servers to load (waitress, gunicorn, wsgiref), in a subprocess.

Routes: ``/hello``, ``/lazy`` (lazy start_response), ``/stream?id=X`` (endless,
for disconnects), ``/file`` (``wsgi.file_wrapper``), ``/static/...`` (StaticFiles,
innermost, serving ``tests/fixtures/static``), ``/events?marker=PATH`` (a
server-sent-event stream that sends its second event only once PATH exists) and
``/_stats``: what the server
process counted, as JSON: closes of app iterables and of observers by request id,
bytes the observer saw, and whether the server got its own file wrapper back.

Run under wsgiref with ``python -m tests.serverapp PORT``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from middleware import (
    BodyFilter,
    Compress,
    Middleware,
    Outcome,
    Responder,
    StaticFiles,
    compose,
)
from middleware.wsgi import Headers, StartResponse, WSGIEnvironment, get_header

from .sample_middleware import CloseRecorder, Tag, Upper, _Upper

FILE = Path(__file__)
STATS: Counter[str] = Counter()
LOCK = threading.Lock()


def count(key: str, amount: int = 1) -> None:
    with LOCK:
        STATS[key] += amount


def request_id(environ: WSGIEnvironment) -> str:
    query: str = environ.get("QUERY_STRING", "")
    return parse_qs(query).get("id", ["-"])[0]


class CountedStream:
    """An endless body whose close() is counted per request id."""

    def __init__(self, rid: str) -> None:
        self.rid = rid

    def __iter__(self) -> Iterator[bytes]:
        while True:
            yield b"x" * 1024
            time.sleep(0.002)

    def close(self) -> None:
        count(f"app-close:{self.rid}")


def events(marker: Path) -> Iterator[bytes]:
    yield b"data: first\n\n"
    for _ in range(200):  # up to 10 s for the client to create the marker
        if marker.exists():
            break
        time.sleep(0.05)
    yield b"data: second\n\n"


def inner(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
    path = environ["PATH_INFO"]
    if path == "/hello":
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")]
        )
        return [b"hello"]
    if path == "/lazy":

        def lazy() -> Iterator[bytes]:
            start_response("200 OK", [("Content-Type", "text/plain")])
            yield b"lazy "
            yield b""
            yield b"body"

        return lazy()
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return CountedStream(request_id(environ))
    if path == "/file":
        size = str(FILE.stat().st_size)
        start_response(
            "200 OK",
            [("Content-Type", "application/octet-stream"), ("Content-Length", size)],
        )
        return environ["wsgi.file_wrapper"](FILE.open("rb"), 8192)
    if path == "/events":
        marker = Path(parse_qs(environ["QUERY_STRING"])["marker"][0])
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        return events(marker)
    if path == "/_stats":
        with LOCK:
            body = json.dumps(dict(STATS)).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


class _UpperText(_Upper):
    """Upper-case text/plain only; other bodies (the file) are handed on."""

    def on_start(self, status: str, headers: Headers) -> BodyFilter | None:
        content_type = get_header(headers, "Content-Type") or ""
        self.filterable = self.filterable and content_type == "text/plain"
        return super().on_start(status, headers)


class UpperText(Upper):
    responder = _UpperText


class _Counting(Responder["Counting"]):
    counts_body = True

    def on_close(self, outcome: Outcome) -> None:
        rid = request_id(self.environ)
        count(f"observer-close:{rid}")
        count(f"observer-bytes:{rid}", outcome.bytes_sent)


class Counting(Middleware):
    responder = _Counting


def sendfile_probe(app: Any) -> Any:
    """Outermost: records whether the server gets its own file wrapper back."""

    def probe(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        result = app(environ, start_response)
        if isinstance(result, environ.get("wsgi.file_wrapper", ())):
            count(f"passthrough:{request_id(environ)}")
        return result

    return probe


app = compose(
    inner,
    sendfile_probe,
    Compress(event_stream=True),
    Counting(),
    UpperText(),
    CloseRecorder(),
    Tag(),
    StaticFiles(FILE.parent / "fixtures" / "static"),
)


if __name__ == "__main__":
    from wsgiref.simple_server import make_server

    with make_server("127.0.0.1", int(sys.argv[1]), app) as server:
        server.serve_forever()
