"""The app styles that let defects through before they were in the kit: what careless
apps do (``None``, ``str``, an empty header list, an ``__iter__`` that raises,
``write()`` inside a generator, ``exc_info`` first) and what real servers do (a real
file, a file wrapper with a ``close`` of its own, many threads at once)."""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from .apps import BODY, PARTS, AppError, CountingIterable, Probe, text_headers


class MethodFileWrapper:
    """A ``wsgi.file_wrapper`` whose ``close()`` is a method of its own, as
    waitress's is (wsgiref's copies the file's ``close`` onto itself): a proxy that
    chains its close to this one's must not be left in a cycle with it."""

    def __init__(self, filelike: Any, block_size: int = 8192) -> None:
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: bytes(self.filelike.read(self.block_size)), b"")

    def close(self) -> None:
        self.filelike.close()


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


#: The environ key where a threads cell puts each request's token, and the header
#: the app sends it back in: a response with another request's token was mixed up.
REQUEST_TOKEN = "middleware.testing.request"
TOKEN_HEADER = "X-Kit-Request"


def threads_app(probe: Probe) -> WSGIApplication:
    """A lazy app whose requests wait for each other twice: once all have called
    the stack and before any calls start_response (so state a middleware kept on
    itself is the last request's by then), and again mid-body, so the threads of a
    cell are inside the stack at the same time. Each sends its request's token
    back in a header."""
    entered = threading.Barrier(THREADS)
    midway = threading.Barrier(THREADS)
    lock = threading.Lock()

    def app(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> CountingIterable:
        def body() -> Iterator[bytes]:
            with contextlib.suppress(threading.BrokenBarrierError):
                entered.wait(timeout=BARRIER_TIMEOUT)
            token = str(environ.get(REQUEST_TOKEN, ""))
            start_response("200 OK", [*text_headers(), (TOKEN_HEADER, token)])
            yield PARTS[0]
            with contextlib.suppress(threading.BrokenBarrierError):
                midway.wait(timeout=BARRIER_TIMEOUT)
            yield from PARTS[1:]

        with lock:
            return CountingIterable(probe, body())

    return app


THREADS = 8
#: How long a threads request waits for the others at each barrier: a middleware
#: that serves one request at a time breaks the barrier once, then goes on.
BARRIER_TIMEOUT = 2.0
