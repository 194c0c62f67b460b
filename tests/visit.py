"""The scripted visit of the demo site, the same for every way it is served: over
real HTTP (``python -m middleware serve``, gunicorn ``--paste``) and in-process
with WebTest (the Flask and Django examples).

The visit: 401 without credentials, 200 with them; the session counter goes 1, 2,
3 with the cookie jar; gzip negotiated and decoded; the static stylesheet 200, 304
and 206; ``/boom`` gives a 500 page and the next request is served.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import re
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
CSS = (ROOT / "examples" / "public" / "css" / "site.css").read_bytes()
CREDENTIALS = {
    "Authorization": "Basic " + base64.b64encode(b"demo:demo-password").decode()
}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes  # as sent (compressed if it was)

    def text(self) -> bytes:
        if self.headers.get("content-encoding") == "gzip":
            return gzip.decompress(self.body)
        return self.body


class Client(Protocol):
    def get(self, path: str, headers: dict[str, str]) -> Reply: ...


class HTTPClient:
    """http.client with a cookie jar, for a server on 127.0.0.1."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def get(self, path: str, headers: dict[str, str]) -> Reply:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            sent = dict(headers)
            if self.cookies:
                sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            connection.request("GET", path, headers=sent)
            response = connection.getresponse()
            body = response.read()
            for value in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(value).items():
                    if morsel["max-age"] == "0":
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = morsel.value
            found = {k.lower(): v for k, v in response.getheaders()}
            return Reply(response.status, found, body)
        finally:
            connection.close()


class WebTestClient:
    """A WebTest TestApp (which keeps cookies itself). WebTest decodes gzip bodies,
    so the response as the stack sent it is recorded by a thin outer wrapper."""

    def __init__(self, app: Any) -> None:
        from webtest import TestApp

        self.inner = app
        self.app = TestApp(self._record)
        self.sent: tuple[list[tuple[str, str]], bytes] = ([], b"")

    def _record(self, environ: Any, start_response: Any) -> list[bytes]:
        headers: list[tuple[str, str]] = []

        def recording(status: str, given: Any, exc_info: Any = None) -> Any:
            headers[:] = given
            return start_response(status, given, exc_info)

        result = self.inner(environ, recording)
        try:
            chunks = list(result)
        finally:
            getattr(result, "close", lambda: None)()
        self.sent = (headers, b"".join(chunks))
        return chunks

    def get(self, path: str, headers: dict[str, str]) -> Reply:
        response = self.app.get(path, headers=headers, expect_errors=True)
        sent_headers, body = self.sent
        found = {k.lower(): v for k, v in sent_headers}
        return Reply(response.status_int, found, body)


def visits(reply: Reply) -> int:
    match = re.search(rb"id=['\"]visits['\"]>(\d+)<", reply.text())
    assert match, reply.text()[:300]
    return int(match.group(1))


def scripted_visit(client: Client) -> list[tuple[str, int, int]]:
    """Run the visit, asserting each step; return (path, status, body bytes as
    sent) per request, for checking an access log against."""
    made: list[tuple[str, int, int]] = []

    def get(path: str, **headers: str) -> Reply:
        reply = client.get(path, headers)
        made.append((path, reply.status, len(reply.body)))
        return reply

    reply = get("/")
    assert reply.status == 401
    assert reply.headers["www-authenticate"].startswith('Basic realm="')
    for count in (1, 2, 3):
        reply = get("/", **CREDENTIALS)
        assert reply.status == 200, reply.status
        assert visits(reply) == count
        assert "demo_session=" in reply.headers.get("set-cookie", "")
    reply = get("/", **CREDENTIALS, **{"Accept-Encoding": "gzip"})
    assert reply.headers.get("content-encoding") == "gzip"
    assert reply.headers.get("vary", "").lower().count("accept-encoding") == 1
    assert visits(reply) == 4

    reply = get("/static/css/site.css", **CREDENTIALS)
    assert reply.status == 200 and reply.body == CSS
    assert reply.headers["content-type"] == "text/css; charset=utf-8"
    etag = reply.headers["etag"]
    reply = get("/static/css/site.css", **CREDENTIALS, **{"If-None-Match": etag})
    assert reply.status == 304 and reply.body == b""
    reply = get("/static/css/site.css", **CREDENTIALS, Range="bytes=0-9")
    assert reply.status == 206 and reply.body == CSS[:10]
    assert reply.headers["content-range"] == f"bytes 0-9/{len(CSS)}"

    reply = get("/boom", **CREDENTIALS)
    assert reply.status == 500
    assert b"Server Error" in reply.text(), reply.text()[:300]
    reply = get("/", **CREDENTIALS)
    assert reply.status == 200 and visits(reply) == 5
    return made
