"""The eight defects of the old core (``middleware.core``: ``Observer`` and
``Transformer``), one named test each. Every test fails on the old core and passes
on the new one (``middleware.proxy``).

The tests of defects 1, 2, 4 (all but its ``file-wrapper-close-proxy`` case), 6, 7
and 8 go through the real middleware only, so they do not depend on the core's API;
those of defects 3, 4 (``file-wrapper-close-proxy``) and 5 use a :class:`Responder`.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from middleware import (
    AccessLog,
    ErrorCatcher,
    Gzip,
    Middleware,
    Outcome,
    Responder,
    Session,
    compose,
    get_session,
)
from middleware.testing import Served, make_environ, run
from middleware.wsgi import Headers, StartResponse, WSGIApplication, WSGIEnvironment

ACCESS_LOGGER = "tests.defects.access"
ERRORS_LOGGER = "middleware.errors"
STATUS_FIELD = "http.response.status_code"
SECRET = "s" * 32
TEXT = [("Content-Type", "text/plain; charset=utf-8")]

Wrap = Callable[[WSGIApplication], WSGIApplication]


class AppError(Exception):
    """What the apps of these tests raise."""


# -- small building blocks ------------------------------------------------------------


class Records(logging.Handler):
    """A handler that keeps every record it is given."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def captured(name: str) -> Iterator[list[logging.LogRecord]]:
    """The records logged to the logger *name* while the block runs."""
    logger = logging.getLogger(name)
    handler = Records()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def logged_statuses(records: list[logging.LogRecord]) -> list[Any]:
    """The status codes of the access log lines among *records*."""
    return [record.__dict__[STATUS_FIELD] for record in records]


class Closing:
    """An app iterable that counts its ``close()`` calls (and may raise there, or
    in ``__iter__``)."""

    def __init__(
        self,
        items: Iterable[Any],
        *,
        fail_iter: bool = False,
        fail_close: bool = False,
    ) -> None:
        self.items = items
        self.fail_iter = fail_iter
        self.fail_close = fail_close
        self.closes = 0

    def __iter__(self) -> Iterator[Any]:
        if self.fail_iter:
            raise AppError("__iter__ raised")
        return iter(self.items)

    def close(self) -> None:
        self.closes += 1
        if self.fail_close:
            raise AppError("close raised")


def returning(
    status: str, headers: Headers, result: object
) -> Callable[[WSGIEnvironment, StartResponse], Any]:
    """An app that starts the response with *status* and *headers* and returns
    *result*, whatever it is."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response(status, list(headers))
        return result

    return app


# -- defect 1: an app iterable whose __iter__ raises ----------------------------------


@pytest.mark.parametrize(
    ("wrap", "answered", "logged"),
    [
        pytest.param(ErrorCatcher(), True, None, id="error-catcher"),
        pytest.param(AccessLog(logger=ACCESS_LOGGER), False, 500, id="access-log"),
        pytest.param(
            lambda app: compose(app, AccessLog(logger=ACCESS_LOGGER), ErrorCatcher()),
            True,
            500,
            id="access-log+error-catcher",
        ),
    ],
)
def test_defect_1_iter_raising_is_reported_answered_and_logged_as_500(
    wrap: Wrap, answered: bool, logged: int | None
) -> None:
    """Old: ``iter()`` of the app's result ran outside every hook, so ErrorCatcher
    neither reported nor answered it and AccessLog logged 200 while the server sent
    its own 500."""
    body = Closing([b"never"], fail_iter=True)
    app = returning("200 OK", TEXT, body)
    with captured(ACCESS_LOGGER) as access, captured(ERRORS_LOGGER) as errors:
        served = run(wrap(app))
    assert body.closes == 1
    if answered:
        assert served.error is None, repr(served.error)
        assert served.status == "500 Internal Server Error"
        assert served.body and served.header("Content-Length") == str(len(served.body))
        assert len(errors) == 1
        assert errors[0].exc_info is not None
        assert isinstance(errors[0].exc_info[1], AppError)
    else:
        assert isinstance(served.error, AppError)
    if logged is not None:
        assert logged_statuses(access) == [logged]


# -- defect 2: a 204 or 304 whose close() raises -------------------------------------


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        pytest.param("204 No Content", [("Content-Length", "0")], id="204"),
        pytest.param("304 Not Modified", [("ETag", '"v1"')], id="304"),
    ],
)
def test_defect_2_empty_response_whose_close_raises_is_logged_as_sent(
    status: str, headers: Headers
) -> None:
    """Old: the body was exhausted (so the headers went out) but the proxy did not
    count them as sent; close() raising then made AccessLog log 500."""
    body = Closing([], fail_close=True)
    app = returning(status, headers, body)
    with captured(ACCESS_LOGGER) as access:
        served = run(AccessLog(logger=ACCESS_LOGGER)(app))
    assert isinstance(served.error, AppError)
    assert served.status == status
    assert served.headers_sent
    assert body.closes == 1
    assert logged_statuses(access) == [int(status[:3])]


# -- defect 3: a responder's __init__, close and write -------------------------------


class _Initialising(Responder["Initialising"]):
    """Sets up per-request state in ``__init__``; one proxy kind per subclass."""

    def __init__(self, middleware: Initialising, environ: WSGIEnvironment) -> None:
        super().__init__(middleware, environ)
        middleware.inits.append((middleware, environ))
        self.seen: list[str] = []


class _InitialisingStart(_Initialising):
    def on_start(self, status: str, headers: Headers) -> None:
        self.seen.append(status)


class _InitialisingClose(_Initialising):
    def on_close(self, outcome: Outcome) -> None:
        self.seen.append(str(outcome.status))


class _InitialisingBody(_Initialising):
    def on_error(self, exc: BaseException) -> None:
        self.seen.append(repr(exc))


class Initialising(Middleware):
    """Records each ``__init__`` of its responder."""

    def __init__(self) -> None:
        self.inits: list[tuple[Initialising, WSGIEnvironment]] = []


def initialising(kind: type[_Initialising]) -> Initialising:
    class One(Initialising):
        responder = kind

    return One()


class _NamedLikeTheProtocol(Responder["NamedLikeTheProtocol"]):
    """Has methods called ``close`` and ``write``: just methods, never the proxy's."""

    def close(self) -> None:
        self.middleware.calls.append("close")

    def write(self, data: bytes) -> None:
        self.middleware.calls.append("write")

    def on_close(self, outcome: Outcome) -> None:
        self.middleware.outcomes.append(outcome)


