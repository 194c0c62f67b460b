"""Compress and Gzip: the conformance kit per coding, negotiation and skip-rule
tables, round trips of random chunkings, and streaming."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import brotli
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from middleware import Compress, Gzip
from middleware import testing as conformance
from middleware.compress import AVAILABLE, DEFAULT_TYPES
from middleware.compress.coders import zstd_coder
from middleware.http import ACCEPT_ENCODING_LIMIT, accepted_encodings
from middleware.testing import Served, Style, Subject, make_environ, run
from middleware.wsgi import StartResponse, WSGIApplication, WSGIEnvironment, add_vary

# -- decoders ------------------------------------------------------------------------
# Each returns what a client can decode from the bytes so far (a body cut short by
# an error is a valid prefix, thanks to the per-chunk flush) and whether the stream
# was complete.


def gunzip(body: bytes) -> tuple[bytes, bool]:
    decoder = zlib.decompressobj(31)
    return decoder.decompress(body), decoder.eof


def unbrotli(body: bytes) -> tuple[bytes, bool]:
    decoder = brotli.Decompressor()
    data = decoder.process(body)
    return data, decoder.is_finished()


def unzstd(body: bytes) -> tuple[bytes, bool]:
    decoder = zstandard.ZstdDecompressor().decompressobj()
    data = decoder.decompress(body)
    return data, decoder.eof


DECODERS: dict[str, Callable[[bytes], tuple[bytes, bool]]] = {
    "gzip": gunzip,
    "br": unbrotli,
    "zstd": unzstd,
}


def incremental(coding: str) -> Callable[[bytes], bytes]:
    """A streaming decoder: feed it chunks, get what each one decodes to."""
    if coding == "gzip":
        return zlib.decompressobj(31).decompress
    if coding == "br":
        return brotli.Decompressor().process  # type: ignore[no-any-return]
    return zstandard.ZstdDecompressor().decompressobj().decompress


def decoded(coding: str) -> Callable[[bytes], bytes]:
    return lambda body: DECODERS[coding](body)[0]


def test_every_coding_is_available_in_the_test_environment() -> None:
    # The test extra installs brotli and zstandard, so every coding is exercised.
    assert AVAILABLE == ("zstd", "br", "gzip")


# -- the conformance kit ------------------------------------------------------------


def check_compressed(coding: str) -> Callable[[Style, Served], None]:
    def check(style: Style, outcome: Served) -> None:
        if not outcome.status:
            return
        if style.bodiless:
            assert outcome.header("Content-Encoding") is None
            return
        assert outcome.header("Content-Encoding") == coding
        assert outcome.header("Vary") == "Accept-Encoding"
        # An exact length when the whole body was known before its first byte
        # (a list), none when it is streamed (tests below say which gets which).
        length = outcome.header("Content-Length")
        assert length is None or int(length) == len(outcome.body)
        if outcome.error is None and style.abandon_after is None:
            body, complete = DECODERS[coding](outcome.body)
            assert complete and body == style.body

    return check


def subject(coding: str, layer: Any) -> Subject:
    return Subject(
        f"{type(layer).__name__.lower()}-{coding}",
        layer,
        decode=decoded(coding),
        transforms=True,
        check=check_compressed(coding),
        environ={"HTTP_ACCEPT_ENCODING": f"{coding}, identity;q=0.5"},
    )


test_conformance = conformance.suite(
    subject("gzip", Gzip(min_size=0)),
    *(subject(coding, Compress(min_size=0)) for coding in AVAILABLE),
)


# -- negotiation ----------------------------------------------------------------------

OFFER = ("zstd", "br", "gzip", "identity")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, ("identity",)),
        ("", ("identity",)),
        ("gzip", ("gzip", "identity")),
        ("gzip;q=0", ("identity",)),
        ("gzip; q=0.000", ("identity",)),
        ("identity;q=0", ()),
        ("gzip, identity;q=0", ("gzip",)),
        ("*", ("zstd", "br", "gzip", "identity")),
        ("*;q=0", ()),
        ("*;q=0, identity", ("identity",)),
        ("br;q=0, gzip", ("gzip", "identity")),
        ("br;q=0, *", ("zstd", "gzip", "identity")),
        ("identity;q=1, *;q=0", ("identity",)),  # Chrome's media range requests
        ("GZIP ; Q=0.5, Br", ("br", "gzip", "identity")),
        ("  gzip  ,  br  ", ("br", "gzip", "identity")),
        ("gzip, deflate, br, zstd", ("zstd", "br", "gzip", "identity")),
        ("gzip;q=0.8, br;q=0.9", ("br", "gzip", "identity")),
        ("gzip;q=0.5, identity", ("identity", "gzip")),
        ("x-gzip", ("gzip", "identity")),
        ("gzip;q=0, x-gzip", ("identity",)),
        ("x-gzip, gzip;q=0", ("identity",)),
        ("x-gzip-foo", ("identity",)),  # a token, not a substring
        ("gzipx, brotli", ("identity",)),
        ("gzip;q=2", ("identity",)),  # malformed q-values drop the entry
        ("gzip;q=abc, br", ("br", "identity")),
        ("gzip;q=0.1234", ("identity",)),
        ("gzip;level=1;q=0.5", ("gzip", "identity")),
        (",,gzip,,", ("gzip", "identity")),
        ("deflate, compress", ("identity",)),
        ("gzip" + " " * ACCEPT_ENCODING_LIMIT, ("identity",)),  # oversized
        ("br," * 400 + "gzip", ("identity",)),
        # An identity the header does not name is the fallback: below every coding
        # it offers with q > 0 (as nginx, Apache and flask-compress rank it).
        ("gzip;q=0.5", ("gzip", "identity")),
        ("GZip;Q=0.5", ("gzip", "identity")),
        ("deflate, gzip;q=0.8, br", ("br", "gzip", "identity")),
        ("gzip;q=0.001", ("gzip", "identity")),
        ("x-gzip;q=0.5", ("gzip", "identity")),
        ("*;q=0.3", ("zstd", "br", "gzip", "identity")),
        ("gzip;q=0.2, *;q=0.3", ("zstd", "br", "gzip", "identity")),
        # Named, identity competes by its q-value.
        ("gzip;q=0.5, identity;q=0.4", ("gzip", "identity")),
        ("gzip;q=0.5, identity;q=0.6", ("identity", "gzip")),
        ("gzip;q=0.5, *;q=0", ("gzip",)),
        ("\tgzip\t;\tq=0.5\t", ("gzip", "identity")),  # tabs are whitespace
        ("gzip, gzip;q=0", ("identity",)),  # a repeated coding: its last entry
        ("gzip;q=0, gzip", ("gzip", "identity")),
        ("gzip;q=.5", ("identity",)),  # not a qvalue: the entry is dropped
        ("gzip;q=0.5;q=1", ("gzip", "identity")),  # a repeated q: the last
        (", ".join(["unknown"] * 100) + ", gzip", ("gzip", "identity")),
    ],
)
def test_accepted_encodings(header: str | None, expected: tuple[str, ...]) -> None:
    assert accepted_encodings(header, OFFER) == expected


def test_server_preference_breaks_ties() -> None:
    assert accepted_encodings("gzip, br", ("gzip", "br"))[0] == "gzip"
    assert accepted_encodings("gzip, br", ("br", "gzip"))[0] == "br"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ([], [("Vary", "Accept-Encoding")]),
        ([("Vary", "Cookie")], [("Vary", "Cookie, Accept-Encoding")]),
        ([("vary", "accept-encoding")], [("vary", "accept-encoding")]),
        ([("Vary", "*")], [("Vary", "*")]),
        ([("Vary", "")], [("Vary", "Accept-Encoding")]),
        (
            [("Vary", "Cookie"), ("Vary", "Origin, Accept-Encoding")],
            [("Vary", "Cookie"), ("Vary", "Origin, Accept-Encoding")],
        ),
    ],
)
def test_add_vary_merges(
    before: list[tuple[str, str]], after: list[tuple[str, str]]
) -> None:
    headers = list(before)
    add_vary(headers, "Accept-Encoding")
    assert headers == after


# -- helpers for one response --------------------------------------------------------

TEXT = b"<p>" + b"compressible text " * 100 + b"</p>"


def make_app(
    status: str = "200 OK",
    headers: list[tuple[str, str]] | None = None,
    body: list[bytes] | None = None,
    environ_flag: bool | None = None,
) -> tuple[WSGIApplication, list[Any]]:
    """An app returning a list body; the second value records what it returned."""
    returned: list[Any] = []
    chunks = [TEXT] if body is None else body
    if headers is None:
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(sum(map(len, chunks)))),
        ]

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        if environ_flag is not None:
            environ["middleware.compress"] = environ_flag
        start_response(status, list(headers))
        result = list(chunks)
        returned.append(result)
        return result

    return app, returned


def serve(
    layer: Any, app: WSGIApplication, method: str = "GET", **headers: str
) -> Served:
    environ = make_environ(method)
    environ.setdefault("HTTP_ACCEPT_ENCODING", "gzip, br, zstd")
    for name, value in headers.items():
        key = name.upper()
        environ[key if key.startswith("HTTP_") else f"HTTP_{key}"] = value
    outcome = run(layer(app), environ)
    assert outcome.error is None, outcome.error
    return outcome


def test_negotiated_coding_reaches_the_response() -> None:
    layer = Compress()
    for header, coding in [
        ("gzip", "gzip"),
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip, br, zstd", "zstd"),
        ("gzip;q=1, br;q=0.5", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("*", "zstd"),
    ]:
        outcome = serve(layer, make_app()[0], accept_encoding=header)
        assert outcome.header("Content-Encoding") == coding, header
        assert DECODERS[coding](outcome.body) == (TEXT, True)
    ordered = Compress(encodings=["gzip", "br"])
    outcome = serve(ordered, make_app()[0], accept_encoding="gzip, br, zstd")
    assert outcome.header("Content-Encoding") == "gzip"


# -- when not to compress --------------------------------------------------------------


def skipped(
    layer: Any = None,
    *,
    status: str = "200 OK",
    headers: list[tuple[str, str]] | None = None,
    method: str = "GET",
    flag: bool | None = None,
    **request: str,
) -> Served:
    """Serve a response that must be left alone, and check it was, untouched."""
    app, returned = make_app(status, headers, environ_flag=flag)
    outcome = serve(layer or Compress(), app, method, **request)
    assert outcome.header("Content-Encoding") in (None, "br-already")
    assert outcome.result is returned[0], "not the app's own iterable"
    if method != "HEAD" and not status.startswith(("204", "304")):
        assert outcome.body == TEXT
    return outcome


HTML = ("Content-Type", "text/html")


@pytest.mark.parametrize(
    ("case", "kwargs", "vary"),
    [
        ("head", {"method": "HEAD"}, True),
        ("range request", {"range": "bytes=0-9"}, True),
        ("no accept-encoding", {"accept_encoding": ""}, True),
        ("all refused", {"accept_encoding": "gzip;q=0, br;q=0, zstd;q=0"}, True),
        ("unknown codings only", {"accept_encoding": "deflate, sdch"}, True),
        ("oversized accept-encoding", {"accept_encoding": "gzip," * 300}, True),
        ("app opted out", {"flag": False}, False),
        ("204", {"status": "204 No Content", "headers": [HTML]}, False),
        ("206", {"status": "206 Partial Content", "headers": [HTML]}, False),
        ("101", {"status": "101 Switching Protocols", "headers": [HTML]}, False),
        # A 304 usually has no Content-Type. Its request's If-None-Match says which
        # body the client holds: the app's own tag, the app's body (a PNG's 200 had
        # no Vary); without one (a date), nothing tells, and Vary is added.
        (
            "304 to the app's own tag",
            {"status": "304 Not Modified", "headers": [], "if_none_match": '"a"'},
            False,
        ),
        ("304 to a date", {"status": "304 Not Modified", "headers": []}, True),
        ("304 of a text", {"status": "304 Not Modified", "headers": [HTML]}, True),
        (
            "already encoded",
            {"headers": [HTML, ("Content-Encoding", "br-already")]},
            False,
        ),
        (
            "no-transform",
            {"headers": [HTML, ("Cache-Control", "public, No-Transform")]},
            False,
        ),
        ("jpeg", {"headers": [("Content-Type", "image/jpeg")]}, False),
        ("zip", {"headers": [("Content-Type", "application/zip")]}, False),
        ("woff2", {"headers": [("Content-Type", "font/woff2")]}, False),
        ("mp4", {"headers": [("Content-Type", "video/mp4")]}, False),
        (
            "octet-stream",
            {"headers": [("Content-Type", "application/octet-stream")]},
            False,
        ),
        ("no content type", {"headers": []}, False),
        ("event stream", {"headers": [("Content-Type", "text/event-stream")]}, False),
        (
            "under min_size",
            {
                "headers": [HTML, ("Content-Length", str(len(TEXT)))],
                "layer": Compress(min_size=len(TEXT) + 1),
            },
            True,
        ),
    ],
)
def test_skip_rules(case: str, kwargs: dict[str, Any], vary: bool) -> None:
    outcome = skipped(**kwargs)
    assert (outcome.header("Vary") == "Accept-Encoding") is vary, outcome.headers


def test_a_304_to_the_apps_own_tag_is_left_as_the_app_sent_it() -> None:
    # The client holds the app's own (identity) body, a PNG's say: its 304 keeps
    # the app's strong tag and gets no Vary its 200 did not have (defect: it got
    # W/"abc" and Vary: Accept-Encoding).
    headers = [("ETag", '"abc"')]
    outcome = skipped(status="304 Not Modified", headers=headers, if_none_match='"abc"')
    assert outcome.headers == [("ETag", '"abc"')]
    outcome = skipped(
        status="304 Not Modified",
        headers=headers,
        accept_encoding="",
        if_none_match='"abc"',
    )
    assert outcome.headers == [("ETag", '"abc"')]


def test_min_size_is_ignored_when_identity_is_refused() -> None:
    small = [(HTML), ("Content-Length", str(len(TEXT)))]
    layer = Compress(min_size=len(TEXT) + 1)
    app = make_app(headers=small)[0]
    outcome = serve(layer, app, accept_encoding="gzip, identity;q=0")
    assert outcome.header("Content-Encoding") == "gzip"


def test_unknown_length_is_compressed_and_event_stream_when_enabled() -> None:
    app = make_app(headers=[HTML])[0]
    assert serve(Gzip(), app).header("Content-Encoding") == "gzip"
    events = make_app(headers=[("Content-Type", "text/event-stream")])[0]
    outcome = serve(Gzip(event_stream=True), events)
    assert outcome.header("Content-Encoding") == "gzip"


def test_headers_of_a_compressed_response() -> None:
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(TEXT))),
        ("ETag", '"v1"'),
        ("Vary", "Cookie"),
        ("Cache-Control", "max-age=60"),
    ]
    outcome = serve(Gzip(), make_app(headers=headers)[0])
    assert outcome.header("Content-Encoding") == "gzip"
    assert outcome.header("Content-Length") == str(len(outcome.body))
    assert outcome.header("ETag") == '"v1-gzip"'  # one strong tag per coding
    assert outcome.header("Vary") == "Cookie, Accept-Encoding"
    assert outcome.header("Cache-Control") == "max-age=60"
    weak = [*headers[:2], ("ETag", 'W/"v1"')]
    # Weak tags are coded too, so a 304 can tell which body the client holds.
    assert serve(Gzip(), make_app(headers=weak)[0]).header("ETag") == 'W/"v1-gzip"'


@pytest.mark.parametrize(
    ("content_type", "compressed"),
    [
        ("text/plain", True),
        ("TEXT/HTML; charset=UTF-8", True),
        ("application/json", True),
        ("application/ld+json", True),
        ("application/javascript", True),
        ("application/atom+xml", True),
        ("image/svg+xml", True),
        ("application/wasm", True),
        ("image/png", False),
        ("application/pdf", False),
        ("audio/mpeg", False),
        ("application/gzip", False),
        ("application/json-seq-but-not-json", False),
    ],
)
def test_default_types(content_type: str, compressed: bool) -> None:
    assert Compress().compressible(content_type) is compressed


def test_custom_types() -> None:
    layer = Compress(types=["application/x-custom", "text/*"])
    assert layer.compressible("application/x-custom")
    assert not layer.compressible("application/json")
    assert "text/*" in DEFAULT_TYPES


# -- write(), random chunkings, streaming ---------------------------------------------


def test_write_bytes_go_through_the_same_compressor_first() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [HTML])
        write(b"written ")
        write(b"")
        return [b"then ", b"iterated"]

    for coding in AVAILABLE:
        outcome = serve(Compress(), app, accept_encoding=coding)
        assert DECODERS[coding](outcome.body) == (b"written then iterated", True)


chunkings = st.lists(st.binary(max_size=3000), max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    written=chunkings,
    iterated=chunkings,
    coding=st.sampled_from(AVAILABLE),
    level=st.integers(min_value=1, max_value=9),
)
def test_random_chunkings_round_trip(
    written: list[bytes], iterated: list[bytes], coding: str, level: int
) -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        for chunk in written:
            write(chunk)
        yield from iterated

    layer = Compress(encodings=[coding], level=level, min_size=0)
    outcome = serve(layer, app, accept_encoding=coding)
    assert outcome.header("Content-Encoding") == coding
    assert DECODERS[coding](outcome.body) == (b"".join(written + iterated), True)
    # Every chunk is flushed: each non-empty one comes out as one chunk that
    # decodes, in order, to exactly its bytes.
    decode = incremental(coding)
    inputs = [chunk for chunk in written + iterated if chunk]
    outputs = [chunk for chunk in outcome.chunks if chunk]
    for data, part in zip(inputs, outputs, strict=False):
        assert decode(part) == data
    assert len(outputs) in (len(inputs), len(inputs) + 1)  # + the end of stream


def test_each_chunk_decodes_before_the_next_is_produced() -> None:
    produced: list[int] = []

    def events(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        for number in range(3):
            produced.append(number)
            yield f"data: event {number}\n\n".encode()
            if number == 0:
                yield b""  # a chunk held back elsewhere: passed on, empty

    for coding in AVAILABLE:
        produced.clear()
        environ = make_environ()
        environ["HTTP_ACCEPT_ENCODING"] = coding
        layer = Compress(event_stream=True)(events)
        result = layer(environ, lambda status, headers, exc_info=None: lambda _: None)
        iterator = iter(result)
        decode = incremental(coding)
        assert decode(next(iterator)) == b"data: event 0\n\n"
        assert produced == [0]
        assert next(iterator) == b""
        assert decode(next(iterator)) == b"data: event 1\n\n"
        assert produced == [0, 1]
        close(result)


# -- configuration ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"encodings": "gzip"}, "encodings: expected a list"),
        ({"encodings": []}, "encodings: expected one or more"),
        ({"encodings": ["gzip", "gzip"]}, "encodings: expected one or more distinct"),
        ({"encodings": ["deflate"]}, "encodings: 'deflate' is not one of"),
        ({"level": 6}, "level: an int is ambiguous"),
        ({"level": {"gzip": 10}}, "level: gzip takes 1..9, got 10"),
        ({"level": {"br": 12}}, "level: br takes 0..11, got 12"),
        ({"level": {"zstd": 22}}, "level: zstd takes 1..19, got 22"),
        ({"level": {"gzip": True}}, "level: gzip takes 1..9, got True"),
        ({"level": {"lz4": 1}}, "level: 'lz4' is not one of the encodings"),
        ({"level": "6"}, "level: expected an int or a mapping, got '6'"),
        ({"min_size": -1}, "min_size: expected an int >= 0, got -1"),
        ({"min_size": "500"}, "min_size: expected an int >= 0, got '500'"),
        ({"types": "text/*"}, "types: expected a list of media types"),
        ({"types": ["html"]}, "types: each entry must be a media type"),
        ({"event_stream": "yes"}, "event_stream: expected True or False"),
    ],
)
def test_bad_configuration_names_the_option(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        Compress(**kwargs)


def test_gzip_takes_an_int_level_and_offers_only_gzip() -> None:
    layer = Gzip(level=9)
    assert layer.encodings == ("gzip",) and layer.level == {"gzip": 9}
    with pytest.raises(ValueError, match="level: gzip takes 1..9, got 0"):
        Gzip(level=0)
    with pytest.raises(ValueError, match="encodings: 'br' is not one of gzip"):
        Compress.__init__(layer, encodings=["br"])
    outcome = serve(
        layer, make_app()[0], accept_encoding="br, zstd, gzip;q=0.1, identity;q=0.05"
    )
    assert outcome.header("Content-Encoding") == "gzip"
    assert "Gzip(encodings=('gzip',), level={'gzip': 9}" in repr(layer)


def test_compress_levels_merge_over_the_defaults() -> None:
    assert Compress(level={"br": 5}).level == {"zstd": 3, "br": 5, "gzip": 6}


@pytest.mark.parametrize("coding", AVAILABLE)
def test_memory_stays_flat_for_a_big_streamed_body(coding: str) -> None:
    """16 MiB in 64 KiB chunks: what the middleware holds never grows with the
    body. tracemalloc sees every Python object and zlib's buffers; brotli and zstd
    allocate their windows outside it (bounded by the window: see the docs)."""
    chunk = os.urandom(1024) * 64  # 64 KiB; compressible across chunks for br/zstd

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        for _ in range(256):
            yield chunk

    environ = make_environ()
    environ["HTTP_ACCEPT_ENCODING"] = coding
    tracemalloc.start()
    try:
        result = Compress()(app)(environ, lambda s, h, e=None: lambda _: None)
        base = tracemalloc.get_traced_memory()[0]
        sent = sum(len(part) for part in result)
        close(result)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sent > 0
    assert peak - base < 2 * 1024 * 1024, f"{coding}: peak grew {peak - base} bytes"


def close(result: object) -> None:
    closer: Any = result
    closer.close()


@pytest.mark.parametrize("name", ["backports.zstd", "zstandard"])
def test_both_zstd_apis_stream_flushed_frames(name: str) -> None:
    """The stdlib's API (here through its backport, as Python 3.14's
    compression.zstd is not on this machine) and the zstandard package's."""
    coder_class = zstd_coder(importlib.import_module(name))
    assert coder_class is not None
    coder = coder_class(3)
    decode = incremental("zstd")
    assert decode(coder.chunk(b"first ")) == b"first "
    assert decode(coder.chunk(b"second")) == b"second"
    assert decode(coder.last(b" last")) == b" last"
    coder = coder_class(3)
    assert unzstd(coder.chunk(b"a") + coder.last(b"b")) == (b"ab", True)
    coder = coder_class(3)
    assert unzstd(coder.chunk(b"a") + coder.chunk(b"b") + coder.end()) == (b"ab", True)
    assert unzstd(coder_class(3).last(b"whole body")) == (b"whole body", True)
    assert unzstd(coder_class(3).end()) == (b"", True)


