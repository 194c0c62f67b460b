"""Compress and Gzip against awkward apps, frameworks and hostile requests (issue
17): entity tags through a round trip, static files behind Gzip, Accept-Encoding
edge cases end to end, exact lengths and streaming, short bodies, random padding,
and memos that hostile header values cannot grow.

Each test of a numbered defect of issue 17 fails on the code before its fixes
(854d134); table rows of behaviour the fixes kept (a streamed body, a plain
``gzip``) pass on both. Names that only exist since then are looked up inside the
tests, so the module collects on the old code too."""

from __future__ import annotations

import gc
import gzip
import os
import sys
import tracemalloc
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment
from wsgiref.validate import validator

import bottle  # type: ignore[import-untyped]
import brotli
import pytest
import zstandard
from webob import acceptparse
from werkzeug.http import is_resource_modified

from middleware import Compress, Gzip, StaticFiles
from middleware import http as http_module
from middleware import testing as conformance
from middleware.http import accepted_encodings, prefers_json
from middleware.testing import Served, make_environ, run

# -- helpers ---------------------------------------------------------------------------

PAGE = b"<p>" + b"hostile but compressible text " * 70 + b"</p>"  # about 2 KB
HTML = ("Content-Type", "text/html; charset=utf-8")
LENGTH = ("Content-Length", str(len(PAGE)))
CODINGS = ("gzip", "br", "zstd")
OFFER = ("zstd", "br", "gzip", "identity")


def decode(coding: str, body: bytes) -> tuple[bytes, bool]:
    """What a client decodes from *body*, and whether the stream was complete."""
    if coding == "gzip":
        gunzip = zlib.decompressobj(31)
        return gunzip.decompress(body), gunzip.eof
    if coding == "br":
        unbrotli = brotli.Decompressor()
        return unbrotli.process(body), unbrotli.is_finished()
    unzstd = zstandard.ZstdDecompressor().decompressobj()
    return unzstd.decompress(body), unzstd.eof


def environ_for(
    method: str = "GET", path: str = "/", **headers: str | None
) -> WSGIEnvironment:
    """A request; keyword arguments are headers (``if_none_match=...``), None
    leaves one out."""
    environ = make_environ(method, path)
    for name, value in headers.items():
        if value is not None:
            environ[f"HTTP_{name.upper()}"] = value
    return environ


def serve(
    app: WSGIApplication, method: str = "GET", path: str = "/", **headers: str | None
) -> Served:
    """One request through wsgiref's validator on the server's side; no error."""
    outcome = run(validator(app), environ_for(method, path, **headers))
    assert outcome.error is None, repr(outcome.error)
    return outcome


def close(result: object) -> None:
    closer: Any = result  # what a server calls on every response's iterable
    closer.close()


def assert_exact_length(outcome: Served) -> None:
    length = outcome.header("Content-Length")
    assert length is not None, outcome.headers
    assert int(length) == len(outcome.body)


# -- ETAG_ROUNDTRIP (defect 6) ---------------------------------------------------------


def strong_app(seen: list[str | None]) -> WSGIApplication:
    """Compares If-None-Match strongly: exact equality per comma-separated tag."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        header = environ.get("HTTP_IF_NONE_MATCH")
        seen.append(header)
        tags = [tag.strip() for tag in (header or "").split(",")]
        if '"v1"' in tags:
            start_response("304 Not Modified", [("ETag", '"v1"')])
            return []
        start_response("200 OK", [HTML, LENGTH, ("ETag", '"v1"')])
        return [PAGE]

    return app


def weak_app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    """Werkzeug's comparison: W/ stripped, any tag of the list."""
    if not is_resource_modified(environ, etag="v1"):
        start_response("304 Not Modified", [("ETag", '"v1"')])
        return []
    start_response("200 OK", [HTML, LENGTH, ("ETag", '"v1"')])
    return [PAGE]


LAYERS: dict[str, Callable[[], Compress]] = {"Gzip": Gzip, "Compress": Compress}

ETAG_ROUNDTRIP = [
    pytest.param("Gzip", "gzip", id="gzip-layer"),
    *(pytest.param("Compress", coding, id=f"compress-{coding}") for coding in CODINGS),
]


@pytest.mark.parametrize(("layer", "coding"), ETAG_ROUNDTRIP)
def test_strong_comparing_app_revalidates_the_coded_tag(
    layer: str, coding: str
) -> None:
    seen: list[str | None] = []
    app = LAYERS[layer]()(strong_app(seen))
    first = serve(app, accept_encoding=coding)
    assert first.status == "200 OK"
    assert first.header("Content-Encoding") == coding
    assert first.header("ETag") == f'"v1-{coding}"'
    assert first.header("Vary") == "Accept-Encoding"
    assert decode(coding, first.body) == (PAGE, True)
    assert_exact_length(first)
    # Old code: W/"v1", which a strong comparison never matches: 200 every time.
    again = serve(app, accept_encoding=coding, if_none_match=first.header("ETag"))
    assert again.status == "304 Not Modified"
    assert again.header("ETag") == f'"v1-{coding}"'
    assert again.header("Vary") == "Accept-Encoding"
    assert again.body == b""
    assert seen[-1] == '"v1"'  # the coded tag replaced by the app's