class _NamedLikeTheProtocolCounting(_NamedLikeTheProtocol):
    counts_body = True  # the body proxy: every chunk and write() through it


class NamedLikeTheProtocol(Middleware):
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.outcomes: list[Outcome] = []


def named_like_the_protocol(kind: type[_NamedLikeTheProtocol]) -> NamedLikeTheProtocol:
    class One(NamedLikeTheProtocol):
        responder = kind

    return One()


@pytest.mark.parametrize(
    "responder",
    [
        pytest.param(_InitialisingStart, id="init-start"),
        pytest.param(_InitialisingClose, id="init-close"),
        pytest.param(_InitialisingBody, id="init-body"),
        pytest.param(_NamedLikeTheProtocol, id="close-write-close"),
        pytest.param(_NamedLikeTheProtocolCounting, id="close-write-body"),
    ],
)
def test_defect_3_responder_init_runs_and_close_write_change_nothing(
    responder: type[Responder[Any]],
) -> None:
    """Old: an Observer subclass's ``__init__`` never ran (observers were made
    without calling it), and one defining ``close()`` or ``write()`` replaced the
    proxy's own: the app's iterable was closed 0 times, written bytes dropped."""
    bodies: list[Closing] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Closing:
        write = start_response("200 OK", list(TEXT))
        write(b"written, ")
        bodies.append(Closing([b"iterated"]))
        return bodies[-1]

    if issubclass(responder, _Initialising):
        middleware = initialising(responder)
        wrapped = middleware(app)
        environs = [make_environ(), make_environ()]
        served = [run(wrapped, environ) for environ in environs]
        # Once per request, with the middleware and that request's environ.
        assert len(middleware.inits) == len(environs)
        for (given, environ), expected in zip(middleware.inits, environs, strict=True):
            assert given is middleware
            assert environ is expected
    else:
        assert issubclass(responder, _NamedLikeTheProtocol)
        named = named_like_the_protocol(responder)
        served = [run(named(app))]
        assert named.calls == []  # the protocol never called the responder's own
        assert [outcome.status for outcome in named.outcomes] == ["200 OK"]
    for one in served:
        assert one.error is None, repr(one.error)
        assert one.body == b"written, iterated"
    assert [body.closes for body in bodies] == [1] * len(served)


# -- defect 4: reference cycles -------------------------------------------------------


class _OnClose(Responder["OnClose"]):
    """Sees only the end of the response: the close proxy, which hands a
    ``wsgi.file_wrapper`` back to the server with its close chained."""

    def on_close(self, outcome: Outcome) -> None:
        self.middleware.handed_on.append(outcome.file_handed_on)


