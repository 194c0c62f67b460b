"""The conformance kit: every middleware's tests run it.

A matrix of app styles (DESIGN.md, "Testing: the conformance matrix") against one set
of checks, each cell run three ways: inside ``wsgiref.validate.validator`` on both
sides of the middleware, inside Werkzeug's ``LintMiddleware`` on both sides (the two
do not stack with each other), and bare, where identity checks are possible (a
``wsgi.file_wrapper`` result handed on as the same object).

A middleware's test module adopts the kit with one line::

    test_conformance = conformance.suite(Subject("gzip", Gzip(), decode=gunzip))

Checks in every cell: the validators report nothing (their warnings are errors under
pytest's ``filterwarnings = error``); the app's iterable was closed exactly once;
the body that comes out, decoded where the middleware encodes, is what went in; the
final status is right; the exception, if any, reaches the server unless the subject
catches errors; a Content-Length that went out matches the body; HEAD, 204 and 304
are never transformed.

A middleware that answers requests itself (static files, auth) checks each kind of
answer with :func:`answered`: the same validators, an exact Content-Length, no body
where none is allowed, and no file descriptor left open.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment
from wsgiref.util import FileWrapper, setup_testing_defaults
from wsgiref.validate import validator

import pytest
from werkzeug.middleware.lint import LintMiddleware

BODY = b"hello, wsgi world"
PARTS = [b"hello, ", b"wsgi ", b"world"]


class AppError(Exception):
    """What the app styles raise; anything else reaching the server is a bug."""


# -- the pieces an app style is made of -----------------------------------------------


class Probe:
    """What one run of an app style records: how often its iterable was closed."""

    def __init__(self) -> None:
        self.closes = 0


class CountingIterable:
    """An app iterable whose ``close()`` counts its calls (and may raise)."""

    def __init__(
        self, probe: Probe, items: Iterable[bytes], fail_close: bool = False
    ) -> None:
        self.probe = probe
        self.items = items
        self.fail_close = fail_close

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.items)

    def close(self) -> None:
        self.probe.closes += 1
        close = getattr(self.items, "close", None)
        if close is not None:
            close()
        if self.fail_close:
            raise AppError("close failed")


class CountingFile(io.BytesIO):
    """A file whose ``close()`` counts its calls, for ``wsgi.file_wrapper``."""

    def __init__(self, probe: Probe, data: bytes) -> None:
        super().__init__(data)
        self.probe = probe

    def close(self) -> None:
        if not self.closed:
            self.probe.closes += 1
        super().close()


def text_headers(length: int | None = None) -> list[tuple[str, str]]:
    headers = [("Content-Type", "text/plain; charset=utf-8")]
    if length is not None:
        headers.append(("Content-Length", str(length)))
    return headers


# -- app styles -----------------------------------------------------------------------

AppFactory = Callable[[Probe], WSGIApplication]


@dataclass(frozen=True)
class Style:
    """One row of the matrix: an app, the request, and what a server must see."""

    id: str
    make_app: AppFactory
    status: str = "200 OK"
    body: bytes = BODY
    error: type[BaseException] | None = None
    method: str = "GET"
    closes: int | None = 1  # None: the iterable has no close() to count
    abandon_after: int | None = None  # the server stops after this many chunks
    bodiless: bool = False  # HEAD, 204, 304: never transformed
    # The error comes before any byte went out: an error catcher answers 500.
    caught: bool = False


def list_app(probe: Probe) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", text_headers(len(BODY)))
        return list(PARTS)

    return app


def closing_app(probe: Probe) -> WSGIApplication:
    def app(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> CountingIterable:
        start_response("200 OK", text_headers(len(BODY)))
        return CountingIterable(probe, list(PARTS))

    return app


def lazy_app(probe: Probe) -> WSGIApplication:
    def app(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> CountingIterable:
        def body() -> Iterator[bytes]:
            start_response("200 OK", text_headers())
            yield from PARTS

        return CountingIterable(probe, body())

    return app


def raw_generator_app(probe: Probe) -> WSGIApplication:
    """A bare generator, the way most apps stream: close is seen by its finally."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", text_headers())
        try:
            yield from PARTS
        finally:
            probe.closes += 1

    return app