# case, Accept-Encoding, If-None-Match, status, ETag, Vary, what the app saw
ETAG_REQUESTS = [
    (
        "coded tag",
        "gzip",
        '"v1-gzip"',
        "304 Not Modified",
        '"v1-gzip"',
        "Accept-Encoding",
        '"v1"',
    ),
    (
        "coded tag among others",
        "gzip",
        '"v0-gzip", "v1-gzip"',
        "304 Not Modified",
        '"v1-gzip"',
        "Accept-Encoding",
        '"v0", "v1"',
    ),
    (
        "app tag and coded tag",
        "gzip",
        '"v1", "v1-gzip"',
        "304 Not Modified",
        '"v1-gzip"',
        "Accept-Encoding",
        '"v1", "v1"',
    ),
    (
        "another coding's tag is not mapped",
        "gzip",
        '"v1-br"',
        "200 OK",
        '"v1-gzip"',
        "Accept-Encoding",
        '"v1-br"',
    ),
    (
        "a weak coded tag is mapped to the weak app tag",
        "gzip",
        'W/"v1-gzip"',
        "200 OK",  # the strong-comparing app does not match W/"v1"
        '"v1-gzip"',
        "Accept-Encoding",
        'W/"v1"',
    ),
    (
        "the app's own tag (the client holds identity)",
        "gzip",
        '"v1"',
        "304 Not Modified",
        '"v1"',
        None,
        '"v1"',
    ),
    (
        "a client that now gets identity",
        None,
        '"v1-gzip"',
        "200 OK",
        '"v1"',
        "Accept-Encoding",
        '"v1-gzip"',
    ),
]


@pytest.mark.parametrize(
    ("case", "accept", "if_none_match", "status", "etag", "vary", "seen_by_app"),
    ETAG_REQUESTS,
    ids=[row[0] for row in ETAG_REQUESTS],
)
def test_if_none_match_mapping(
    case: str,
    accept: str | None,
    if_none_match: str,
    status: str,
    etag: str,
    vary: str | None,
    seen_by_app: str,
) -> None:
    seen: list[str | None] = []
    outcome = serve(
        Compress()(strong_app(seen)),
        accept_encoding=accept,
        if_none_match=if_none_match,
    )
    assert outcome.status == status
    assert outcome.header("ETag") == etag
    assert outcome.header("Vary") == vary
    assert seen == [seen_by_app]
    if status == "200 OK":
        coding = outcome.header("Content-Encoding")
        body = decode(coding, outcome.body)[0] if coding else outcome.body
        assert body == PAGE


@pytest.mark.parametrize("coding", CODINGS)
def test_weak_comparing_app_still_revalidates(coding: str) -> None:
    app = Compress()(weak_app)
    first = serve(app, accept_encoding=coding)
    assert first.header("ETag") == f'"v1-{coding}"'
    again = serve(app, accept_encoding=coding, if_none_match=first.header("ETag"))
    assert again.status == "304 Not Modified"
    assert again.header("ETag") == f'"v1-{coding}"'
    assert again.header("Vary") == "Accept-Encoding"


def test_a_304_with_a_compressible_type_gets_vary() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("304 Not Modified", [("ETag", '"v1"'), HTML])
        return []

    # wsgiref's validator refuses a Content-Type on a 304: served bare.
    outcome = run(
        Gzip()(app), environ_for(accept_encoding="gzip", if_none_match='"v1"')
    )
    assert outcome.error is None
    assert outcome.header("ETag") == '"v1"'  # the client's tag was the app's own
    assert outcome.header("Vary") == "Accept-Encoding"


