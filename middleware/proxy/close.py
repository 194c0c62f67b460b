"""The proxy of a response whose end a responder must see: :class:`Close`, the state
of one response (not started, started, sent, closed) and the protocol around it:
the app's ``start_response`` and ``write``, ``exc_info``, the error path, ``close()``
exactly once, and file wrappers handed back to the server."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..wsgi import (
    ExcInfo,
    Headers,
    OptExcInfo,
    StartResponse,
    WriteCallable,
    WSGIApplication,
    WSGIEnvironment,
    body_forbidden,
    send_answer,
)
from .misuse import NO_FILTERS, TWICE, not_iterable
from .responder import SERVER_ERROR, BodyFilter, Outcome, Responder
from .sizes import listed_size

# The logger keeps the name it had when the core was one module: logger names are
# configuration users wrote (docs/writing.rst).
log = logging.getLogger("middleware.core")
_tuple_new = tuple.__new__


# -- the proxies of one response -------------------------------------------------------


class Close:
    """The response of a responder with ``on_close``: the server iterates the app's
    own iterator (or gets its file wrapper back, close chained), and this object's
    ``close()`` closes the app's iterable, then reports the outcome.

    States: not started (status None), started (status set), sent
    (``headers_sent``), closed. Class-level defaults keep construction cheap.
    """

    status: str | None = None
    headers: Headers | None = None
    headers_sent = False
    bytes_sent = 0
    error: BaseException | None = None
    file_handed_on = False
    _result: Any = ()
    _inner_close: Callable[[], object] | None = None
    _closed = False
    _write: WriteCallable
    _counts = False  # sees every chunk (body and filter proxies)
    _filters = False  # may filter the body (the filter proxy)
    _done = False  # the filter's finish() was called
    _filter: BodyFilter | None = None  # the filter proxy's, for this response
    _held = False  # the filter proxy holds the server's start_response (see Filter)
    # The responder may have hooks beyond the error ones. The errors proxy's cannot,
    # and is made only when an error comes: nothing else reads it.
    _hooked = True

    def __init__(self, responder: Responder[Any], start_response: StartResponse):
        self._responder = responder
        self._server_start = start_response

    # -- the app's call ----------------------------------------------------------------

    def run(self, app: WSGIApplication, environ: WSGIEnvironment) -> Iterable[bytes]:
        """Run *app* for this request; return what the server should iterate."""
        responder = self._responder
        if responder.sees_request:
            try:
                answer = responder.on_request()
            except BaseException as exc:
                body = self._recovered(exc)
                if body is None:
                    raise
                self._result = [body]
                return self
            if answer is not None:
                return send_answer(answer, environ, self._server_start)
        # The app is called inline here and in Errors.run: a helper is one frame
        # more on every request of a proxy layer (bench_core, bench_errors).
        try:
            result = app(environ, self.start_response)
            if result.__class__ is not list and not (
                hasattr(result, "__iter__") or hasattr(result, "__getitem__")
            ):
                raise not_iterable(result)
        except BaseException as exc:
            body = self._recovered(exc)
            if body is None:
                raise
            self._result = [body]
            return self
        if self._filters:
            return self._respond(result, environ)
        if self.status is not None:
            if responder.released:  # its end is not watched: the app's own iterable
                return result
            # A list of bytestrings cannot fail while iterated and has nothing to
            # close: a layer that watches only errors hands it on (bench_stack).
            # (One that counts still counts what the server takes of it.)
            if (
                not (responder.sees_close or responder.counts_body)
                and listed_size(result) is not None
            ):
                return result
            return self._handed_back(result, environ)
        self._result = result
        return self

    def _handed_back(
        self, result: Iterable[bytes], environ: WSGIEnvironment
    ) -> Iterable[bytes]:
        """What the server gets for a started response's *result*: the app's own
        file wrapper with this proxy's close chained (so it can use sendfile), or
        this proxy. (uWSGI's file_wrapper is a function, not a class: its results
        are iterated like any iterable.)"""
        wrapper = environ.get("wsgi.file_wrapper")
        if (
            isinstance(wrapper, type)
            and isinstance(result, wrapper)
            and self._hand_on_file(result)
        ):
            return result
        self._result = result
        return self

    def _respond(
        self, result: Iterable[bytes], environ: WSGIEnvironment
    ) -> Iterable[bytes]:
        """(The filter proxy's.) What the server gets for the app's *result*."""
        raise NotImplementedError  # pragma: no cover - only Filter calls it

    def _release_on_error(self) -> None:
        """(The filter proxy's.) An error ends a held response: the server is given
        its held start, so it sees what it would have without the hold."""
        raise NotImplementedError  # pragma: no cover - only Filter holds

    def _hand_on_file(self, result: Any) -> bool:
        """Give the server back its own file wrapper with this close chained to its
        close, so it can use sendfile. A proxy that counts bytes needs the size told;
        without it (no length, no fileno, so no sendfile) it iterates instead."""
        size = self._file_size(result)
        if size is None:
            return False
        inner_close = getattr(result, "close", None)
        try:
            result.close = self.close
        except AttributeError:  # a wrapper with __slots__: iterated instead
            return False
        self._inner_close = inner_close
        self.bytes_sent = size
        self.file_handed_on = True
        return True

    def _file_size(self, result: object) -> int | None:
        return 0

    def start_response(
        self, status: str, headers: Headers, exc_info: OptExcInfo = None
    ) -> WriteCallable:
        """The ``start_response`` the app is given; it calls the server's."""
        if exc_info is not None and exc_info[1] is not None:
            return self._restart(status, headers, exc_info)
        if self.status is not None:
            raise RuntimeError(TWICE)
        if self._hooked and self._responder.sees_start:
            responder = self._responder
            headers = list(headers)  # never change a list the app may reuse
            try:
                if self._filters:  # the filter proxy decides its filter here
                    status = self._on_start(status, headers)
                    if self._held:  # the server is called with the first output
                        self.status, self.headers = status, headers
                        return self.write
                else:  # inlined: the close and body proxies' usual path
                    if responder.on_start(status, headers) is not None:
                        raise TypeError(NO_FILTERS.format(type(responder).__name__))
                    replaced = responder.replaced_status
                    if replaced is not None:
                        responder.replaced_status = None
                        status = replaced
            except BaseException as exc:  # seen even when the app lets it escape
                self._record(exc)  # from a generator this proxy does not iterate
                raise
        # Kept once the server accepted them: if it refuses (a malformed status),
        # the app may still call start_response again.
        self._write = self._server_start(status, headers)
        self.status, self.headers = status, headers
        return self.write

    def _restart(
        self, status: str, headers: Headers, exc_info: ExcInfo
    ) -> WriteCallable:
        """start_response with exc_info: replace the headers, or re-raise."""
        if self.headers_sent:
            raise exc_info[1].with_traceback(exc_info[2])
        if self._hooked and self._responder.sees_start:
            headers = list(headers)
            status = self._on_start(status, headers)
        # The server may refuse (its headers are out): then it raises, and this
        # proxy keeps what the server holds, not what it refused.
        self._write = self._server_start(status, headers, exc_info)
        self.status, self.headers = status, headers
        return self.write

    def _on_start(self, status: str, headers: Headers) -> str:
        responder = self._responder
        if responder.on_start(status, headers) is not None:
            raise TypeError(NO_FILTERS.format(type(responder).__name__))
        replaced = responder.replaced_status
        if replaced is None:
            return status
        responder.replaced_status = None
        return replaced

    def write(self, data: bytes) -> None:
        """The ``write()`` the app gets: the server's, noting that bytes went out
        (a legacy app that writes and then raises got its status to the client)."""
        if data:
            self.headers_sent = True
        self._write(data)

    # -- the server's calls ------------------------------------------------------------

    def __iter__(self) -> Iterator[bytes]:
        if self._closed:
            raise RuntimeError("the response was iterated after close()")
        try:
            return iter(self._result)
        except BaseException as exc:  # the app's __iter__ raised: recorded, re-raised
            self._record(exc)
            raise

    def close(self) -> None:
        """Close the app's iterable, then run ``on_close``; exactly once.

        Both run even if the first raises; the first exception is re-raised and a
        later one logged, so nothing is lost and nothing is masked. References to
        the app's iterable are dropped, so no cycle outlives the response.
        """
        if self._closed:
            return
        self._closed = True
        # A body this proxy did not see (all of it, or a file handed on) is assumed
        # to have gone out whole when the server closes it without an error.
        if (
            (not self._counts or self.file_handed_on)
            and self.status is not None
            and self.error is None
        ):
            self.headers_sent = True
        inner_close = self._inner_close or getattr(self._result, "close", None)
        self._inner_close = None
        self._result = ()
        if inner_close is not None:
            try:
                inner_close()
            except BaseException as exc:
                self._record(exc)
                self._end()
                raise
        if self.error is not None:
            self._end()
        elif self._hooked and self._responder.sees_close:  # _end's, inlined
            self._responder.on_close(
                _tuple_new(
                    Outcome,
                    (
                        self.status,
                        self.headers,
                        self.headers_sent,
                        self.bytes_sent,
                        None,
                        self.file_handed_on,
                    ),
                )
            )

    # -- errors and the end ------------------------------------------------------------

    def _record(self, exc: BaseException, offered: bool = False) -> None:
        """Keep the first error for the outcome and tell on_error, once per
        exception (one raised in a hook passes through the app and back here);
        *offered*: recover will be asked about it next."""
        if exc is self.error:
            return
        if self.error is None:
            self.error = exc
        responder = self._responder
        if responder.sees_error:
            responder.recovering = offered
            try:
                responder.on_error(exc)
            except Exception:
                log.exception("%s.on_error() raised", type(self._responder).__name__)

    def _recovered(self, exc: BaseException) -> bytes | None:
        """An error before the app returned (or in on_request): the replacement
        body, or None when the error is to propagate, the response then over (so
        on_close has run). If asking for, or sending, the replacement raises (the
        server refused its headers), the response is over too, and that error goes.
        Called inside the ``except`` that caught *exc*."""
        try:
            body = self._caught(exc)
        except BaseException:
            self._end_early()
            raise
        if body is None:
            if self._held:
                self._release_on_error()
            self._end_early()
        return body

    def _caught(self, exc: BaseException) -> bytes | None:
        """An error before the app returned: record it, and ask ``recover`` for a
        replacement; its body, or None to re-raise. Called inside the ``except``."""
        self._record(exc, self._offers(exc))
        if not self._responder.sees_error:
            return None
        return self._replace(exc)

    def _offers(self, exc: BaseException) -> bool:
        """Whether recover may still answer *exc*: nothing of the body went out,
        and it is an ``Exception``."""
        return not self.headers_sent and isinstance(exc, Exception)

    def _replace(self, exc: BaseException) -> bytes | None:
        """Ask ``recover`` for a replacement response; if one comes, give the server
        its status and headers with exc_info, and return its body."""
        if self.headers_sent or not isinstance(exc, Exception):  # as _offers
            return None
        responder = self._responder
        try:
            replacement = responder.recover(exc)
        except Exception:
            log.exception("%s.recover() raised", type(responder).__name__)
            return None
        if replacement is None:
            return None
        status, headers, body = replacement
        # Called from the except clause that caught *exc*, so sys.exc_info() is it.
        # Raises the original error if the server refuses (its headers are out).
        try:
            self._server_start(status, headers, sys.exc_info())
        except BaseException as refused:
            self._tell_recovered(exc, refused)
            raise
        self._tell_recovered(exc, None)
        self.status, self.headers = status, headers
        self._replaced_body()
        if body_forbidden(responder.environ.get("REQUEST_METHOD"), status):
            return b""
        return body

    def _tell_recovered(self, exc: Exception, refused: BaseException | None) -> None:
        try:
            self._responder.on_recovered(exc, refused)
        except Exception:
            log.exception("%s.on_recovered() raised", type(self._responder).__name__)

    def _replaced_body(self) -> None:
        """A recovered response's body goes out as it is."""

    def _end_early(self) -> None:
        """The app (or on_request) raised and nothing answered: no iterable to
        close; report the outcome."""
        self._closed = True
        self._end()

    def outcome(self) -> Outcome:
        """What went out: the :class:`Outcome` of this response."""
        status = self.status
        error = self.error
        sent = self.headers_sent
        if error is not None and not sent:
            status = SERVER_ERROR  # the server answers an error before any byte
        # tuple.__new__ skips the Python frame of NamedTuple.__new__: about 0.2 us
        # of every close and body layer's request (bench_core).
        return _tuple_new(
            Outcome,
            (status, self.headers, sent, self.bytes_sent, error, self.file_handed_on),
        )

    def _end(self) -> None:
        """The end of a response an error ended (the usual end is in close()): run
        on_close with the outcome, logging what it raises instead of masking the
        error that propagates. Then forget the error: its traceback holds this
        proxy's frames, a cycle once the server let go."""
        responder = self._responder
        try:
            if responder.sees_close:
                responder.on_close(self.outcome())
        except BaseException:
            log.exception(
                "%s.on_close() raised while another error propagated",
                type(responder).__name__,
            )
        finally:
            self.error = None
