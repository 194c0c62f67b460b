"""The proxies that see every chunk: :class:`Body` (byte counts, errors while
iterating, recovery) and :class:`Filter` (a :class:`~middleware.proxy.BodyFilter`
changes the body)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..wsgi import (
    ExcInfo,
    Headers,
    WriteCallable,
    WSGIEnvironment,
    body_forbidden,
    remove_header,
)
from .close import Close, log
from .misuse import not_bytes
from .responder import BodyFilter
from .sizes import file_size


class Body(Close):
    """The response of a responder that sees every chunk (errors while iterating,
    byte counts): the server iterates this object's generator over the body."""

    _counts = True

    def _file_size(self, result: object) -> int | None:
        return file_size(result, self.headers)

    def write(self, data: bytes) -> None:
        """The ``write()`` the app is given: counted (and filtered) like a chunk."""
        if data.__class__ is not bytes and not isinstance(data, bytes):
            raise not_bytes(data)
        body_filter = self._filter
        if body_filter is not None:
            data = body_filter.feed(data)
        if data:
            self.headers_sent = True
            self.bytes_sent += len(data)
            self._write(data)

    def __iter__(self) -> Iterator[bytes]:
        if self._closed:
            raise RuntimeError("the response was iterated after close()")
        return self._stream()

    def _stream(self) -> Iterator[bytes]:
        """Every chunk through the filter and the count, then the filter's end. A
        generator: CPython's cheapest per-chunk loop. ``iter()`` of the app's result
        runs inside it, so an ``__iter__`` that raises is an error like any other.
        The server closes the proxy, not this generator."""
        try:
            for data in self._result:
                if data.__class__ is not bytes and not isinstance(data, bytes):
                    raise not_bytes(data)
                body_filter = self._filter  # read per chunk: exc_info may replace it
                if body_filter is not None:
                    data = body_filter.feed(data)
                if data:
                    self.headers_sent = True
                    self.bytes_sent += len(data)
                yield data
            body_filter = self._filter
            if body_filter is not None and not self._done:
                self._done = True
                data = body_filter.finish()
                if data:
                    self.headers_sent = True
                    self.bytes_sent += len(data)
                    yield data
            if self.status is not None:
                self.headers_sent = True  # PEP 3333: sent once the body is exhausted
        except GeneratorExit:
            raise  # abandoned, not failed: nothing to report
        except BaseException as exc:  # anything: recorded for the hooks, re-raised
            self._record(exc, self._offers(exc))
            body = self._replace(exc) if self._responder.sees_error else None
            if body is None:
                if self._held:
                    self._release_on_error()
                raise
        else:
            return
        # Recovered: the app's iterable is closed before the replacement body goes.
        self._close_app()
        if body:
            self.headers_sent = True
            self.bytes_sent += len(body)
        yield body
        self.headers_sent = True

    def _close_app(self) -> None:
        """Close the app's iterable now (once); an error there is recorded."""
        inner_close = self._inner_close or getattr(self._result, "close", None)
        self._inner_close = None
        self._result = ()
        if inner_close is not None:
            try:
                inner_close()
            except Exception as exc:
                self._record(exc)


#: A list or tuple body of several chunks is joined, to be fed whole, only up to
#: this many bytes: a join copies it. A larger one is streamed.
WHOLE_LIMIT = 1 << 20


