"""The app styles of the conformance kit: small WSGI apps, each exercising one part
of PEP 3333, and the pieces they are made of (a probe that counts closes)."""

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


def text_headers(length: int | None = None) -> list[tuple[str, str]]:
    headers = [("Content-Type", "text/plain; charset=utf-8")]
    if length is not None:
        headers.append(("Content-Length", str(length)))
    return headers


# -- app styles -----------------------------------------------------------------------

AppFactory = Callable[[Probe], WSGIApplication]


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
