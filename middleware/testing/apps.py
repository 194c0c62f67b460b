"""The app styles of the conformance kit: small WSGI apps, each exercising one part
of PEP 3333, and the pieces they are made of (a probe that counts closes)."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable, Iterator
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


#: How many chunks the long stream yields before it stops: a server abandons it
#: after a few, so only a middleware that reads all of it first gets this far.
LONG_STREAM_CHUNKS = 10_000


def long_stream_app(probe: Probe) -> WSGIApplication:
    """A stream a server abandons midway; a middleware that buffers it whole
    (rather than streaming) reads to its end, where it raises to say so."""

    def app(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> CountingIterable:
        def body() -> Iterator[bytes]:
            start_response("200 OK", text_headers())
            for _ in range(LONG_STREAM_CHUNKS):
                yield b"tick "
            raise AppError(
                f"all {LONG_STREAM_CHUNKS} chunks of an endless stream were read "
                "before the server had a few: the middleware buffers the body"
            )

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
