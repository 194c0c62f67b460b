"""The matrix of the conformance kit: the subject under test, the app styles (rows)
with their own checks, and the validators (columns)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from wsgiref.types import WSGIApplication
from wsgiref.validate import validator

from .apps import (
    BODY,
    EMPTY_INTERLEAVED,
    AppError,
    AppFactory,
    closing_app,
    empty_chunks_app,
    exc_info_after_sent_app,
    exc_info_replace_app,
    file_wrapper_app,
    lazy_app,
    list_app,
    long_stream_app,
    no_body_app,
    raise_after_start_app,
    raise_after_write_app,
    raise_before_start_app,
    raise_in_close_app,
    raise_iterating_app,
    raise_lazily_before_start_app,
    raw_generator_app,
    write_and_iterable_app,
    write_only_app,
)
from .careless import (
    THREADS,
    MethodFileWrapper,
    empty_headers_app,
    exc_info_first_app,
    iter_raises_app,
    real_file_wrapper_app,
    returns_none_app,
    threads_app,
    write_in_generator_app,
    yields_str_app,
)
from .codings import decode_content
from .server import Served, expect

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
    :param generic: a middleware the kit knows nothing of (``python -m
        middleware check``, :func:`~middleware.testing.assert_conforms`): each
        response is decoded by its own Content-Encoding (gzip, deflate, br, zstd)
        and counts as transformed when it has one; an error raised before any byte
        went out may reach the server or be answered with a 500; and when it
        reaches the server before any byte, the status and body are not checked
        (PEP 3333 lets a middleware hold the status until the first byte).
    """

    id: str
    wrap: Callable[[WSGIApplication], WSGIApplication]
    decode: Callable[[bytes], bytes] = identity
    transforms: bool = False
    catches_errors: bool = False
    generic: bool = False
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
    #: The server's ``wsgi.file_wrapper`` class for this style (None: wsgiref's).
    file_wrapper: type | None = None
    #: Werkzeug lint warnings this style provokes on purpose (message prefixes).
    lint_allows: tuple[str, ...] = ()
    #: The validators this style runs under (a subset of :data:`VALIDATORS`).
    kinds: tuple[str, ...] = ("wsgiref", "werkzeug", "bare")
    #: Both validators call ``iter()`` on the app's result themselves; when that
    #: raises, the validator raises instead of returning, so nobody holds the
    #: iterable to close it: under the validators, expect no close.
    validators_lose_iterable: bool = False


# -- the styles' own checks -----------------------------------------------------------


def transformed(subject: Subject, served: Served) -> bool:
    """The subject changed this response's body (or may have)."""
    if subject.generic:
        return served.header("Content-Encoding") not in (None, "identity")
    return subject.transforms


def decoded(subject: Subject, served: Served) -> bytes:
    """The body the server saw, with the subject's change undone."""
    if subject.generic:
        return decode_content(served.header("Content-Encoding"), served.body)
    return subject.decode(served.body) if subject.transforms else served.body


def check_empty_chunks(subject: Subject, kind: str, served: Served) -> None:
    """Every chunk the app yielded came out as (at least) one chunk."""
    if served.error is None:
        count = f"{len(served.chunks)} chunks for {len(EMPTY_INTERLEAVED)}"
        expect(len(served.chunks) >= len(EMPTY_INTERLEAVED), count, "chunks")
        # Ours hand each chunk on as it is; a generic subject may split them.
        if not transformed(subject, served) and not subject.generic:
            expect(served.chunks == EMPTY_INTERLEAVED, served.chunks, "chunks")


def check_handed_on(subject: Subject, kind: str, served: Served) -> None:
    """Handed on as the server's own object, so sendfile keeps working."""
    if kind == "bare" and not transformed(subject, served):
        wrapper = served.environ["wsgi.file_wrapper"]
        got = f"a {type(served.result).__name__}, not the server's {wrapper.__name__}"
        expect(isinstance(served.result, wrapper), got, "file-wrapper")


def check_empty_list_kept(subject: Subject, kind: str, served: Served) -> None:
    """What a layer adds to an empty header list reaches the server."""
    expect(served.status == "204 No Content", served.status, "empty-headers")


STYLES: list[Style] = [
    Style("list", list_app, closes=None),
    Style("closing-iterable", closing_app),
    Style("lazy-start-response", lazy_app),
    Style("raw-generator", raw_generator_app),
    Style("write-only", write_only_app),
    Style("write-then-iterable", write_and_iterable_app),
    Style("file-wrapper", file_wrapper_app, check=check_handed_on),
    Style("real-file-wrapper", real_file_wrapper_app, check=check_handed_on),
    Style(
        "method-close-file-wrapper",
        file_wrapper_app,
        check=check_handed_on,
        file_wrapper=MethodFileWrapper,
    ),
    Style("write-in-generator", write_in_generator_app),
    Style(
        "exc-info-first-call", exc_info_first_app, status="500 Internal Server Error"
    ),
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
        "204-typed",
        # Flask sends ("", 204) with its default Content-Type: a compressor that
        # looks at the type alone gives this 204 a body.
        no_body_app(
            "204 No Content",
            [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "0")],
        ),
        status="204 No Content",
        body=b"",
        bodiless=True,
        # wsgiref.validate refuses a Content-Type on a 204 (Django and Flask send
        # one): this style runs under Werkzeug's lint and bare.
        kinds=("werkzeug", "bare"),
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
