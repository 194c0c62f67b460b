"""What ``python -m middleware check`` finds in the middleware people use
(docs/testing.rst has the table), and a minimal reproduction of each defect it
reports, written without the kit: a wrong report would be a failing test here, not
a wrong line in the docs.

The expected cells are what check printed for these versions (Paste 3.10, Beaker
1.14, WhiteNoise 6, Werkzeug 3); another version that fixes or adds a defect fails
the first test, naming the cells, so the docs' table is looked at again.
"""

from __future__ import annotations

import base64
import gc
import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import FileWrapper, setup_testing_defaults
from wsgiref.validate import validator

# The anchors come with the test extra: a missing one is an import error here,
# never a silently skipped table.
import beaker  # noqa: F401
import paste  # noqa: F401
import pytest
import whitenoise  # noqa: F401

from middleware.testing.command import load_target
from middleware.testing.report import Cell, run_matrix, subject_of

ALL = ("wsgiref", "werkzeug", "bare")
ALICE = "Basic " + base64.b64encode(b"alice:wonderland").decode()

# The lazy start_response cause (paste.gzipper): every style whose app calls
# start_response from inside its generator.
LAZY = [
    "lazy-start-response", "raw-generator", "write-in-generator", "threads",
    "exc-info-before-sent", "exc-info-after-sent", "empty-chunks",
    "abandoned-before-iterating",
]  # fmt: skip
CLOSE_RAISES = ["raise-in-close", "204-close-raises", "304-close-raises"]
# The styles whose request is looked at for reference cycles (bare, no error).
CYCLES = [
    "list", "closing-iterable", "lazy-start-response", "raw-generator",
    "write-only", "write-then-iterable", "file-wrapper", "real-file-wrapper",
    "method-close-file-wrapper", "write-in-generator", "exc-info-first-call",
    "empty-header-list", "exc-info-before-sent", "empty-chunks",
    "abandoned-before-iterating", "abandoned-midway", "head", "204",
    "204-typed", "304",
]  # fmt: skip

EXPECTED: dict[str, dict[tuple[str, str], tuple[str, ...]]] = {
    "paste.gzipper:middleware": {
        **{(style, "exception"): ALL for style in LAZY},
        ("write-only", "body"): ALL,
        ("write-then-iterable", "body"): ALL,
        ("returns-none", "exception"): ("bare",),
        ("abandoned-midway", "exception"): ALL,
        ("204-typed", "no-body"): ("werkzeug", "bare"),
    },
    "paste.exceptions.errormiddleware:ErrorMiddleware": {
        ("write-only", "status"): ALL,
        ("write-then-iterable", "status"): ALL,
        ("write-in-generator", "body"): ("wsgiref", "bare"),
        ("write-in-generator", "validators"): ("werkzeug",),
        ("file-wrapper", "file-wrapper"): ("bare",),
        ("real-file-wrapper", "file-wrapper"): ("bare",),
        ("method-close-file-wrapper", "file-wrapper"): ("bare",),
        ("iter-raises", "close"): ("bare",),
        ("yields-str", "exception"): ("wsgiref", "werkzeug"),
        ("raise-after-write", "exception"): ALL,
        ("raise-after-first-chunk", "exception"): ALL,
        ("raise-after-empty-chunk", "exception"): ALL,
        ("exc-info-after-sent", "exception"): ALL,
        **{(style, "validators"): ("wsgiref", "werkzeug") for style in CLOSE_RAISES},
        **{(style, "exception"): ("bare",) for style in CLOSE_RAISES},
        ("head-close-raises", "validators"): ("wsgiref", "werkzeug"),
        ("head-close-raises", "exception"): ("bare",),
    },
    "paste.translogger:TransLogger": {
        ("exc-info-before-sent", "exception"): ALL,
        ("exc-info-after-sent", "exception"): ALL,
    },
    "tests.broken_middleware:paste_auth_basic": {},
    "beaker.middleware:SessionMiddleware": {
        (style, "cycles"): ("bare",) for style in CYCLES
    },
    "whitenoise:WhiteNoise": {},
    "werkzeug.middleware.shared_data:SharedDataMiddleware": {
        (style, "cycles"): ("bare",) for style in CYCLES
    },
    "werkzeug.middleware.proxy_fix:ProxyFix": {},
    "werkzeug.middleware.dispatcher:DispatcherMiddleware": {},
}

