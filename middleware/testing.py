"""The conformance kit: every middleware's tests run it, and so can yours.

A matrix of app styles (DESIGN.md, "Testing: the conformance matrix") against one set
of checks, each cell run three ways: inside ``wsgiref.validate.validator`` on both
sides of the middleware, inside Werkzeug's ``LintMiddleware`` on both sides (the two
do not stack with each other), and bare, where identity checks are possible (a
``wsgi.file_wrapper`` result handed on as the same object).

A middleware's test module adopts the kit with one line (pytest)::

    from middleware import testing

    test_conformance = testing.suite(testing.Subject("gzip", Gzip(), decode=gunzip))

or, without pytest, runs every cell itself with :func:`check_all`. Install the
``testing`` extra (pytest and Werkzeug, whose lint is the second validator).

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

import atexit
import contextlib
import gc
import io
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment
from wsgiref.util import FileWrapper, setup_testing_defaults
from wsgiref.validate import validator

__all__ = [
    "BODY",
    "STYLES",
    "VALIDATORS",
    "AppError",
    "Served",
    "Style",
    "Subject",
    "answered",
    "check_all",
    "check_cell",
    "make_environ",
    "run",
    "sandwich",
    "suite",
]

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


#: A style's own check of one cell: ``(subject, kind, served)``.
StyleCheck = Callable[["Subject", str, "Served"], None]


@dataclass(frozen=True)
class Style:
    """One row of the matrix: an app, the request, and what a server must see."""

    id: str
    make_app: AppFactory
    status: str = "200 OK"
    body: bytes = BODY
    #: The exception (or one of the exceptions) that must reach the server.
    error: type[BaseException] | tuple[type[BaseException], ...] | None = None
    method: str = "GET"
    closes: int | None = 1  # None: the iterable has no close() to count
    abandon_after: int | None = None  # the server stops after this many chunks
    bodiless: bool = False  # HEAD, 204, 304: never transformed
    # The error comes before any byte went out: an error catcher answers 500.
    caught: bool = False
    #: What this style checks beyond the common checks.
    check: StyleCheck | None = None
    #: Requests served at once, from this many threads, through one wrapped app.
    threads: int = 1
    #: Werkzeug lint warnings this style provokes on purpose (message prefixes).
    lint_allows: tuple[str, ...] = ()
    #: Both validators call ``iter()`` on the app's result themselves; when that
    #: raises, the validator raises instead of returning, so nobody holds the
    #: iterable to close it: under the validators, expect no close.
    validators_lose_iterable: bool = False


# Both validators' iterator wrappers (Werkzeug's GuardedIterator, wsgiref's
# IteratorWrapper) call iter() on the app's result before they set their ``closed``
# attribute, so when iter() raises, their __del__ raises AttributeError later, at
# whatever garbage collection frees them: the validators' bug, never the subject's.
_VALIDATOR_DEL_BUGS = (
    "AttributeError: 'GuardedIterator' object has no attribute 'closed'",
    "AttributeError: 'IteratorWrapper' object has no attribute 'closed'",
)


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


def no_body_app(
    status: str, headers: list[tuple[str, str]], fail_close: bool = False
) -> AppFactory:
    def make(probe: Probe) -> WSGIApplication:
        def app(
            environ: WSGIEnvironment, start_response: StartResponse
        ) -> CountingIterable:
            start_response(status, list(headers))
            return CountingIterable(probe, [], fail_close=fail_close)

        return app

    return make


def iter_raises_app(probe: Probe) -> WSGIApplication:
    """Returns an iterable whose ``__iter__`` raises: an error before any byte."""

    class Broken(CountingIterable):
        def __iter__(self) -> Iterator[bytes]:
            raise AppError("__iter__ raised")

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Broken:
        start_response("200 OK", text_headers(len(BODY)))
        return Broken(probe, [])

    return app


def write_in_generator_app(probe: Probe) -> WSGIApplication:
    """Calls ``write()`` from inside its lazy generator, between yields."""

    def app(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> CountingIterable:
        def body() -> Iterator[bytes]:
            write = start_response("200 OK", text_headers(len(BODY)))
            write(PARTS[0])
            yield PARTS[1]
            write(PARTS[2])
            yield b""

        return CountingIterable(probe, body())

    return app


def exc_info_first_app(probe: Probe) -> WSGIApplication:
    """An error handler's first and only start_response carries exc_info."""

    def app(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> CountingIterable:
        try:
            raise AppError("handled by the app itself")
        except AppError:
            start_response(
                "500 Internal Server Error", text_headers(len(BODY)), sys.exc_info()
            )
        return CountingIterable(probe, [BODY])

    return app


def empty_headers_app(probe: Probe) -> WSGIApplication:
    """``start_response(status, [])``: an empty list is a list like any other."""

    def app(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> CountingIterable:
        start_response("204 No Content", [])
        return CountingIterable(probe, [])

    return app


def returns_none_app(probe: Probe) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", text_headers())
        return None  # a careless app: not an iterable

    return app


def yields_str_app(probe: Probe) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", text_headers())
        return CountingIterable(probe, ["hello, wsgi world"])  # type: ignore[list-item]

    return app


_REAL_FILE: list[str] = []


def _real_path() -> str:
    """A real file holding :data:`BODY`, made once per process, removed at exit."""
    if not _REAL_FILE:
        descriptor, path = tempfile.mkstemp(prefix="middleware-kit-")
        with os.fdopen(descriptor, "wb") as file:
            file.write(BODY)
        atexit.register(os.unlink, path)
        _REAL_FILE.append(path)
    return _REAL_FILE[0]


class CountingRealFile(io.FileIO):
    """A real file (with a ``fileno()``, so sendfile can take it) that counts its
    closes."""

    def __init__(self, probe: Probe) -> None:
        super().__init__(_real_path(), "rb")
        self.probe = probe

    def close(self) -> None:
        if not self.closed:
            self.probe.closes += 1
        super().close()


def real_file_wrapper_app(probe: Probe) -> WSGIApplication:
    """A real file through ``wsgi.file_wrapper``, no Content-Length: its size is
    only known from the file."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", text_headers())
        wrapper: Callable[..., Iterable[bytes]] = environ["wsgi.file_wrapper"]
        return wrapper(CountingRealFile(probe), 4)

    return app


def threads_app(probe: Probe) -> WSGIApplication:
    """A lazy app whose requests wait for each other mid-body, so the threads of a
    cell are inside the stack at the same time."""
    barrier = threading.Barrier(THREADS)
    lock = threading.Lock()

    def app(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> CountingIterable:
        def body() -> Iterator[bytes]:
            start_response("200 OK", text_headers())
            yield PARTS[0]
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=5)
            yield from PARTS[1:]

        with lock:
            return CountingIterable(probe, body())

    return app


THREADS = 8


# -- the styles' own checks -----------------------------------------------------------


def check_empty_chunks(subject: Subject, kind: str, served: Served) -> None:
    """Every chunk the app yielded came out as (at least) one chunk."""
    if served.error is None:
        assert len(served.chunks) >= len(EMPTY_INTERLEAVED)
        if not subject.transforms:
            assert served.chunks == EMPTY_INTERLEAVED


def check_handed_on(subject: Subject, kind: str, served: Served) -> None:
    """Handed on as the server's own object, so sendfile keeps working."""
    if kind == "bare" and not subject.transforms:
        assert isinstance(served.result, FileWrapper), type(served.result)


def check_empty_list_kept(subject: Subject, kind: str, served: Served) -> None:
    """What a layer adds to an empty header list reaches the server."""
    assert served.status == "204 No Content"


STYLES: list[Style] = [
    Style("list", list_app, closes=None),
    Style("closing-iterable", closing_app),
    Style("lazy-start-response", lazy_app),
    Style("raw-generator", raw_generator_app),
    Style("write-only", write_only_app),
    Style("write-then-iterable", write_and_iterable_app),
    Style("file-wrapper", file_wrapper_app, check=check_handed_on),
    Style("real-file-wrapper", real_file_wrapper_app, check=check_handed_on),
    Style("write-in-generator", write_in_generator_app),
    Style("exc-info-first-call", exc_info_first_app, status="500 Internal Server Error"),
    Style(
        "empty-header-list",
        empty_headers_app,
        status="204 No Content",
        body=b"",
        bodiless=True,
        check=check_empty_list_kept,
        # Werkzeug's lint wants an explicit zero length on a 204.
        lint_allows=("204 responses must have an empty content length",),
    ),
    Style(
        "iter-raises",
        iter_raises_app,
        body=b"",
        error=AppError,
        caught=True,
        validators_lose_iterable=True,
    ),
    Style(
        "returns-none",
        returns_none_app,
        body=b"",
        # Ours names PEP 3333; the validators assert; the server's iter() fails.
        error=(TypeError, AssertionError),
        closes=None,
        caught=True,
    ),
    Style(
        "yields-str",
        yields_str_app,
        body=b"",
        # Ours names PEP 3333; wsgiref asserts; Werkzeug's lint warns (an error
        # under pytest's filterwarnings = error); the server refuses it.
        error=(TypeError, AssertionError, Warning),
        caught=True,
    ),
    Style("threads", threads_app, threads=THREADS),
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
    Style("empty-chunks", empty_chunks_app, check=check_empty_chunks),
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
    # The body went out (empty), then close() raised: the client got the status.
    Style(
        "204-close-raises",
        no_body_app("204 No Content", [("Content-Length", "0")], fail_close=True),
        status="204 No Content",
        body=b"",
        bodiless=True,
        error=AppError,
    ),
    Style(
        "304-close-raises",
        no_body_app("304 Not Modified", [("ETag", '"v1"')], fail_close=True),
        status="304 Not Modified",
        body=b"",
        bodiless=True,
        error=AppError,
    ),
    Style(
        "head-close-raises",
        raise_in_close_app,
        method="HEAD",
        bodiless=True,
        error=AppError,
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
    #: The server iterated the body to its end.
    exhausted: bool = False

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def headers_sent(self) -> bool:
        """PEP 3333: headers go out with the first non-empty chunk, or when the
        body is exhausted (an empty 204)."""
        return self.exhausted or any(self.chunks)

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
    keep_result: bool = True,
) -> Served:
    """Serve one request the way a strict PEP 3333 server does.

    Headers count as sent at the first non-empty chunk or write; start_response
    again without exc_info is refused, and with exc_info after headers went out it
    re-raises. ``close()`` is called once, on every path. *abandon_after* stops after
    that many chunks, as a server does when the client goes away. With
    *keep_result* False the served record does not hold the app's result (a real
    server lets go of it too), so the request's objects can be freed.
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
            raise TypeError(f"write() takes bytes, got {type(data).__name__}")
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
        if keep_result:
            outcome.result = result
        iterator = iter(result) if abandon_after != 0 else iter(())
        while abandon_after is None or len(outcome.chunks) < abandon_after:
            try:
                chunk = next(iterator)
            except StopIteration:
                outcome.exhausted = started
                break
            if type(chunk) is not bytes:  # what a server does: refuse it
                raise TypeError(f"the iterable yielded {type(chunk).__name__}")
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
        from werkzeug.middleware.lint import LintMiddleware

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
    with unraisable_errors() as unraisable, warnings.catch_warnings():
        for message in style.lint_allows:
            warnings.filterwarnings("ignore", message)
        try:
            if style.threads > 1:
                _check_threads(subject, style, kind)
            else:
                _check_cell(subject, style, kind)
                if kind == "bare" and style.error is None:
                    _check_no_cycle(subject, style)
        finally:
            gc.collect()
    unexpected = [text for text in unraisable if not text.startswith(_VALIDATOR_DEL_BUGS)]
    assert not unexpected, unexpected


def check_all(subject: Subject) -> None:
    """Every cell of the matrix for *subject*, without pytest: raises
    ``AssertionError`` (naming the cell) at the first that fails."""
    for style in STYLES:
        for kind in VALIDATORS:
            try:
                check_cell(subject, style, kind)
            except AssertionError as exc:
                raise AssertionError(f"{subject.id}-{style.id}-{kind}: {exc}") from exc


def _serve(
    subject: Subject,
    style: Style,
    kind: str,
    app: WSGIApplication,
    keep_result: bool = True,
) -> Served:
    environ = make_environ(style.method)
    environ.update(subject.environ)
    return run(
        sandwich(kind, subject, app),
        environ,
        abandon_after=style.abandon_after,
        keep_result=keep_result,
    )


def _check_cell(subject: Subject, style: Style, kind: str) -> None:
    probe = Probe()
    served = _serve(subject, style, kind, style.make_app(probe))
    _check_served(subject, style, kind, served)
    # close() of the app's iterable ran exactly once.
    if style.closes is not None:
        expected = style.closes
        if style.validators_lose_iterable and kind != "bare":
            expected = 0
        assert probe.closes == expected, f"closed {probe.closes} times"


def _check_threads(subject: Subject, style: Style, kind: str) -> None:
    """*style.threads* requests at once through one wrapped app: each sees only its
    own response, and every iterable is closed once."""
    probe = Probe()
    wrapped = sandwich(kind, subject, style.make_app(probe))
    served: list[Served] = []
    errors: list[BaseException] = []

    def one() -> None:
        environ = make_environ(style.method)
        environ.update(subject.environ)
        try:
            served.append(run(wrapped, environ))
        except BaseException as exc:  # an assertion of the stand-in server
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(style.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert len(served) == style.threads, f"{len(served)} of {style.threads} finished"
    ids = {id(one.environ) for one in served}
    assert len(ids) == style.threads
    for one in served:
        _check_served(subject, style, kind, one)
    if style.closes is not None:
        expected = style.closes * style.threads
        assert probe.closes == expected, f"closed {probe.closes} of {expected}"


def _check_no_cycle(subject: Subject, style: Style) -> None:
    """With the cyclic collector off, a finished response leaves nothing for it:
    every object of the request is freed by reference counting alone."""
    gc.collect()
    gc.disable()
    try:
        probe = Probe()
        app = style.make_app(probe)
        served = _serve(subject, style, "bare", app, keep_result=False)
        del served, app, probe
        found = gc.collect()
    finally:
        gc.enable()
    assert found == 0, f"{found} objects of the request were left in reference cycles"


def _check_served(subject: Subject, style: Style, kind: str, outcome: Served) -> None:
    """The checks every cell makes of what the server saw."""
    # The exception reaches the server, unchanged, unless catching is the job and
    # nothing was sent yet: then a well-formed 500 with an exact length goes out.
    answered = subject.catches_errors and style.caught
    if answered:
        assert outcome.error is None, repr(outcome.error)
        assert outcome.status == "500 Internal Server Error", outcome.status
        length = outcome.header("Content-Length")
        assert outcome.body and length == str(len(outcome.body)), length
    elif style.error is not None:
        assert isinstance(outcome.error, style.error), repr(outcome.error)
    else:
        assert outcome.error is None, repr(outcome.error)

    if not answered:
        assert outcome.status == style.status, outcome.status
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

    if style.check is not None:
        style.check(subject, kind, outcome)
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
    """The matrix of *subject* as pytest parameters, one per (style, validator)."""
    import pytest

    return [
        pytest.param(subject, style, kind, id=f"{subject.id}-{style.id}-{kind}")
        for style in STYLES
        for kind in VALIDATORS
    ]


def suite(*subjects: Subject) -> Callable[[Subject, Style, str], None]:
    """A parametrized pytest test function running the whole matrix for
    *subjects*; assign it to a ``test_`` name in a test module."""
    import pytest

    @pytest.mark.parametrize(
        ("subject", "style", "kind"),
        [cell for subject in subjects for cell in cells(subject)],
    )
    def test_conformance(subject: Subject, style: Style, kind: str) -> None:
        check_cell(subject, style, kind)

    return test_conformance