class OnClose(Middleware):
    responder = _OnClose

    def __init__(self) -> None:
        self.handed_on: list[bool] = []


class MethodCloseFileWrapper:
    """A ``wsgi.file_wrapper`` whose ``close`` is a method of the wrapper, as
    waitress's ``ReadOnlyFileBasedBuffer`` (wsgiref's copies the file's ``close``
    onto the wrapper instead)."""

    def __init__(self, file: io.BytesIO, block_size: int = 8192) -> None:
        self.file = file
        self.block_size = block_size

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.file.read(self.block_size):
            yield chunk

    def close(self) -> None:
        self.file.close()


def file_wrapper_app() -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", [*TEXT, ("Content-Length", "5")])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"hello"), 2)

    return app


def plain_app() -> WSGIApplication:
    return returning("200 OK", [*TEXT, ("Content-Length", "5")], [b"hello"])


def session_reading_app() -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        get_session(environ).get("user")  # read: the session is loaded
        start_response("200 OK", list(TEXT))
        return [b"hello"]

    return app


def leftover_cycles(
    wrap: Wrap, make_app: Callable[[], WSGIApplication], file_wrapper: type | None
) -> int:
    """How many objects one request through ``wrap(app)``, run to its end
    (``close()`` included) with the cyclic collector off, leaves in reference
    cycles once every reference to it is dropped (its environ included: the
    server's, made here)."""
    environ = make_environ()
    if file_wrapper is not None:
        environ["wsgi.file_wrapper"] = file_wrapper
    gc.collect()
    gc.disable()
    try:
        served = run(wrap(make_app()), environ, keep_result=False)
        assert served.error is None, repr(served.error)
        assert served.body == b"hello"
        del served, environ
        return gc.collect()
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("wrap", "make_app", "file_wrapper"),
    [
        pytest.param(
            OnClose(),
            file_wrapper_app,
            MethodCloseFileWrapper,
            id="file-wrapper-close-proxy",
        ),
        pytest.param(
            AccessLog(logger=ACCESS_LOGGER),
            file_wrapper_app,
            MethodCloseFileWrapper,
            id="file-wrapper-access-log",
        ),
        pytest.param(
            lambda app: compose(app, AccessLog(logger=ACCESS_LOGGER), ErrorCatcher()),
            plain_app,
            None,
            id="access-log+error-catcher",
        ),
        pytest.param(Session(SECRET), session_reading_app, None, id="session-read"),
    ],
)
def test_defect_4_a_finished_request_leaves_no_reference_cycle(
    wrap: Wrap, make_app: Callable[[], WSGIApplication], file_wrapper: type | None
) -> None:
    """Old: a file wrapper handed back to the server kept a cycle (its ``close``
    was the proxy's, whose saved inner close was the wrapper's own method);
    AccessLog and ErrorCatcher left some thirty objects per request in cycles; a
    session that was read made environ <-> session. New: reference counting alone
    frees every object of the request."""
    with captured(ACCESS_LOGGER) as access:
        found = leftover_cycles(wrap, make_app, file_wrapper)
    assert found == 0, f"{found} objects of the request were left in reference cycles"
    if isinstance(wrap, AccessLog):
        assert logged_statuses(access) == [200]
    if isinstance(wrap, OnClose):
        assert wrap.handed_on[-1:] == [True]  # the file wrapper went back as it was


# -- defect 5: on_request raising ------------------------------------------------------


class _FailingRequest(Responder["FailingRequest"]):
    def on_request(self) -> None:
        raise AppError("on_request raised")

    def on_close(self, outcome: Outcome) -> None:
        self.middleware.events.append(("on_close", outcome))


class _FailingRequestSeeingErrors(_FailingRequest):
    def on_error(self, exc: BaseException) -> None:
        self.middleware.events.append(("on_error", exc))


class FailingRequest(Middleware):
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []


def failing_request(kind: type[_FailingRequest]) -> FailingRequest:
    class One(FailingRequest):
        responder = kind

    return One()


@pytest.mark.parametrize(
    ("responder", "hooks"),
    [
        pytest.param(
            _FailingRequestSeeingErrors, ["on_error", "on_close"], id="body-proxy"
        ),
        pytest.param(_FailingRequest, ["on_close"], id="close-proxy"),
    ],
)
def test_defect_5_on_request_raising_runs_on_error_and_on_close(
    responder: type[_FailingRequest], hooks: list[str]
) -> None:
    """Old: an exception from ``on_request`` escaped before the proxy's error path,
    so neither ``on_error`` nor ``on_close`` ran."""
    failing = failing_request(responder)
    called: list[str] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        called.append("app")
        start_response("200 OK", list(TEXT))
        return [b"never"]

    served = run(failing(app))
    assert isinstance(served.error, AppError)
    assert called == []
    assert [name for name, _ in failing.events] == hooks
    events = dict(failing.events)
    if "on_error" in events:
        assert events["on_error"] is served.error
    outcome = events["on_close"]
    assert isinstance(outcome, Outcome)
    assert outcome.error is served.error
    assert outcome.status == "500 Internal Server Error"
    assert outcome.code == 500
    assert not outcome.headers_sent