def test_missing_libraries_leave_their_codings_out() -> None:
    """Without brotli and zstd libraries only gzip is offered, and asking for br
    names the extra to install."""
    script = (
        "import sys\n"
        "for name in ('brotli', 'brotlicffi', 'zstandard', 'backports.zstd',"
        " 'compression.zstd'):\n"
        "    sys.modules[name] = None\n"
        "from middleware.compress import AVAILABLE, Compress\n"
        "print(AVAILABLE, Compress().encodings)\n"
        "try:\n"
        "    Compress(encodings=['br'])\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [
        "('gzip',) ('gzip',)",
        "encodings: 'br' needs a library that is not installed "
        "(pip install 'wsgi-middleware-toolkit[brotli]')",
    ]


@pytest.mark.parametrize(
    "chunks", [[b"hello", b"world"], [b"helloworld"], [b"hel", b"loworld", b"!"]]
)
def test_bytes_past_the_content_length_are_dropped_and_logged(
    chunks: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    headers = [HTML, ("Content-Length", "5")]
    app = make_app(headers=headers, body=chunks)[0]
    with caplog.at_level("WARNING", logger="middleware.gzip"):
        outcome = serve(Gzip(min_size=0), app)
    assert gunzip(outcome.body) == (b"hello", True)
    assert "past the Content-Length" in caplog.text


def test_a_body_shorter_than_its_content_length_stays_visibly_short() -> None:
    # Defect 10: the gzip stream was ended, so the client got a complete-looking
    # response. Now the error reaches the server, as a short identity body would.
    whole = make_app(headers=[HTML, ("Content-Length", "50")], body=[b"short"])[0]
    environ = {**make_environ(), "HTTP_ACCEPT_ENCODING": "gzip"}
    outcome = run(Gzip(min_size=0)(whole), environ)
    assert isinstance(outcome.error, ValueError)
    assert "Content-Length: 50" in str(outcome.error)
    assert outcome.chunks == []  # a list: nothing went out, the server answers 500

    def streamed(environ: WSGIEnvironment, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [HTML, ("Content-Length", "5000")])
        yield TEXT[:1000]
        yield TEXT[1000:2000]

    outcome = run(Gzip(min_size=0)(streamed), dict(environ))
    assert isinstance(outcome.error, ValueError)
    assert outcome.header("Content-Length") is None  # streamed, then cut off
    decoded, complete = gunzip(outcome.body)
    assert decoded == TEXT[:2000] and not complete