def write_only_app(probe: Probe) -> WSGIApplication:
    def app(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> CountingIterable:
        write = start_response("200 OK", text_headers(len(BODY)))
        for part in PARTS:
            write(part)
        return CountingIterable(probe, [])

    return app


def write_and_iterable_app(probe: Probe) -> WSGIApplication:
    def app(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> CountingIterable:
        write = start_response("200 OK", text_headers(len(BODY)))
        write(PARTS[0])
        return CountingIterable(probe, PARTS[1:])

    return app


def file_wrapper_app(probe: Probe) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", text_headers(len(BODY)))
        wrapper: Callable[..., Iterable[bytes]] = environ["wsgi.file_wrapper"]
        return wrapper(CountingFile(probe, BODY), 4)

    return app


def raise_before_start_app(probe: Probe) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        raise AppError("before start_response")

    return app


def raise_after_start_app(probe: Probe) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", text_headers())
        raise AppError("after start_response, before returning")

    return app


def raise_after_write_app(probe: Probe) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", text_headers())
        write(b"partial")
        raise AppError("after write(), so after bytes went out")

    return app


def raise_lazily_before_start_app(probe: Probe) -> WSGIApplication:
    """A generator app that fails on its first next(), before start_response."""

    def app(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> CountingIterable:
        def body() -> Iterator[bytes]:
            yield from ()  # a generator: the error comes on the first next()
            raise AppError("in the generator, before start_response")

        return CountingIterable(probe, body())

    return app


def raise_iterating_app(probe: Probe, *, first: bytes) -> WSGIApplication:
    def app(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> CountingIterable:
        def body() -> Iterator[bytes]:
            start_response("200 OK", text_headers())
            yield first
            raise AppError("while iterating")

        return CountingIterable(probe, body())

    return app


def raise_in_close_app(probe: Probe) -> WSGIApplication:
    def app(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> CountingIterable:
        start_response("200 OK", text_headers(len(BODY)))
        return CountingIterable(probe, list(PARTS), fail_close=True)

    return app


def exc_info_replace_app(probe: Probe) -> WSGIApplication:
    """Start a 200, fail before any byte is sent, replace it with a 500."""

    def app(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> CountingIterable:
        def body() -> Iterator[bytes]:
            start_response("200 OK", text_headers(999))
            yield b""
            try:
                raise AppError("replaced")
            except AppError:
                start_response(
                    "500 Internal Server Error", text_headers(len(BODY)), sys.exc_info()
                )
            yield BODY

        return CountingIterable(probe, body())

    return app


def exc_info_after_sent_app(probe: Probe) -> WSGIApplication:
    """Fail after bytes went out: start_response must re-raise, and the app lets it."""

    def app(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> CountingIterable:
        def body() -> Iterator[bytes]:
            start_response("200 OK", text_headers())
            yield b"partial"
            try:
                raise AppError("too late")
            except AppError:
                start_response(
                    "500 Internal Server Error", text_headers(), sys.exc_info()
                )
            yield b"never sent"  # pragma: no cover - start_response raised

        return CountingIterable(probe, body())

    return app


EMPTY_INTERLEAVED = [b"", PARTS[0], b"", b"", PARTS[1], b"", PARTS[2], b""]


def empty_chunks_app(probe: Probe) -> WSGIApplication:
    def app(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> CountingIterable:
        def body() -> Iterator[bytes]:
            start_response("200 OK", text_headers())
            yield from EMPTY_INTERLEAVED

        return CountingIterable(probe, body())

    return app


def long_stream_app(probe: Probe) -> WSGIApplication:
    def app(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> CountingIterable:
        def body() -> Iterator[bytes]:
            start_response("200 OK", text_headers())
            while True:
                yield b"tick "

        return CountingIterable(probe, body())

    return app


def no_body_app(status: str, headers: list[tuple[str, str]]) -> AppFactory:
    def make(probe: Probe) -> WSGIApplication:
        def app(
            environ: WSGIEnvironment, start_response: StartResponse
        ) -> CountingIterable:
            start_response(status, list(headers))
            return CountingIterable(probe, [])

        return app

    return make


STYLES: list[Style] = [
    Style("list", list_app, closes=None),
    Style("closing-iterable", closing_app),
    Style("lazy-start-response", lazy_app),
    Style("raw-generator", raw_generator_app),
    Style("write-only", write_only_app),
    Style("write-then-iterable", write_and_iterable_app),
    Style("file-wrapper", file_wrapper_app),
    Style(
        "raise-before-start",
        raise_before_start_app,
        status="",
        body=b"",
        error=AppError,
        closes=None,
        caught=True,
    ),
    Style(
        "raise-after-start",
        raise_after_start_app,
        body=b"",
        error=AppError,
        closes=None,
        caught=True,
    ),
    Style(
        "raise-lazily-before-start",
        raise_lazily_before_start_app,
        status="",
        body=b"",
        error=AppError,
        caught=True,
    ),
    Style(
        "raise-after-write",
        raise_after_write_app,
        body=b"partial",
        error=AppError,
        closes=None,
    ),
    Style(
        "raise-after-first-chunk",
        lambda p: raise_iterating_app(p, first=b"partial"),
        body=b"partial",
        error=AppError,
    ),
    Style(
        "raise-after-empty-chunk",
        lambda p: raise_iterating_app(p, first=b""),
        body=b"",
        error=AppError,
        caught=True,
    ),
    Style("raise-in-close", raise_in_close_app, error=AppError),
    Style(
        "exc-info-before-sent", exc_info_replace_app, status="500 Internal Server Error"
    ),
    Style(
        "exc-info-after-sent", exc_info_after_sent_app, body=b"partial", error=AppError
    ),
    Style("empty-chunks", empty_chunks_app),
    Style("abandoned-before-iterating", lazy_app, abandon_after=0, body=b"", status=""),
    Style("abandoned-midway", long_stream_app, abandon_after=3, body=b"tick " * 3),
    Style("head", closing_app, method="HEAD", bodiless=True),
    Style(
        "204",
        # Werkzeug's lint wants an explicit zero length on a 204.
        no_body_app("204 No Content", [("Content-Length", "0")]),
        status="204 No Content",
        body=b"",
        bodiless=True,
    ),
    Style(
        "304",
        no_body_app("304 Not Modified", [("ETag", '"v1"')]),
        status="304 Not Modified",
        body=b"",
        bodiless=True,
    ),
]


# -- the server stand-in --------------------------------------------------------------


@dataclass
class Served:
    """What a strict server saw: the final status and headers, the chunks, the error."""

    status: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    error: BaseException | None = None
    result: object = None
    environ: WSGIEnvironment = field(default_factory=dict)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def make_environ(method: str = "GET", path: str = "/") -> WSGIEnvironment:
    environ: WSGIEnvironment = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
        "wsgi.file_wrapper": FileWrapper,
    }
    setup_testing_defaults(environ)
    return environ


def run(
    app: WSGIApplication,
    environ: WSGIEnvironment | None = None,
    *,
    abandon_after: int | None = None,
) -> Served:
    """Serve one request the way a strict PEP 3333 server does.

    Headers count as sent at the first non-empty chunk or write; start_response
    again without exc_info is refused, and with exc_info after headers went out it
    re-raises. ``close()`` is called once, on every path. *abandon_after* stops after
    that many chunks, as a server does when the client goes away.
    """
    environ = make_environ() if environ is None else environ
    outcome = Served(environ=environ)
    sent = False
    started = False

    def write(data: bytes) -> None:
        nonlocal sent
        if not started:
            raise AssertionError("write() before start_response()")
        if type(data) is not bytes:
            raise AssertionError(f"write() takes bytes, got {type(data).__name__}")
        sent = sent or bool(data)
        outcome.chunks.append(data)

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        nonlocal started
        if exc_info is not None:
            if sent:
                raise exc_info[1].with_traceback(exc_info[2])
        elif started:
            raise AssertionError("start_response() called twice without exc_info")
        started = True
        outcome.status, outcome.headers = status, list(headers)
        return write

    result = None
    try:
        result = app(environ, start_response)
        outcome.result = result
        iterator = iter(result) if abandon_after != 0 else iter(())
        while abandon_after is None or len(outcome.chunks) < abandon_after:
            try:
                chunk = next(iterator)
            except StopIteration:
                break
            if type(chunk) is not bytes:
                raise AssertionError(f"the iterable yielded {type(chunk).__name__}")
            if chunk and not started:
                raise AssertionError("body before start_response()")
            sent = sent or bool(chunk)
            outcome.chunks.append(chunk)
    except BaseException as exc:  # the server's job: record what reached it
        outcome.error = exc
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            try:
                close()
            except BaseException as exc:  # recorded, like a server logs it
                if outcome.error is None:
                    outcome.error = exc
    return outcome


# -- the subject and the checks -------------------------------------------------------


def identity(body: bytes) -> bytes:
    return body


@dataclass(frozen=True)
class Subject:
    """A middleware under test.

    :param wrap: ``app -> app``: a configured middleware, or a lambda building a stack.
    :param decode: undoes the middleware's body change (gunzip, lower-casing).
    :param transforms: the middleware changes bodies, so a file wrapper is iterated
        rather than handed on, and Content-Length may go.
    :param catches_errors: the middleware's job is to turn errors into responses:
        those raised before any byte went out (``Style.caught``) must come out as a
        500 with an exact Content-Length; later ones must still reach the server.
    :param check: extra checks on each cell's outcome, given (style, outcome).
    :param environ: extra environ keys for every request (``HTTP_ACCEPT_ENCODING``).
    """

    id: str
    wrap: Callable[[WSGIApplication], WSGIApplication]
    decode: Callable[[bytes], bytes] = identity
    transforms: bool = False
    catches_errors: bool = False
    check: Callable[[Style, Served], None] | None = None
    environ: Mapping[str, str] = field(default_factory=dict)


def sandwich(kind: str, subject: Subject, app: WSGIApplication) -> WSGIApplication:
    if kind == "wsgiref":
        return validator(subject.wrap(validator(app)))
    if kind == "werkzeug":
        return LintMiddleware(subject.wrap(LintMiddleware(app)))
    return subject.wrap(app)


VALIDATORS = ["wsgiref", "werkzeug", "bare"]


@contextlib.contextmanager
def unraisable_errors() -> Iterator[list[str]]:
    """Collect what ``__del__`` methods raise (the validators' "iterator garbage
    collected without being closed"), so a cell fails cleanly instead of pytest
    meeting the error later, in some other test."""
    caught: list[str] = []
    previous = sys.unraisablehook

    def hook(info: Any) -> None:
        caught.append(f"{info.exc_type.__name__}: {info.exc_value} ({info.object!r})")

    sys.unraisablehook = hook
    try:
        yield caught
    finally:
        sys.unraisablehook = previous


def check_cell(subject: Subject, style: Style, kind: str) -> None:
    """Run one cell of the matrix and assert everything the kit promises."""
    with unraisable_errors() as unraisable:
        try:
            _check_cell(subject, style, kind)
        finally:
            gc.collect()
    assert not unraisable, unraisable


def _check_cell(subject: Subject, style: Style, kind: str) -> None:
    probe = Probe()
    app = style.make_app(probe)
    environ = make_environ(style.method)
    environ.update(subject.environ)
    outcome = run(
        sandwich(kind, subject, app),
        environ,
        abandon_after=style.abandon_after,
    )

    # The exception reaches the server, unchanged, unless catching is the job and
    # nothing was sent yet: then a well-formed 500 with an exact length goes out.
    answered = subject.catches_errors and style.caught
    if answered:
        assert outcome.error is None, repr(outcome.error)
        assert outcome.status == "500 Internal Server Error", outcome.status
        length = outcome.header("Content-Length")
        assert outcome.body and length == str(len(outcome.body)), length
    elif style.error is not None:
        assert isinstance(outcome.error, style.error), outcome.error
    else:
        assert outcome.error is None, repr(outcome.error)

    # close() of the app's iterable ran exactly once.
    if style.closes is not None:
        assert probe.closes == style.closes, f"closed {probe.closes} times"

    if not answered:
        assert outcome.status == style.status
        if style.bodiless:
            # Never transformed: what the app sent, headers included.
            assert outcome.body == (style.body if style.method == "HEAD" else b"")
            if style.method == "HEAD":
                assert outcome.header("Content-Length") == str(len(BODY))
        elif subject.transforms:
            assert subject.decode(outcome.body) == style.body
        else:
            assert outcome.body == style.body

    # A Content-Length that went out is the length of the body that went out.
    length = outcome.header("Content-Length")
    if (
        length is not None
        and outcome.error is None
        and style.method != "HEAD"
        and style.abandon_after is None
    ):
        assert int(length) == len(outcome.body)

    if style.id == "empty-chunks" and outcome.error is None:
        # Every chunk the app yielded came out as (at least) one chunk.
        assert len(outcome.chunks) >= len(EMPTY_INTERLEAVED)
        if not subject.transforms:
            assert outcome.chunks == EMPTY_INTERLEAVED

    if kind == "bare" and style.id == "file-wrapper" and not subject.transforms:
        # Handed on as the server's own object, so sendfile keeps working.
        assert isinstance(outcome.result, FileWrapper), type(outcome.result)

    if subject.check is not None:
        subject.check(style, outcome)


def open_descriptors() -> int:
    """How many file descriptors this process has open (Linux)."""
    return len(os.listdir("/proc/self/fd"))


def answered(
    subject: Subject,
    app: WSGIApplication,
    environ: Mapping[str, Any],
    same_body: bool = True,
) -> Served:
    """Serve one request that *subject*'s middleware answers itself, the three ways
    of the matrix, and check the response: the validators report nothing, nothing
    raises, the three agree on status, headers and (when *same_body*) body, a
    Content-Length matches the body, HEAD, 1xx, 204 and 304 have none, and every
    file descriptor opened for it is closed. Returns the bare run's outcome."""
    outcomes = []
    # Counted without a garbage collection: a file closed only by the collector
    # is a leak. (Other tests' garbage collected meanwhile can only lower it.)
    before = open_descriptors()
    for kind in VALIDATORS:
        request = make_environ(environ.get("REQUEST_METHOD", "GET"))
        request.update(environ)
        with unraisable_errors() as unraisable, warnings.catch_warnings():
            # Two warnings of Werkzeug's lint that RFC 9110 contradicts: a HEAD
            # response has a Content-Length and no body (section 9.3.2), and a
            # Location may be a relative reference (section 10.2.2).
            warnings.filterwarnings("ignore", "Content-Length and the number of bytes")
            warnings.filterwarnings("ignore", "Absolute URLs required")
            outcome = run(sandwich(kind, subject, app), request)
            assert open_descriptors() <= before, "a file descriptor was left open"
            gc.collect(0)  # what the validators' __del__ say of unclosed iterables
        assert not unraisable, unraisable
        assert outcome.error is None, repr(outcome.error)
        code = int(outcome.status[:3])
        if request["REQUEST_METHOD"] == "HEAD" or code < 200 or code in (204, 304):
            assert outcome.body == b"", outcome.body[:80]
        elif (length := outcome.header("Content-Length")) is not None:
            assert int(length) == len(outcome.body), (length, len(outcome.body))
        outcomes.append(outcome)
    first = outcomes[0]
    for other in outcomes[1:]:
        assert other.status == first.status
        if same_body:
            assert other.headers == first.headers
            assert other.body == first.body
    return outcomes[-1]


def cells(subject: Subject) -> list[Any]:
    return [
        pytest.param(subject, style, kind, id=f"{subject.id}-{style.id}-{kind}")
        for style in STYLES
        for kind in VALIDATORS
    ]


def suite(*subjects: Subject) -> Callable[[Subject, Style, str], None]:
    """A parametrized test function running the whole matrix for *subjects*."""

    @pytest.mark.parametrize(
        ("subject", "style", "kind"),
        [cell for subject in subjects for cell in cells(subject)],
    )
    def test_conformance(subject: Subject, style: Style, kind: str) -> None:
        check_cell(subject, style, kind)

    return test_conformance