def put_app(seen: list[str | None]) -> WSGIApplication:
    """A PUT that checks If-Match strongly: 204 when "v1" is listed, else 412."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        header = environ.get("HTTP_IF_MATCH")
        seen.append(header)
        if '"v1"' in [tag.strip() for tag in (header or "").split(",")]:
            start_response("204 No Content", [("ETag", '"v2"')])
            return []
        body = b"precondition failed"
        start_response(
            "412 Precondition Failed",
            [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return app


@pytest.mark.parametrize("coding", CODINGS)
def test_if_match_with_the_coded_tag_reaches_the_app_with_its_own_tag(
    coding: str,
) -> None:
    seen: list[str | None] = []
    outcome = serve(
        Compress()(put_app(seen)),
        "PUT",
        accept_encoding=coding,
        if_match=f'"v1-{coding}"',
    )
    assert seen == ['"v1"']
    assert outcome.status == "204 No Content"  # old code: 412
    other = "br" if coding == "gzip" else "gzip"
    outcome = serve(
        Compress()(put_app(seen)),
        "PUT",
        accept_encoding=coding,
        if_match=f'"v1-{other}"',
    )
    # Any offered coding's tag names the same state of the resource: mapped too,
    # whatever this request accepts (no false 412 after Accept-Encoding changed).
    assert seen[-1] == '"v1"'
    assert outcome.status == "204 No Content"
    outcome = serve(Compress()(put_app(seen)), "PUT", if_match=f'"v1-{other}"')
    assert (seen[-1], outcome.status) == ('"v1"', "204 No Content")
    outcome = serve(Compress()(put_app(seen)), "PUT", if_match='"v2-gzip"')
    assert (seen[-1], outcome.status) == ('"v2"', "412 Precondition Failed")


CSS = b"body { color: #333; margin: 0 auto; }\n" * 135  # about 5 KB


def bottle_app(root: Path, etag: str | None = None) -> WSGIApplication:
    app = bottle.Bottle()

    # Defaults, not a closure: Bottle's Route.__repr__ loops forever on a closure
    # whose first cell is not a function (pytest reprs it in a failure report).
    def static(path: str, root: str = str(root), etag: str | None = etag) -> Any:
        return bottle.static_file(path, root=root, etag=etag)

    app.route("/static/<path:path>", callback=static)
    served: WSGIApplication = app
    return served


def test_bottle_static_file_revalidates_through_gzip(tmp_path: Path) -> None:
    (tmp_path / "app.css").write_bytes(CSS)
    app = Gzip()(bottle_app(tmp_path))
    first = serve(app, path="/static/app.css", accept_encoding="gzip, deflate, br")
    assert first.status == "200 OK"
    assert first.header("Content-Encoding") == "gzip"
    assert decode("gzip", first.body) == (CSS, True)
    tag = first.header("ETag")
    # Bottle's tag is an unquoted SHA-1: it gets the coding at its end, and comes
    # back as Bottle made it (old code sent W/<sha1>, which Bottle's exact
    # comparison never matches).
    assert tag is not None and tag.endswith("-gzip") and not tag.startswith('"')
    assert first.header("Vary") == "Accept-Encoding"
    again = serve(
        app,
        path="/static/app.css",
        accept_encoding="gzip, deflate, br",
        if_none_match=tag,
    )
    assert again.status == "304 Not Modified"
    assert again.header("ETag") == tag
    assert again.body == b""


def test_bottle_static_file_with_a_quoted_etag_revalidates_through_gzip(
    tmp_path: Path,
) -> None:
    # Bottle compares the whole If-None-Match value to its tag (`check == etag`):
    # the coded tag must be replaced by the app's, not followed by it.
    (tmp_path / "app.css").write_bytes(CSS)
    app = Gzip()(bottle_app(tmp_path, etag='"css-v1"'))
    first = serve(app, path="/static/app.css", accept_encoding="gzip")
    assert first.header("ETag") == '"css-v1-gzip"'
    again = serve(
        app,
        path="/static/app.css",
        accept_encoding="gzip",
        if_none_match='"css-v1-gzip"',
    )
    assert again.status == "304 Not Modified"
    # Bottle's 304 has no Content-Type: the coded tag the client sent says it holds
    # the gzip body, so the 304 carries its tag and Vary, as the 200 did.
    assert again.header("ETag") == '"css-v1-gzip"'
    assert again.header("Vary") == "Accept-Encoding"


# -- STATIC_BEHIND_GZIP (defect 5) -----------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def not_found(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


def static_subject(directory: Path) -> conformance.Subject:
    return conformance.Subject(
        "gzip-over-static", lambda app: Gzip()(StaticFiles(directory)(app))
    )


def fetch(directory: Path, path: str, **headers: str) -> Served:
    """One request answered by StaticFiles behind Gzip, checked by the kit's
    answered(): validators, exact lengths, no descriptor left open."""
    environ = {"PATH_INFO": path, "HTTP_ACCEPT_ENCODING": "gzip, deflate, br"}
    environ.update({f"HTTP_{name.upper()}": value for name, value in headers.items()})
    return conformance.answered(static_subject(directory), not_found, environ)


def test_png_behind_gzip_keeps_its_strong_tag_and_no_vary(tmp_path: Path) -> None:
    (tmp_path / "logo.png").write_bytes(PNG)
    first = fetch(tmp_path, "/static/logo.png")
    assert first.status == "200 OK"
    assert first.body == PNG
    assert first.header("Content-Encoding") is None
    assert first.header("Vary") is None
    tag = first.header("ETag")
    assert tag is not None and tag.startswith('"') and tag.endswith('"')
    again = fetch(tmp_path, "/static/logo.png", if_none_match=tag)
    assert again.status == "304 Not Modified"
    assert again.header("ETag") == tag  # old code: W/"..."
    assert again.header("Vary") is None  # old code: Accept-Encoding


def test_css_behind_gzip_gets_a_coded_tag_that_revalidates(tmp_path: Path) -> None:
    (tmp_path / "site.css").write_bytes(CSS)
    first = fetch(tmp_path, "/static/site.css")
    assert first.status == "200 OK"
    assert first.header("Content-Encoding") == "gzip"
    assert decode("gzip", first.body) == (CSS, True)
    assert first.header("Vary") == "Accept-Encoding"
    tag = first.header("ETag")
    assert tag is not None and tag.startswith('"') and tag.endswith('-gzip"')
    again = fetch(tmp_path, "/static/site.css", if_none_match=tag)
    assert again.status == "304 Not Modified"
    assert again.header("ETag") == tag
    assert again.header("Vary") == "Accept-Encoding"


def test_precompressed_sibling_revalidates_through_gzip(tmp_path: Path) -> None:
    packed = gzip.compress(CSS, mtime=0)
    (tmp_path / "app.css").write_bytes(CSS)
    (tmp_path / "app.css.gz").write_bytes(packed)
    first = fetch(tmp_path, "/static/app.css")
    assert first.status == "200 OK"
    assert first.header("Content-Encoding") == "gzip"  # StaticFiles' own
    assert first.body == packed  # not compressed twice
    tag = first.header("ETag")
    # Its tag names the file's suffix: a "-gzip" ending is Compress's own.
    assert tag is not None and tag.startswith('"') and tag.endswith('.gz"')
    assert first.header("Vary") == "Accept-Encoding"
    again = fetch(tmp_path, "/static/app.css", if_none_match=tag)
    assert again.status == "304 Not Modified"
    assert again.header("ETag") == tag  # old code: W/"...-gzip"
    assert again.header("Vary") == "Accept-Encoding"


# -- ACCEPT_ENCODING_EDGE (defect 4) ---------------------------------------------------

# case, Accept-Encoding, the coding the response gets (None: identity)
ACCEPT_ENCODING_EDGE: list[tuple[str, str | None, str | None]] = [
    ("absent", None, None),
    ("empty", "", None),
    ("plain gzip", "gzip", "gzip"),
    ("gzip;q=0.5, identity unlisted", "gzip;q=0.5", "gzip"),  # old: identity
    ("case", "GZip;Q=0.5", "gzip"),  # old: identity
    ("spaces and tabs", " \tgzip \t;\t q=0.5 ,\tbr ;q=0.4\t", "gzip"),
    ("duplicate: the last entry wins", "gzip, gzip;q=0", None),
    ("duplicate reversed", "gzip;q=0, gzip", "gzip"),
    ("x-gzip", "x-gzip", "gzip"),
    ("x-gzip with a q", "x-gzip;q=0.3", "gzip"),
    ("star", "*", "zstd"),
    ("star with a q", "*;q=0.2", "zstd"),
    ("server preference breaks ties", "br;q=0.9, zstd;q=0.9", "zstd"),
    ("the lowest qvalue", "zstd;q=0.001", "zstd"),
    ("deflate, gzip;q=0.8, br", "deflate, gzip;q=0.8, br", "br"),
    ("gzip, identity refused", "gzip, identity;q=0", "gzip"),
    ("identity preferred", "gzip;q=0.5, identity;q=0.6", None),
    ("malformed q", "gzip;q=1.5", None),
    ("unknown codings only", "deflate, sdch, compress", None),
    ("300 entries under 1 KB", "a," * 299 + "br;q=0.5", "br"),
    ("huge: 100 KB", "gzip, " + "x" * 100_000, None),
    # Nothing acceptable at all: no 406, identity is sent anyway (the code takes
    # identity when accepted_encodings() returns nothing).
    ("identity;q=0 alone", "identity;q=0", None),
    ("*;q=0 alone", "*;q=0", None),
    ("*;q=0 beside a coding", "*;q=0, gzip;q=0.1", "gzip"),
]

EDGE_LAYER = Compress()  # shared: the second request of each value hits its memo


@pytest.mark.parametrize(
    ("case", "header", "coding"),
    ACCEPT_ENCODING_EDGE,
    ids=[row[0] for row in ACCEPT_ENCODING_EDGE],
)
def test_accept_encoding_edge(
    case: str, header: str | None, coding: str | None
) -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [HTML, LENGTH])
        return [PAGE]

    for _ in range(2):
        outcome = serve(EDGE_LAYER(app), accept_encoding=header)
        assert outcome.status == "200 OK"
        assert outcome.header("Content-Encoding") == coding, outcome.headers
        assert outcome.header("Vary") == "Accept-Encoding"
        # (Exact lengths are LENGTH_AND_STREAMING's: this table is negotiation's.)
        length = outcome.header("Content-Length")
        assert length is None or int(length) == len(outcome.body)
        if coding is None:
            assert outcome.body == PAGE
        else:
            assert decode(coding, outcome.body) == (PAGE, True)


# -- LENGTH_AND_STREAMING (defect 11 and the core's hold) ------------------------------

PARTS = [PAGE[:700], PAGE[700:1400], PAGE[1400:]]
App = Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]


def list_one(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [HTML, LENGTH])
    return [PAGE]


def list_three(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [HTML])
    return list(PARTS)


def a_tuple(
    environ: WSGIEnvironment, start_response: StartResponse
) -> tuple[bytes, ...]:
    start_response("200 OK", [HTML])
    return tuple(PARTS)


def empty_list(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [HTML])
    return []


def flask_style(
    environ: WSGIEnvironment, start_response: StartResponse
) -> Iterator[bytes]:
    start_response("200 OK", [HTML, LENGTH])
    yield PAGE


def generator(
    environ: WSGIEnvironment, start_response: StartResponse
) -> Iterator[bytes]:
    start_response("200 OK", [HTML])
    yield from PARTS


def legacy_write(
    environ: WSGIEnvironment, start_response: StartResponse
) -> list[bytes]:
    write = start_response("200 OK", [HTML])
    write(PARTS[0])
    write(PARTS[1])
    return [PARTS[2]]


def write_to_length(
    environ: WSGIEnvironment, start_response: StartResponse
) -> list[bytes]:
    write = start_response("200 OK", [HTML, LENGTH])
    write(PAGE)
    return []


def lazy_start(
    environ: WSGIEnvironment, start_response: StartResponse
) -> Iterable[bytes]:
    def body() -> Iterator[bytes]:
        start_response("200 OK", [HTML, LENGTH])
        yield PAGE

    return body()


def lazy_start_streamed(
    environ: WSGIEnvironment, start_response: StartResponse
) -> Iterable[bytes]:
    def body() -> Iterator[bytes]:
        start_response("200 OK", [HTML])
        yield from PARTS

    return body()


ERROR_PAGE = b"<h1>Internal Server Error</h1>" + b"<p>sorry</p>" * 60


def replaced_by_500(
    environ: WSGIEnvironment, start_response: StartResponse
) -> list[bytes]:
    start_response("200 OK", [HTML, LENGTH])
    try:
        raise RuntimeError("failed after start_response")
    except RuntimeError:
        start_response(
            "500 Internal Server Error",
            [HTML, ("Content-Length", str(len(ERROR_PAGE)))],
            sys.exc_info(),
        )
    return [ERROR_PAGE]


# case, app, status, body, whether the compressed response has a Content-Length
LENGTH_AND_STREAMING: list[tuple[str, App, str, bytes, bool]] = [
    ("list of one chunk with Content-Length", list_one, "200 OK", PAGE, True),
    ("list of three chunks", list_three, "200 OK", PAGE, True),
    ("tuple", a_tuple, "200 OK", PAGE, True),
    ("empty list", empty_list, "200 OK", b"", True),
    ("generator of one chunk with Content-Length", flask_style, "200 OK", PAGE, True),
    ("generator without Content-Length", generator, "200 OK", PAGE, False),
    ("legacy write()", legacy_write, "200 OK", PAGE, False),
    ("write() to the Content-Length", write_to_length, "200 OK", PAGE, True),
    ("lazy start_response", lazy_start, "200 OK", PAGE, True),
    ("lazy start_response, streamed", lazy_start_streamed, "200 OK", PAGE, False),
    (
        "exc_info replaces a 200 by a 500",
        replaced_by_500,
        "500 Internal Server Error",
        ERROR_PAGE,
        True,
    ),
]


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize(
    ("case", "app", "status", "body", "has_length"),
    LENGTH_AND_STREAMING,
    ids=[row[0] for row in LENGTH_AND_STREAMING],
)
def test_length_and_streaming(
    case: str, app: App, status: str, body: bytes, has_length: bool, coding: str
) -> None:
    layer = Compress(encodings=[coding], min_size=0)
    outcome = serve(layer(app), accept_encoding=coding)
    assert outcome.status == status
    assert outcome.header("Content-Encoding") == coding
    assert decode(coding, outcome.body) == (body, True)
    length = outcome.header("Content-Length")
    if has_length:
        assert length == str(len(outcome.body)), outcome.headers
    else:
        assert length is None, outcome.headers


@pytest.mark.parametrize("coding", CODINGS)
def test_a_stream_sends_its_first_chunk_before_asking_for_the_second(
    coding: str,
) -> None:
    asked: list[int] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [HTML])
        for number, part in enumerate(PARTS):
            asked.append(number)
            yield part

    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        started.append((status, list(headers)))
        return lambda data: None

    result = Compress(encodings=[coding], min_size=0)(app)(
        environ_for(accept_encoding=coding), start_response
    )
    try:
        iterator = iter(result)
        first = next(iterator)
        assert asked == [0]  # the second chunk was not asked for yet
        assert len(started) == 1  # the headers went with the first chunk
        status, headers = started[0]
        assert status == "200 OK"
        assert ("Content-Encoding", coding) in headers
        assert not [name for name, _ in headers if name.lower() == "content-length"]
        decoder: Callable[[bytes], bytes]
        if coding == "gzip":
            decoder = zlib.decompressobj(31).decompress
        elif coding == "br":
            decoder = brotli.Decompressor().process
        else:
            decoder = zstandard.ZstdDecompressor().decompressobj().decompress
        assert decoder(first) == PARTS[0]  # flushed: decodes on arrival
        rest = b"".join(decoder(chunk) for chunk in iterator)
        assert rest == b"".join(PARTS[1:])
    finally:
        close(result)


class AppFailure(Exception):
    pass


class Closing:
    """An iterable that counts its close() calls and may fail before any byte."""

    def __init__(self, chunks: list[bytes], fail: bool = False) -> None:
        self.chunks = chunks
        self.fail = fail
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        if self.fail:
            raise AppFailure("failed before any byte")
        return iter(self.chunks)

    def close(self) -> None:
        self.closed += 1


def test_an_error_before_any_byte_reaches_the_server_as_without_compression() -> None:
    bodies: list[Closing] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Closing:
        start_response("200 OK", [HTML])
        bodies.append(Closing([PAGE], fail=True))
        return bodies[-1]

    bare = run(app, environ_for(accept_encoding="gzip"))
    for layer in (Gzip(min_size=0), Compress(min_size=0)):
        compressed = run(layer(app), environ_for(accept_encoding="gzip"))
        assert compressed.status == bare.status == "200 OK"
        assert type(compressed.error) is type(bare.error) is AppFailure
        assert compressed.chunks == bare.chunks == []
    assert [body.closed for body in bodies] == [1, 1, 1]


class Refused(Exception):
    pass


@pytest.mark.parametrize(
    ("case", "headers", "chunks"),
    [
        ("declared length", [HTML, LENGTH], [PAGE]),
        ("streamed", [HTML], list(PARTS)),
    ],
    ids=["declared length", "streamed"],
)
def test_a_server_refusing_the_held_status_raises_while_iterating(
    case: str, headers: list[tuple[str, str]], chunks: list[bytes]
) -> None:
    bodies: list[Closing] = []
    calls: list[str] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Closing:
        start_response("200 OK", list(headers))
        bodies.append(Closing(chunks))
        return bodies[-1]

    def refusing(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        calls.append(status)
        raise Refused(status)

    # The start is held until the first output: the app call itself succeeds.
    result = Gzip(min_size=0)(app)(environ_for(accept_encoding="gzip"), refusing)
    sent: list[bytes] = []
    iterator = iter(result)
    with pytest.raises(Refused):
        for _ in range(len(chunks) + 2):  # never more: no hang, no endless loop
            sent.append(next(iterator))
    close(result)
    assert sent == []
    assert calls == ["200 OK"]
    assert bodies[0].closed == 1


# -- SHORT_BODY (defect 10) ------------------------------------------------------------

SHORT_BODY: list[tuple[str, Callable[[], Iterable[bytes]]]] = [
    ("list", lambda: [PAGE[:100]]),
    ("list of three", lambda: [PAGE[:10], PAGE[10:20], PAGE[20:30]]),
    ("tuple", lambda: (PAGE[:100],)),
]


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize(
    ("case", "body"), SHORT_BODY, ids=[row[0] for row in SHORT_BODY]
)
def test_a_short_whole_body_raises_before_any_byte(
    case: str, body: Callable[[], Iterable[bytes]], coding: str
) -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [HTML, ("Content-Length", "5000")])
        return body()

    layer = Compress(encodings=[coding], min_size=0)
    outcome = run(layer(app), environ_for(accept_encoding=coding))
    assert isinstance(outcome.error, ValueError), outcome.error
    assert "Content-Length: 5000" in str(outcome.error)
    assert outcome.chunks == []  # nothing went out: the server can answer 500
    assert outcome.header("Content-Length") is None


@pytest.mark.parametrize("coding", CODINGS)
def test_a_short_streamed_body_raises_and_its_stream_stays_unterminated(
    coding: str,
) -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [HTML, ("Content-Length", str(len(PAGE) + 500))])
        yield PARTS[0]
        yield PARTS[1]

    layer = Compress(encodings=[coding], min_size=0)
    outcome = run(layer(app), environ_for(accept_encoding=coding))
    assert isinstance(outcome.error, ValueError), outcome.error
    assert outcome.body  # some bytes went out, then the error
    assert outcome.header("Content-Length") is None
    assert decode(coding, outcome.body) == (PARTS[0] + PARTS[1], False)
    if coding == "gzip":
        gunzip = zlib.decompressobj(31)
        gunzip.decompress(outcome.body)
        assert gunzip.eof is False


# -- PADDING (defect 12) ---------------------------------------------------------------


def page_app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [HTML, LENGTH])
    return [PAGE]


def test_gzip_random_padding_varies_the_length() -> None:
    base = len(serve(Gzip()(page_app), accept_encoding="gzip").body)
    padded = Gzip(random_padding=100)(page_app)
    lengths = set()
    for _ in range(50):
        outcome = serve(padded, accept_encoding="gzip")
        body = outcome.body
        assert gzip.decompress(body) == PAGE
        assert body[3] & 0x08  # FNAME: the padding is the header's file name
        assert base <= len(body) <= base + 101
        assert_exact_length(outcome)
        lengths.add(len(body))
    assert len(lengths) >= 10, sorted(lengths)


def test_random_padding_of_a_streamed_body() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [HTML])
        yield from PARTS

    outcome = serve(Compress(random_padding=50)(app), accept_encoding="gzip, br")
    assert outcome.header("Content-Encoding") == "gzip"
    assert outcome.body[3] & 0x08
    assert decode("gzip", outcome.body) == (PAGE, True)


def test_compress_with_padding_offers_gzip_only() -> None:
    layer = Compress(random_padding=10)
    assert layer.encodings == ("gzip",)
    outcome = serve(layer(page_app), accept_encoding="br, zstd, gzip")
    assert outcome.header("Content-Encoding") == "gzip"
    assert gzip.decompress(outcome.body) == PAGE
    assert outcome.body[3] & 0x08


@pytest.mark.parametrize("encodings", [["br"], ["zstd"], ["gzip", "br"]])
def test_padding_with_a_coding_that_cannot_carry_it_is_refused(
    encodings: list[str],
) -> None:
    with pytest.raises(ValueError, match="random_padding"):
        Compress(encodings=encodings, random_padding=10)


BAD_PADDING = [
    (Gzip, -1),
    (Gzip, "x"),
    (Compress, -1),
    (Compress, "x"),
    (Compress, True),
    (Compress, 70_000),
]


@pytest.mark.parametrize(("layer", "value"), BAD_PADDING)
def test_bad_random_padding_names_the_option(
    layer: Callable[..., Compress], value: object
) -> None:
    with pytest.raises(ValueError, match="^random_padding: "):
        layer(random_padding=value)


# -- MEMO_BOUNDS (defects 2 and 3) -----------------------------------------------------

MEMO_KEY_LIMIT = 256
MEMO_ENTRIES = 512


def typed_app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    """Answers with the Content-Type the request names (X-Type)."""
    start_response("200 OK", [("Content-Type", environ["HTTP_X_TYPE"]), LENGTH])
    return [PAGE]


def memo_sizes(layer: Compress) -> tuple[int, int]:
    """The most entries, and the longest key, of the layer's two memos."""
    memos: list[dict[Any, Any]] = [
        layer._negotiated,
        layer._known_types,
    ]
    entries = max(len(memo) for memo in memos)
    longest = max((len(key) for memo in memos for key in memo if key), default=0)
    return entries, longest


