"""The kit's stand-in for a strict PEP 3333 server: it serves one request and records
what it saw (:class:`Served`)."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from wsgiref.types import WSGIApplication, WSGIEnvironment
from wsgiref.util import FileWrapper, setup_testing_defaults

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


class CheckFailed(AssertionError):
    """A check of the kit failed: :attr:`check` names it (see the "Testing
    middleware" page for each name), the message says what was seen."""

    def __init__(self, message: object, check: str) -> None:
        super().__init__(message)
        self.check = check


def expect(condition: object, message: object = "", check: str = "custom") -> None:
    """The kit's assertion: a :class:`CheckFailed` (an ``AssertionError``, what
    pytest and :func:`~middleware.testing.check_all` report) naming *check* when
    *condition* is false. Not an ``assert`` statement, which ``python -O`` would
    strip, passing every cell."""
    if not condition:
        raise CheckFailed(message, check)


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
