"""A stack for the wire tests (tests/test_wire.py) to run under real servers.

``ErrorCatcher`` outermost, then ``Gzip``, then ``StaticFiles`` (serving the
directory named by the ``WIREAPP_STATIC`` environment variable, else
``tests/fixtures/static``) in front of a router:

- ``/page``: a 20 KB text/html body, as a list, with Content-Length;
- ``/flask-style``: the same body from a generator (one chunk), with Content-Length;
- ``/short``: declares Content-Length: 20000 and returns a list of 5000 bytes;
- ``/short-stream``: declares Content-Length: 40000 and yields two chunks of 10,000;
- ``/private``: behind ``BasicAuth`` (user ``wire``, password ``secret``);
- ``/boom``: raises, so the error catcher answers 500;
- ``/_where``: the ``middleware`` package this process imported;
- ``/_pid``: this process's PID.

Anything else is a 404 with Content-Length.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import middleware
from middleware import BasicAuth, ErrorCatcher, Gzip, StaticFiles, compose
from middleware.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

HERE = Path(__file__).resolve().parent
STATIC = Path(os.environ.get("WIREAPP_STATIC") or HERE / "fixtures" / "static")


def page_body() -> bytes:
    """20,000 bytes of compressible HTML (the tests import this to compare)."""
    head = b"<!DOCTYPE html><html><body>\n"
    line = b"<p>line %05d of the wire page, compressible text</p>\n"
    body = head
    number = 0
    while len(body) < 20_000:
        body += line % number
        number += 1
    return body[:19_986] + b"</body></html>"


PAGE = page_body()
assert len(PAGE) == 20_000
HTML = "text/html; charset=utf-8"
USER, PASSWORD = "wire", "secret"
_SHA = "{SHA}" + base64.b64encode(hashlib.sha1(PASSWORD.encode()).digest()).decode()


def _text(start_response: StartResponse, status: str, body: bytes) -> list[bytes]:
    start_response(
        status,
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _flask_style(body: bytes) -> Iterator[bytes]:
    yield body


def _short_stream() -> Iterator[bytes]:
    yield PAGE[:10_000]
    yield PAGE[10_000:]


def _private(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    return _text(start_response, "200 OK", b"private for " + USER.encode())


PRIVATE = BasicAuth(realm="wire", users={USER: _SHA})(_private)


def router(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/page":
        start_response("200 OK", [("Content-Type", HTML), ("Content-Length", "20000")])
        return [PAGE]
    if path == "/flask-style":
        start_response("200 OK", [("Content-Type", HTML), ("Content-Length", "20000")])
        return _flask_style(PAGE)
    if path == "/short":
        start_response("200 OK", [("Content-Type", HTML), ("Content-Length", "20000")])
        return [PAGE[:5_000]]
    if path == "/short-stream":
        start_response("200 OK", [("Content-Type", HTML), ("Content-Length", "40000")])
        return _short_stream()
    if path == "/private":
        result: Iterable[bytes] = PRIVATE(environ, start_response)
        return result
    if path == "/boom":
        raise RuntimeError("boom: the wire app fails on purpose")
    if path == "/_where":
        return _text(start_response, "200 OK", os.fsencode(middleware.__file__ or ""))
    if path == "/_pid":
        return _text(start_response, "200 OK", str(os.getpid()).encode())
    return _text(start_response, "404 Not Found", b"not found")


app: WSGIApplication = compose(router, ErrorCatcher(), Gzip(), StaticFiles(STATIC))