def test_memos_stay_bounded_under_hostile_header_values() -> None:
    layer = Compress()
    app = layer(typed_app)
    filler = "x" * 100_000
    run(app, environ_for(accept_encoding="gzip", x_type="text/html"))  # warm up
    most = longest = 0
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(2_000):
            environ = environ_for(
                accept_encoding=f"gzip;q=0.5, {filler}{number}",
                x_type=f"text/html; p={filler}{number}",
            )
            outcome = run(app, environ, keep_result=False)
            assert outcome.header("Content-Encoding") is None  # oversized: identity
            entries, key = memo_sizes(layer)
            most, longest = max(most, entries), max(longest, key)
        del environ, outcome
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1024 * 1024, f"grew {grown} bytes"  # old code: about 50 MB
    assert longest <= MEMO_KEY_LIMIT
    assert most <= MEMO_ENTRIES
    # Unique short values: each memo is emptied when full, never over its size.
    for number in range(5_000):
        environ = environ_for(
            accept_encoding=f"gzip;q=0.5, x-{number}", x_type=f"text/html; v={number}"
        )
        outcome = run(app, environ, keep_result=False)
        assert outcome.header("Content-Encoding") == "gzip"
        entries, key = memo_sizes(layer)
        assert entries <= MEMO_ENTRIES and key <= MEMO_KEY_LIMIT