class Filter(Body):
    """The response of a responder that may change the body: each response's
    :class:`BodyFilter` is the one ``on_start`` returned (None: sent as is)."""

    _filters = True

    # Declined at a start before the app returned, so the server may hold the app's
    # body as it was: a later exc_info replacement is never filtered.
    _passthrough = False
    # While the server's start_response is held (a filter with ``complete``; see
    # BodyFilter), this proxy stands in as the filter and ``_inner`` is the
    # responder's; ``_whole``: the app's body is one chunk fed whole.
    _inner: BodyFilter | None = None
    _whole = False

    def _respond(
        self, result: Iterable[bytes], environ: WSGIEnvironment
    ) -> Iterable[bytes]:
        """What the server gets for the app's *result* (called by ``run``)."""
        if self._filter is not None:  # filtered: never handed on as it is
            # A held start and the whole body here: fed as one chunk, it gets a
            # length.
            if (
                self._held
                and (result.__class__ is list or result.__class__ is tuple)
                and all(chunk.__class__ is bytes for chunk in result)
            ):
                if len(result) == 1:
                    self._whole = True
                elif sum(map(len, result)) <= WHOLE_LIMIT:  # joined: a copy
                    result = [b"".join(result)]
                    self._whole = True
                watcher = self._responder
                if self._whole and not (
                    watcher.sees_error or watcher.sees_close or watcher.counts_body
                ):
                    # Nothing to watch after: filtered now, the server (and an outer
                    # layer) gets a list with its length (bench_stack).
                    try:
                        return [self.feed(result[0])]
                    except BaseException as exc:
                        self._recovered(exc)  # no error hooks: records, ends, None
                        raise
            self._result = result
            return self
        if self.status is not None:
            # Started and declined: the server may get the body as it is, so a
            # later replacement is not filtered either. With nothing else to see,
            # it gets the app's own iterable and this proxy stays out.
            self._passthrough = True
            responder = self._responder
            if not (
                responder.sees_error or responder.sees_close or responder.counts_body
            ):
                return result
            return self._handed_back(result, environ)
        self._result = result
        return self

    def _on_start(self, status: str, headers: Headers) -> str:
        responder = self._responder
        allowed = not self._passthrough and not body_forbidden(
            responder.environ.get("REQUEST_METHOD"), status
        )
        responder.filterable = allowed
        body_filter = responder.on_start(status, headers)
        if body_filter is not None and not allowed:
            raise RuntimeError(
                f"{type(responder).__name__}.on_start() returned a body filter "
                "although filterable was False (HEAD, 1xx, 204, 304, or a body "
                "already handed on)"
            )
        replaced = responder.replaced_status
        if replaced is not None:
            responder.replaced_status = None
            if body_filter is not None and body_forbidden(None, replaced):
                raise RuntimeError(
                    f"{type(responder).__name__}.on_start() returned a body filter "
                    f"with a status that carries no body ({replaced!r})"
                )
            status = replaced
        started = self.status is not None and not self._held  # the server was called
        self._filter = body_filter
        self._held = False
        if body_filter is not None:
            remove_header(headers, "Content-Length")
            if not started and getattr(body_filter, "complete", None) is not None:
                self._inner, self._filter, self._held = body_filter, self, True
        return status

    def _restart(
        self, status: str, headers: Headers, exc_info: ExcInfo
    ) -> WriteCallable:
        if self.headers_sent:
            raise exc_info[1].with_traceback(exc_info[2])
        kept = self._filter, self._inner, self._held
        try:
            headers = list(headers)
            status = self._on_start(status, headers)
            if not self._held:
                # The server may refuse (its headers are out): then it raises, and
                # this proxy keeps what the server holds, not what it refused.
                self._write = self._server_start(status, headers, exc_info)
        except BaseException:  # refused: the old filter stands
            self._filter, self._inner, self._held = kept
            raise
        self.status, self.headers = status, headers
        return self.write

    def _replaced_body(self) -> None:
        self._filter = None
        self._held = False

    # -- while the server's start_response is held -------------------------------------

    def feed(self, data: bytes) -> bytes:
        """The filter while the start is held: the responder's filter's output for
        the first chunk, the server's start_response called just before it goes,
        with the length when the output is the whole body."""
        inner: Any = self._inner
        if self._whole:
            data = inner.feed(data) + inner.finish()
            self._done = True
            length: int | None = len(data)
        else:
            data = inner.feed(data)
            length = len(data) if inner.complete else None
        self._release(length)
        return data

    def finish(self) -> bytes:
        """The body ended before any output: all of it is the filter's end."""
        inner: Any = self._inner  # set with _held, in _on_start
        data: bytes = inner.finish()
        self._release(len(data))
        return data

    def _release_on_error(self) -> None:
        try:
            self._release(None)
        except Exception:  # the server refused the held headers: the error goes on
            log.debug("the server refused the held start of a failed response")

    def _release(self, length: int | None) -> None:
        """Call the server's start_response, with ``Content-Length`` when known."""
        self._filter, self._held = self._inner, False
        status, headers = self.status, self.headers
        if status is None or headers is None:  # held only after a start: a core bug
            raise RuntimeError("a held start_response without a status to give")
        if length is not None:
            headers.append(("Content-Length", str(length)))
        self._write = self._server_start(status, headers)