OPTIONS: dict[str, dict[str, Any]] = {
    "werkzeug.middleware.shared_data:SharedDataMiddleware": {
        "exports": {"/static": str(Path(__file__).parent / "fixtures" / "static")}
    },
}
ENVIRON = {"tests.broken_middleware:paste_auth_basic": {"HTTP_AUTHORIZATION": ALICE}}


def checked(target: str) -> list[Cell]:
    middleware = load_target(target, OPTIONS.get(target, {}))
    return run_matrix(subject_of(target, middleware, ENVIRON.get(target)))


@pytest.mark.parametrize("target", list(EXPECTED))
def test_what_check_reports_of_each_anchor(target: str) -> None:
    found: dict[tuple[str, str], list[str]] = {}
    for cell in checked(target):
        if not cell.passed:
            found.setdefault((cell.style, str(cell.check)), []).append(cell.validator)
    assert {k: tuple(v) for k, v in found.items()} == EXPECTED[target]


def test_the_reports_name_the_causes_reproduced_below() -> None:
    # The cells grouped under one cause in EXPECTED say that cause.
    gzipper = {c.style: c for c in checked("paste.gzipper:middleware") if not c.passed}
    for style in LAZY:
        assert "I/O operation on closed file" in str(gzipper[style].seen), style
    assert "incorrect header check" in str(gzipper["write-only"].seen)
    assert "the middleware buffers the body" in str(gzipper["abandoned-midway"].seen)
    logger = [c for c in checked("paste.translogger:TransLogger") if not c.passed]
    assert all("called twice without exc_info" in str(c.seen) for c in logger)


# -- minimal reproductions, without the kit -------------------------------------------


class Served:
    """A strict server's record of one request."""

    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[Any] = []
        self.error: BaseException | None = None
        self.exc_infos: list[Any] = []

    @property
    def body(self) -> bytes:
        return b"".join(c for c in self.chunks if isinstance(c, bytes))


def serve(app: Callable[..., Any], method: str = "GET", **environ: Any) -> Served:
    served = Served()
    request: dict[str, Any] = {"REQUEST_METHOD": method, **environ}
    setup_testing_defaults(request)
    request["HTTP_ACCEPT_ENCODING"] = "gzip"

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        served.exc_infos.append(exc_info)
        served.status, served.headers = status, headers
        return served.chunks.append

    result: Any = None
    try:
        result = app(request, start_response)
        for chunk in result:
            served.chunks.append(chunk)
    except Exception as exc:
        served.error = exc
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            try:
                close()
            except Exception as exc:
                served.error = served.error or exc
    return served


TEXT = [("Content-Type", "text/plain")]


def lazy_app(environ: Any, start_response: Any) -> Iterator[bytes]:
    start_response("200 OK", TEXT)  # called when the server first iterates
    yield b"hello"