def test_accepted_encodings_remembers_short_values_only() -> None:
    # The memo behind accepted_encodings (before the fix: the function itself).
    memo: Any = getattr(http_module, "_remembered", accepted_encodings)
    for number in range(1_000):
        accepted_encodings(f"gzip;q=0.5, y-{number}", OFFER)
    assert memo.cache_info().currsize <= MEMO_ENTRIES
    # A value over MEMO_KEY_LIMIT never enters the memo (no miss, no hit); a short
    # one does.
    long_value = "a," * 200 + "gzip"
    assert len(long_value) > MEMO_KEY_LIMIT
    info = memo.cache_info()
    assert accepted_encodings(long_value, OFFER) == ("gzip", "identity")
    assert accepted_encodings(long_value, OFFER) == ("gzip", "identity")
    assert memo.cache_info() == info
    short_value = f"gzip, hostile-{id(info)}"
    accepted_encodings(short_value, OFFER)
    accepted_encodings(short_value, OFFER)
    after = memo.cache_info()
    assert (after.misses, after.hits) == (info.misses + 1, info.hits + 1)
    assert getattr(http_module, "MEMO_KEY_LIMIT", None) == MEMO_KEY_LIMIT


def test_prefers_json_does_not_parse_a_huge_accept_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A 240 KB Accept cost up to 114 ms of WebOb parsing on every 401/429/500 page.
    entries = [f"text/x-{number};q=0.5" for number in range(13_000)]
    huge = ", ".join([*entries, "application/json"])
    assert len(huge) > 240_000
    parsed: list[int] = []
    real = acceptparse.create_accept_header  # what middleware.http calls

    def counting(value: str) -> Any:
        parsed.append(len(value))
        return real(value)

    monkeypatch.setattr(http_module, "create_accept_header", counting)
    assert prefers_json("application/json, text/plain, */*") is True
    assert prefers_json(huge) is False  # not parsed: HTML, the default
    assert parsed == [len("application/json, text/plain, */*")]