# -- defect 6: an app returning None ---------------------------------------------------


@pytest.mark.parametrize(
    ("wrap", "answered", "logged"),
    [
        pytest.param(ErrorCatcher(), True, None, id="error-catcher"),
        pytest.param(AccessLog(logger=ACCESS_LOGGER), False, 500, id="access-log"),
        pytest.param(
            lambda app: compose(app, AccessLog(logger=ACCESS_LOGGER), ErrorCatcher()),
            True,
            500,
            id="access-log+error-catcher",
        ),
        pytest.param(Gzip(), False, None, id="gzip"),
    ],
)
def test_defect_6_app_returning_none_is_a_pep_3333_error_through_the_hooks(
    wrap: Wrap, answered: bool, logged: int | None
) -> None:
    """Old: None went to the server as the body, which failed with a bare
    TypeError ("'NoneType' object is not iterable"); ErrorCatcher never saw it and
    AccessLog logged 200."""
    app = returning("200 OK", TEXT, None)
    environ = make_environ()
    environ["HTTP_ACCEPT_ENCODING"] = "gzip"
    with captured(ACCESS_LOGGER) as access, captured(ERRORS_LOGGER) as errors:
        served = run(wrap(app), environ)
    if answered:
        assert served.error is None, repr(served.error)
        assert served.status == "500 Internal Server Error"
        assert served.body and served.header("Content-Length") == str(len(served.body))
        assert len(errors) == 1
        assert errors[0].exc_info is not None
        reported = errors[0].exc_info[1]
        assert isinstance(reported, TypeError)
        assert "PEP 3333" in str(reported)
    else:
        assert isinstance(served.error, TypeError)
        assert "PEP 3333" in str(served.error)
    if logged is not None:
        assert logged_statuses(access) == [logged]


# -- defect 7: an app yielding str -----------------------------------------------------


@pytest.mark.parametrize(
    ("wrap", "answered"),
    [
        pytest.param(Gzip(), False, id="gzip"),
        pytest.param(ErrorCatcher(), True, id="error-catcher"),
    ],
)
def test_defect_7_app_yielding_str_is_a_pep_3333_error(
    wrap: Wrap, answered: bool
) -> None:
    """Old: the str reached the compressor, which failed with "a bytes-like object
    is required"; ErrorCatcher passed it to the server, which refused it."""
    body = Closing(["hello, wsgi world"])
    app = returning("200 OK", TEXT, body)
    environ = make_environ()
    environ["HTTP_ACCEPT_ENCODING"] = "gzip"
    with captured(ERRORS_LOGGER) as errors:
        served = run(wrap(app), environ)
    assert body.closes == 1
    if answered:
        assert served.error is None, repr(served.error)
        assert served.status == "500 Internal Server Error"
        assert served.body and served.header("Content-Length") == str(len(served.body))
        assert len(errors) == 1
        assert errors[0].exc_info is not None
        assert "PEP 3333" in str(errors[0].exc_info[1])
    else:
        assert isinstance(served.error, TypeError)
        assert "PEP 3333" in str(served.error)
        assert "bytes-like" not in str(served.error)


# -- defect 8: Session and an empty header list ---------------------------------------


def login_app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    get_session(environ)["user"] = "alice"
    start_response("204 No Content", [])
    return []


def reading_app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    get_session(environ).get("user")
    start_response("204 No Content", [])
    return []


@pytest.mark.parametrize(
    ("app", "header", "expected"),
    [
        pytest.param(login_app, "Set-Cookie", "session=", id="login-set-cookie"),
        pytest.param(reading_app, "Vary", "Cookie", id="read-vary"),
    ],
)
def test_defect_8_session_headers_reach_an_empty_header_list(
    app: WSGIApplication, header: str, expected: str
) -> None:
    """Old: ``headers or []`` made a new list for the app's empty one, so what the
    session added to it never reached the server: a login answered with a bare 204
    was lost."""
    served: Served = run(Session(SECRET)(app))
    assert served.error is None, repr(served.error)
    assert served.status == "204 No Content"
    value = served.header(header)
    assert value is not None, served.headers
    assert expected in value