def write_app(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", TEXT)(b"hello")
    return []


def gzipper(app: Any) -> Any:
    from paste.gzipper import middleware

    return middleware(app)


def error_middleware(app: Any) -> Any:
    from paste.exceptions.errormiddleware import ErrorMiddleware

    return ErrorMiddleware(app)


def test_paste_gzipper_breaks_on_a_lazy_start_response() -> None:
    served = serve(gzipper(lazy_app))
    assert isinstance(served.error, ValueError)
    assert "closed file" in str(served.error)


def test_paste_gzipper_labels_write_output_gzip_without_compressing_it() -> None:
    served = serve(gzipper(write_app))
    assert ("content-encoding", "gzip") in served.headers
    with pytest.raises((OSError, zlib.error)):  # gzip.BadGzipFile is an OSError
        gzip.decompress(served.body)


def test_paste_gzipper_hides_an_app_that_returns_none() -> None:
    def broken(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", TEXT)
        return None

    served = serve(gzipper(broken))
    # No error reaches the server, and no status either: an empty body.
    assert served.error is None and served.status == "" and served.body == b""


def test_paste_gzipper_reads_a_whole_stream_before_the_first_byte() -> None:
    read = 0

    def endless(environ: Any, start_response: Any) -> Iterator[bytes]:
        nonlocal read
        for _ in range(5000):
            read += 1
            yield b"tick "

    def eager(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", TEXT)
        return endless(environ, start_response)

    request: dict[str, Any] = {"HTTP_ACCEPT_ENCODING": "gzip"}
    setup_testing_defaults(request)
    gzipper(eager)(request, lambda *args: None)  # the call alone
    assert read == 5000  # PEP 3333: a middleware must not block iteration


def test_paste_gzipper_gives_a_typed_204_a_body() -> None:
    def no_content(environ: Any, start_response: Any) -> list[bytes]:
        start_response("204 No Content", [("Content-Type", "text/html")])
        return []

    served = serve(gzipper(no_content))
    assert served.status == "204 No Content" and len(served.body) == 20


def test_paste_error_middleware_breaks_write() -> None:
    served = serve(error_middleware(write_app))
    assert served.status.startswith("500")


def test_paste_error_middleware_hides_the_file_wrapper() -> None:
    def sendfile(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", TEXT)
        return environ["wsgi.file_wrapper"](io.BytesIO(b"hello"))

    request: dict[str, Any] = {"wsgi.file_wrapper": FileWrapper}
    setup_testing_defaults(request)
    result = error_middleware(sendfile)(request, lambda *args: None)
    assert not isinstance(result, FileWrapper)  # the server cannot sendfile it
    result.close()


def test_paste_error_middleware_does_not_close_when_iter_raises() -> None:
    closed = []

    class Broken:
        def __iter__(self) -> Iterator[bytes]:
            raise RuntimeError("__iter__ raised")

        def close(self) -> None:
            closed.append(True)

    def app(environ: Any, start_response: Any) -> Broken:
        start_response("200 OK", TEXT)
        return Broken()

    serve(error_middleware(app))
    assert closed == []


def test_paste_error_middleware_swallows_a_validators_complaint() -> None:
    def yields_str(environ: Any, start_response: Any) -> list[Any]:
        start_response("200 OK", TEXT)
        return ["not bytes"]

    request: dict[str, Any] = {"QUERY_STRING": ""}  # else wsgiref.validate warns
    setup_testing_defaults(request)
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        statuses.append(status)
        return lambda data: None

    result = error_middleware(validator(yields_str))(request, start_response)
    chunks = list(result)  # wsgiref.validate's AssertionError is not raised here
    getattr(result, "close", lambda: None)()
    # ...nor answered with a 500: a 200 whose body is Paste's error page.
    assert statuses == ["200 OK"] and b"Server Error" in b"".join(chunks)


def test_paste_error_middleware_hides_an_error_after_the_first_byte() -> None:
    def fails_midway(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", TEXT)
        yield b"partial"
        raise RuntimeError("midway")

    served = serve(error_middleware(fails_midway))
    assert served.error is None  # the server never learns the body is cut
    assert served.body.startswith(b"partial") and b"Server Error" in served.body


def test_paste_error_middleware_yields_str_when_close_raises() -> None:
    class FailsToClose:
        def __iter__(self) -> Iterator[bytes]:
            yield b"hello"

        def close(self) -> None:
            raise RuntimeError("close failed")

    def app(environ: Any, start_response: Any) -> FailsToClose:
        start_response("200 OK", TEXT)
        return FailsToClose()

    served = serve(error_middleware(app))
    assert any(isinstance(chunk, str) for chunk in served.chunks)


def test_paste_translogger_drops_exc_info() -> None:
    from paste.translogger import TransLogger

    def replaces(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", TEXT)
        try:
            raise RuntimeError("late")
        except RuntimeError:
            import sys

            start_response("500 Internal Server Error", TEXT, sys.exc_info())
        return [b"error"]

    served = serve(TransLogger(replaces, setup_console_handler=False))
    assert served.exc_infos == [None, None]  # the server never saw the exc_info


def test_beaker_leaves_each_request_in_reference_cycles() -> None:
    from beaker.middleware import SessionMiddleware

    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", TEXT)
        return [b"hello"]

    wrapped = SessionMiddleware(app)
    serve(wrapped)  # the first request sets Beaker up
    gc.collect()
    gc.disable()
    try:
        serve(wrapped)
        assert gc.collect() > 0
    finally:
        gc.enable()