# -- what a review found -------------------------------------------------------------


def test_a_weakened_coded_tag_gets_the_coded_tag_back_on_its_304() -> None:
    # A cache may send the tag weak; a weak-comparing app answers 304 with its own
    # strong tag. The 304 must still carry the coded tag and Vary.
    app = Gzip()(weak_app)
    outcome = serve(app, accept_encoding="gzip", if_none_match='W/"v1-gzip"')
    assert outcome.status == "304 Not Modified"
    assert outcome.header("ETag") == '"v1-gzip"'
    assert outcome.header("Vary") == "Accept-Encoding"


def test_a_304_to_a_date_alone_keeps_its_vary() -> None:
    def dated(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        if environ.get("HTTP_IF_MODIFIED_SINCE"):
            start_response("304 Not Modified", [])
            return []
        start_response("200 OK", [HTML, LENGTH])
        return [PAGE]

    app = Gzip()(dated)
    assert serve(app, accept_encoding="gzip").header("Vary") == "Accept-Encoding"
    again = serve(
        app,
        accept_encoding="gzip",
        if_modified_since="Mon, 01 Jan 2024 00:00:00 GMT",
    )
    assert again.status == "304 Not Modified"
    assert again.header("Vary") == "Accept-Encoding"


def test_tags_holding_commas_and_headers_with_nothing_to_map_are_kept() -> None:
    seen: list[str | None] = []

    def tagged(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        seen.append(environ.get("HTTP_IF_NONE_MATCH"))
        if environ.get("HTTP_IF_NONE_MATCH") == '"v1,en"':
            start_response("304 Not Modified", [("ETag", '"v1,en"')])
            return []
        start_response("200 OK", [HTML, LENGTH, ("ETag", '"v1,en"')])
        return [PAGE]

    app = Gzip()(tagged)
    first = serve(app, accept_encoding="gzip")
    assert first.header("ETag") == '"v1,en-gzip"'
    again = serve(app, accept_encoding="gzip", if_none_match='"v1,en-gzip"')
    assert (seen[-1], again.status) == ('"v1,en"', "304 Not Modified")
    assert again.header("ETag") == '"v1,en-gzip"'
    odd = ' "x" ,W/"y",  "z,w" '
    serve(app, accept_encoding="gzip", if_none_match=odd)
    assert seen[-1] == odd  # nothing mapped: the header as the client sent it


def test_a_large_list_body_is_streamed_not_joined() -> None:
    # A list of many chunks is joined (to get a length) only up to WHOLE_LIMIT:
    # joining a 32 MiB list copied it whole.
    from middleware.proxy.body import WHOLE_LIMIT

    chunk = os.urandom(1024) * 64  # 64 KiB, compressible by repetition
    chunks = [chunk] * (32 * 1024 * 1024 // len(chunk))

    def big(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [HTML])
        return chunks

    app = Gzip()(big)
    environ = {**make_environ(), "HTTP_ACCEPT_ENCODING": "gzip"}
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        outcome = run(app, environ)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert outcome.error is None
    assert outcome.header("Content-Length") is None  # streamed
    assert peak < 8 * 1024 * 1024, f"{peak / 2**20:.1f} MiB"
    small = [PAGE[:100]] * (WHOLE_LIMIT // 100)

    def many(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [HTML])
        return small

    assert run(Gzip()(many), dict(environ)).header("Content-Length") is not None
