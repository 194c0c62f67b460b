"""The core every middleware stands on: WSGI types, the :class:`Middleware` and
:class:`Layer` base classes, and the one response proxy, :class:`Observer` (with its
body-changing kind, :class:`Transformer`).

The hard parts of PEP 3333 are solved here once, so that no middleware solves them
again:

- the app may call ``start_response`` lazily, from inside a generator, on the first
  ``next()``; nothing here reads status or headers before the app has given them;
- an app may call ``start_response`` again with ``exc_info`` to replace its headers
  after an error; while nothing has been sent the new headers go through the hooks
  again and on to the server *with* ``exc_info``; once bytes have gone out, the error
  is re-raised;
- ``write()`` is returned and honoured, its bytes go through the same transform as the
  iterable's and come out before them;
- ``close()`` of the app's iterable is called exactly once, whatever happens: the
  response completed, the server abandoned it before or during iteration, the app, a
  hook or ``close()`` itself raised. The proxy is an object with an idempotent
  ``close()``, never a generator;
- a layer that does not change the body hands the server the app's own iterable (or,
  for a ``wsgi.file_wrapper`` result, the very same object with its ``close`` chained),
  so the server's sendfile path keeps working;
- empty chunks are passed on, so streaming responses keep flowing; a transformed body
  loses its ``Content-Length``; HEAD requests and 1xx, 204 and 304 responses are never
  transformed.

Per-request state lives on the per-request :class:`Observer` instance, never on the
middleware or on the wrapped app, so one configured stack serves many threads.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, ClassVar, TypeAlias
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from webob.acceptparse import AcceptValidHeader, create_accept_header

__all__ = [
    "Answer",
    "ExcInfo",
    "Headers",
    "OptExcInfo",
    "Layer",
    "Middleware",
    "Observer",
    "StartResponse",
    "Transformer",
    "WSGIApplication",
    "WSGIEnvironment",
    "WriteCallable",
    "accepted_encodings",
    "add_vary",
    "body_forbidden",
    "client_address",
    "get_header",
    "prefers_json",
    "remove_header",
    "send_answer",
    "status_code",
]

#: Response headers as WSGI passes them: a list of ``(name, value)`` string pairs.
Headers: TypeAlias = list[tuple[str, str]]
#: What ``sys.exc_info()`` returns while an exception is being handled.
ExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType]
#: What ``start_response`` may be given as ``exc_info``.
OptExcInfo: TypeAlias = ExcInfo | tuple[None, None, None] | None
#: The ``write()`` callable that ``start_response`` returns.
WriteCallable: TypeAlias = Callable[[bytes], object]
#: A response a middleware gives itself: ``(status, headers, body)``.
Answer: TypeAlias = tuple[str, Headers, Iterable[bytes]]

log = logging.getLogger("middleware.core")


def status_code(status: str) -> int:
    """The integer code of a WSGI status line (``"404 Not Found"`` gives 404).

    A malformed status gives 0; the server, not a middleware, rejects it.
    """
    try:
        return int(status[:3])
    except (TypeError, ValueError):  # not a "NNN reason" string: 0, never a crash
        return 0


def body_forbidden(method: str | None, status: str) -> bool:
    """True when the response carries no body: a HEAD request, or a 1xx, 204 or 304
    status (RFC 9110, sections 9.3.2 and 15)."""
    if method == "HEAD":
        return True
    code = status_code(status)
    return code < 200 or code == 204 or code == 304


def get_header(headers: Headers, name: str) -> str | None:
    """The value of the first header called *name* (case-insensitive), or None."""
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def remove_header(headers: Headers, name: str) -> None:
    """Remove every header called *name* (case-insensitive), in place."""
    name = name.lower()
    index = len(headers)
    while index:  # backwards, deleting in place: no new list on the hot path
        index -= 1
        if headers[index][0].lower() == name:
            del headers[index]


def add_vary(headers: Headers, field: str) -> None:
    """Merge *field* into the response's ``Vary`` header, in place: appended to the
    first ``Vary`` header, or a new one, unless *field* or ``*`` is listed already."""
    wanted = field.lower()
    first = -1
    for index, (key, value) in enumerate(headers):
        if key.lower() == "vary":
            listed = {name.strip().lower() for name in value.split(",")}
            if wanted in listed or "*" in listed:
                return
            if first < 0:
                first = index
    if first < 0:
        headers.append(("Vary", field))
    else:
        key, value = headers[first]
        headers[first] = (key, f"{value}, {field}" if value.strip() else field)


#: Accept-Encoding values longer than this are not parsed: the client gets identity.
ACCEPT_ENCODING_LIMIT = 1024
# RFC 9110, section 12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


@functools.lru_cache(maxsize=512)
def accepted_encodings(
    header: str | None, available: tuple[str, ...]
) -> tuple[str, ...]:
    """The content codings among *available* that an ``Accept-Encoding`` value
    accepts, best first: highest q-value, ties in the order of *available*.

    *available* may include ``"identity"`` (no coding). The rules, from RFC 9110,
    section 12.5.3:

    - a coding with ``q=0`` is never accepted; one the header does not name is
      accepted only through ``*`` (with ``*``'s q-value);
    - ``identity`` is accepted unless refused by ``identity;q=0``, or by ``*;q=0``
      without an ``identity`` entry;
    - names and parameters are case-insensitive, spaces around them are ignored,
      ``x-gzip`` means ``gzip``; an entry with a malformed q-value is ignored;
    - no header, or one longer than :data:`ACCEPT_ENCODING_LIMIT`, accepts only
      ``identity``: a client that does not ask gets no coding.

    Results are cached, so a server seeing the same few browser headers parses each
    once.
    """
    qvalues: dict[str, float] = {}
    if header is not None and len(header) <= ACCEPT_ENCODING_LIMIT:
        for entry in header.split(","):
            name, _, params = entry.partition(";")
            name = name.strip().lower()
            if not name:
                continue
            q: float | None = 1.0
            for param in params.split(";") if params else ():
                key, _, value = param.partition("=")
                if key.strip().lower() == "q":
                    value = value.strip()
                    q = float(value) if _QVALUE.fullmatch(value) else None
            if q is None:
                continue
            if name == "x-gzip":
                name = "gzip"
                if name in qvalues:
                    continue  # an explicit gzip entry wins over its alias
            qvalues[name] = q
    star = qvalues.get("*")
    ranked: list[tuple[float, int, str]] = []
    for position, coding in enumerate(available):
        q = qvalues.get(coding)
        if q is None:
            q = star if star is not None else (1.0 if coding == "identity" else 0.0)
        if q > 0:
            ranked.append((-q, position, coding))
    ranked.sort()
    return tuple(coding for _, _, coding in ranked)


def client_address(environ: WSGIEnvironment, trusted_proxies: int = 0) -> str:
    """The client's address: ``REMOTE_ADDR``, or with *trusted_proxies* = N (the
    number of proxies in front of the app that append to ``X-Forwarded-For``) the
    N-th address from the right of that header, when it has that many (Werkzeug
    ProxyFix's rule: what the client wrote itself, further left, is never taken).
    An empty string when neither tells."""
    if trusted_proxies:
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded:
            hops = forwarded.split(",")
            if len(hops) >= trusted_proxies:
                address: str = hops[-trusted_proxies].strip()
                return address
    remote: str = environ.get("REMOTE_ADDR") or ""
    return remote


def prefers_json(accept: str | None) -> bool:
    """Whether an ``Accept`` value prefers ``application/json`` to ``text/html``:
    a higher q-value, or the same one from a more specific range. So ``*/*`` and
    browsers get HTML, and ``application/json, text/plain, */*`` (what axios
    sends) gets JSON. Parsed by WebOb; a malformed value gets HTML."""
    if not accept:
        return False
    parsed = create_accept_header(accept)
    if not isinstance(parsed, AcceptValidHeader):
        return False
    return _match(parsed, "application/json") > _match(parsed, "text/html")


def _match(accept: AcceptValidHeader, offer: str) -> tuple[float, int]:
    """The q-value the most specific matching range gives *offer*, and how
    specific that range was (2 exact, 1 ``type/*``, 0 ``*/*``); (0, -1) if none."""
    kind = offer.split("/")[0]
    best = (-1, 0.0)
    for media_range, q, _params, _extensions in accept.parsed:
        media_range = media_range.lower()
        if media_range == offer:
            specificity = 2
        elif media_range == f"{kind}/*":
            specificity = 1
        elif media_range == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best[0]:
            best = (specificity, q)
    specificity, q = best
    return (q, specificity) if q > 0 else (0.0, -1)


def send_answer(
    answer: Answer, environ: WSGIEnvironment, start_response: StartResponse
) -> Iterable[bytes]:
    """Send a middleware's own response, ``(status, headers, body)``, to the server.

    The server gets a copy of the headers (servers may add to the list they are
    given, and answers are often built once and shared) and the body as is, file
    wrappers included; or nothing on HEAD and 1xx, 204 and 304, with the body closed.
    """
    status, headers, body = answer
    start_response(status, list(headers))
    if body.__class__ is list and not body:
        return body  # nothing to send or close, whatever the status
    if body_forbidden(environ.get("REQUEST_METHOD"), status):
        close = getattr(body, "close", None)
        if close is not None:
            close()  # never iterated: a file it holds is closed now
        return []
    return body


def _file_size(result: object, headers: Headers | None) -> int | None:
    """How many bytes a file wrapper will send: its Content-Length, else what is
    left of its file; None when neither can be told (no fileno, so no sendfile)."""
    if headers is not None:
        length = get_header(headers, "Content-Length")
        if length is not None and length.isdigit():
            return int(length)
    # wsgiref and gunicorn call the file ``filelike``; waitress and Werkzeug ``file``.
    filelike = getattr(result, "filelike", None) or getattr(result, "file", None)
    try:
        fileno = filelike.fileno()  # type: ignore[union-attr]
        position = filelike.tell()  # type: ignore[union-attr]
        return max(os.fstat(fileno).st_size - int(position), 0)
    except (AttributeError, OSError, TypeError, ValueError):  # no real file: unknown
        return None


_new = object.__new__

# What a response proxy does with the app's iterable; see Observer.respond.
_PASS, _CLOSE, _BODY = 0, 1, 2


class Observer:
    """The per-request response proxy: one instance per request, created by the
    :class:`Layer` of the middleware that owns it.

    Subclass it and override the hooks you need. The proxy does only the work your
    overrides ask for:

    - none of :meth:`on_close`, :meth:`on_error` or ``watch_body``: the server gets
      the app's own iterable back, and the layer costs a wrapped ``start_response``;
    - :meth:`on_close` only: the server gets a close-proxy whose iterator is the
      app's own iterator, or, for a ``wsgi.file_wrapper`` result, the same object with
      its ``close`` chained to ours (sendfile keeps working);
    - :meth:`on_error` or ``watch_body = True``: every chunk passes through
      the proxy's iterator, which counts :attr:`bytes_sent`, tracks
      :attr:`headers_sent` and records the exception that ended the response.

    Hooks, in the order they run:

    - :meth:`on_request` before the app is called (set environ keys here);
    - :meth:`on_start` when the app calls ``start_response``; it may replace
      :attr:`status` and change :attr:`headers` in place. It runs again if the app
      replaces its headers with ``exc_info`` before anything was sent, so put
      per-response state there, not in :meth:`on_request`;
    - :meth:`on_error` when the app, the iteration or a hook raised;
    - :meth:`on_close` once, after the app's iterable was closed (or after the app
      raised before returning one).

    Attributes readable from the hooks: :attr:`middleware` (the configuration),
    :attr:`environ`, :attr:`status`, :attr:`headers`, :attr:`error`, and in
    body-watching mode :attr:`bytes_sent` and :attr:`headers_sent`.
    """

    #: Set to True in a subclass to count bytes and see errors raised while iterating.
    watch_body: ClassVar[bool] = False
    #: True for :class:`Transformer` subclasses: the body may be changed.
    transforms: ClassVar[bool] = False

    # Which hooks the subclass overrides; set by __init_subclass__.
    _hooks_request: ClassVar[bool] = False
    _hooks_start: ClassVar[bool] = False
    _hooks_error: ClassVar[bool] = False
    _hooks_recover: ClassVar[bool] = False
    _hooks_close: ClassVar[bool] = False
    _mode: ClassVar[int] = _PASS
    # Nothing to see at start_response: the app gets the server's own.
    _direct_start: ClassVar[bool] = True

    # Per-request state. Class-level defaults keep construction cheap: an instance
    # attribute is created only when a request writes it.
    #: The status line the server was (or will be) given, after the hooks.
    status: str | None = None
    #: The response headers the server was given, after the hooks.
    headers: Headers | None = None
    #: The exception that ended the response, if any.
    error: BaseException | None = None
    #: Bytes passed on to the server in body-watching mode; for a file wrapper
    #: handed on to the server, its Content-Length or the file's remaining size.
    bytes_sent: int = 0
    #: True once a non-empty chunk or ``write()`` went out: headers are on the wire.
    headers_sent: bool = False
    #: Whether this response's body goes through :meth:`Transformer.transform`.
    transforming: bool = False
    _result: Iterable[bytes] = ()
    _inner_close: Callable[[], object] | None = None
    _delegate: bool = False  # the server iterates the app's own iterator
    # A transformer that declined at its first start: a later exc_info replacement
    # is never transformed, as the app's body may already be on its way unchanged.
    _passthrough: bool = False
    _finished: bool = False
    _closed: bool = False
    _write: WriteCallable

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._hooks_request = cls.on_request is not Observer.on_request
        cls._hooks_start = cls.on_start is not Observer.on_start
        cls._hooks_error = cls.on_error is not Observer.on_error
        cls._hooks_recover = cls.recover is not Observer.recover
        cls._hooks_close = cls.on_close is not Observer.on_close
        if cls.transforms:
            cls._hooks_start = True  # the core decides on transforming at start
        if cls.transforms or cls.watch_body or cls._hooks_error or cls._hooks_recover:
            cls._mode = _BODY
        elif cls._hooks_close:
            cls._mode = _CLOSE
        else:
            cls._mode = _PASS
        # Close mode hands iteration to the app's own iterator.
        cls._delegate = cls._mode == _CLOSE
        # An observer of requests only (auth, static files) stays out of the way.
        cls._direct_start = cls._mode == _PASS and not cls._hooks_start

    # Observers are made by their Layer, per request, without an __init__ call
    # (one Python frame less on every request); set up state in on_request.
    #: The middleware (configuration object) this request runs through.
    middleware: Any
    #: The WSGI environ of this request.
    environ: WSGIEnvironment
    _start_response: StartResponse

    @classmethod
    def for_request(
        cls, middleware: Any, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Observer:
        """Make the observer of one request (what :class:`Layer` does)."""
        observer = _new(cls)
        observer.middleware = middleware
        observer.environ = environ
        observer._start_response = start_response
        return observer

    # -- hooks ---------------------------------------------------------------------

    def on_request(self) -> Answer | None:
        """Called before the app, with :attr:`environ` ready to read and extend.

        Return None to go on to the app, or an :data:`Answer`,
        ``(status, headers, body)``, to answer the request yourself (a 401, a static
        file): the app is not called, the server gets your status and headers, and
        your body (an iterable of bytes, ``wsgi.file_wrapper`` objects included) is
        handed to it as is, or nothing on HEAD, 1xx, 204 and 304. The other hooks do
        not run for an answered request.
        """
        return None

    def on_start(self) -> None:
        """Called when the app calls ``start_response``, before the server is.

        :attr:`status` and :attr:`headers` hold what the app gave (the headers are a
        copy, safe to change in place); assign :attr:`status` to replace it. In a
        :class:`Transformer`, :attr:`transforming` is True on entry when this body
        may be changed; set it to False to leave the response alone.
        """

    def on_error(self, exc: BaseException) -> None:
        """Called with the exception raised by the app, the iteration, a hook or the
        app iterable's ``close()``. The exception propagates after this returns."""

    def on_close(self) -> None:
        """Called once when the response is over: after the app's iterable was
        closed, or after the app raised without returning one."""

    def recover(self, exc: Exception) -> tuple[str, Headers, bytes] | None:
        """Called, after :meth:`on_error`, when the app raised an ``Exception``
        before any byte of the body was sent. Return ``(status, headers, body)`` to
        send instead, or None to let the exception propagate.

        The core does the protocol: it calls the server's ``start_response`` with
        your status and headers *and* ``exc_info``, so an outer layer or the server
        replaces any status it stored; it closes the app's iterable; it sends your
        body (nothing on HEAD, 1xx, 204 or 304). Once bytes went out it never asks:
        the error propagates and the server aborts the response. ``GeneratorExit``,
        ``KeyboardInterrupt`` and ``SystemExit`` are never offered.
        """
        return None

    def transform(self, data: bytes) -> bytes:
        """(:class:`Transformer` only.) Return the bytes to send for *data*, which
        may be empty; return ``b""`` to hold data back."""
        return data

    def finish(self) -> bytes:
        """(:class:`Transformer` only.) Return the bytes that end the body, after the
        app's last chunk."""
        return b""

    # -- the proxy -----------------------------------------------------------------

    def respond(self, app: WSGIApplication) -> Iterable[bytes]:
        """Run *app* for this request and return what the server should iterate."""
        if self._hooks_request:
            answer = self.on_request()
            if answer is not None:
                return self._answer(answer)
        if self._direct_start:
            return app(self.environ, self._start_response)
        try:
            result = app(self.environ, self.start_response)
        except BaseException as exc:
            self._record_error(exc)
            body = self._replace(exc) if self._hooks_recover else None
            if body is None:
                self._closed = True  # no iterable: nothing to close
                self._run_on_close()
                raise
            self._result = (body,)
            return self
        mode = self._mode
        if mode == _PASS:
            return result
        if self.status is not None and not self.transforming:
            if self.transforms:
                # Started already and the body is left alone: a transformer that
                # declined hands it on as a plain observer would, and stays out.
                self._passthrough = True
                if not (self.watch_body or self._hooks_error):
                    if not self._hooks_close:
                        return result
                    mode = _CLOSE
                    self._delegate = True
            # uWSGI's file_wrapper is a function, not a class: its results get
            # wrapped like any iterable.
            wrapper = self.environ.get("wsgi.file_wrapper")
            if (
                isinstance(wrapper, type)
                and isinstance(result, wrapper)
                and self._hand_on_file(result, mode)
            ):
                return result
        self._result = result
        return self

    def _answer(self, answer: Answer) -> Iterable[bytes]:
        """Send the hook's own response instead of calling the app."""
        self.status, self.headers = answer[0], answer[1]
        return send_answer(answer, self.environ, self._start_response)

    def _hand_on_file(self, result: Any, mode: int) -> bool:
        """Give the server back its own file wrapper, with our close chained to its
        close, so the server can use sendfile. In body mode that needs the size
        told; without it (no length, no fileno, so no sendfile) we iterate."""
        size = _file_size(result, self.headers) if mode == _BODY else 0
        if size is None:
            return False
        inner_close = getattr(result, "close", None)
        try:
            result.close = self.close
        except AttributeError:  # a wrapper with __slots__: proxy it
            return False
        self._inner_close = inner_close
        self.bytes_sent = size
        return True

    def start_response(
        self, status: str, headers: Headers, exc_info: OptExcInfo = None
    ) -> WriteCallable:
        """The ``start_response`` the app is given; it calls the server's."""
        if exc_info is not None and exc_info[1] is not None:
            return self._restart(status, headers, exc_info)
        if self.status is not None:
            raise RuntimeError(
                "start_response() was called a second time without exc_info; "
                "PEP 3333 allows a second call only to replace the headers after "
                "an error, with exc_info=sys.exc_info()"
            )
        self.status = status
        if self._hooks_start:
            self.headers = list(headers)  # never change a list the app may reuse
            if self.transforms:
                self._decide()
            else:
                self.on_start()
            status = self.status
            headers = self.headers
        else:
            self.headers = headers
        write = self._start_response(status, headers)
        if self._mode != _BODY:
            return write
        self._write = write
        return self.write

    def _restart(
        self, status: str, headers: Headers, exc_info: ExcInfo
    ) -> WriteCallable:
        """start_response called with exc_info: replace the headers, or re-raise."""
        if self.headers_sent:
            raise exc_info[1].with_traceback(exc_info[2])
        # If the server refuses the replacement (its headers are out), the observer
        # keeps seeing what the server holds, not what was refused.
        kept = self.status, self.headers, self.transforming
        try:
            self.status = status
            self.headers = list(headers)
            if self.transforms:
                self._decide()
            elif self._hooks_start:
                self.on_start()
            write = self._start_response(self.status, self.headers, exc_info)
        except BaseException:  # anything, hook or server: restore, then re-raise
            self.status, self.headers, self.transforming = kept
            raise
        if self._mode != _BODY:
            return write
        self._write = write
        return self.write

    def _decide(self) -> None:
        """A transformer's start: may this body be changed, and does the hook want
        to? A body already handed to the server as is cannot start being changed."""
        allowed = not self._passthrough and not body_forbidden(
            self.environ.get("REQUEST_METHOD"), self.status or ""
        )
        self.transforming = allowed
        self.on_start()
        self.transforming = self.transforming and allowed
        if self.transforming and self.headers is not None:
            # Read after the hook: it may have assigned a new list.
            remove_header(self.headers, "Content-Length")

    def write(self, data: bytes) -> None:
        """The ``write()`` the app is given in body-watching mode."""
        if self.transforming:
            data = self.transform(data)
            if not data:
                return  # the transform holds it; telling the server would send headers
        if data:
            self.headers_sent = True
            self.bytes_sent += len(data)
        self._write(data)

    def __iter__(self) -> Iterator[bytes]:
        if self._closed:
            raise RuntimeError("the response was iterated after close()")
        if self._delegate:
            return iter(self._result)
        return self._stream(iter(self._result))

    def _stream(self, iterator: Iterator[bytes]) -> Iterator[bytes]:
        """Body mode: every chunk through transform and the byte count, then the
        transform's end. A generator: CPython's cheapest per-chunk loop. The
        server closes the proxy, not this generator; its ``close()`` (at garbage
        collection, when the server stopped early) only ends it."""
        try:
            for data in iterator:
                if self.transforming:
                    data = self.transform(data)
                if data:
                    self.headers_sent = True
                    self.bytes_sent += len(data)
                yield data
            if self.transforming and not self._finished:
                self._finished = True
                data = self.finish()
                if data:
                    self.headers_sent = True
                    self.bytes_sent += len(data)
                    yield data
        except GeneratorExit:
            raise  # abandoned, not failed: nothing to report
        except BaseException as exc:  # anything: recorded for the hooks, re-raised
            self._record_error(exc)
            body = self._replace(exc) if self._hooks_recover else None
            if body is None:
                raise
        else:
            return
        # Recovered: the app's iterable is closed before the replacement body goes.
        self._close_app()
        if body:
            self.headers_sent = True
            self.bytes_sent += len(body)
        yield body

    def close(self) -> None:
        """Close the app's iterable, then run :meth:`on_close`; exactly once.

        Both run even if the first raises; the first exception is re-raised and a
        later one is logged, so nothing is lost and nothing is masked.
        """
        if self._closed:
            return
        self._closed = True
        inner_close = self._inner_close or getattr(self._result, "close", None)
        if inner_close is not None:
            try:
                inner_close()
            except BaseException as exc:
                self._record_error(exc)
                self._run_on_close()
                raise
        if self._hooks_close:
            if self.error is not None:
                self._run_on_close()  # never let on_close mask that error
            else:
                self.on_close()

    # -- helpers -------------------------------------------------------------------

    def _replace(self, exc: BaseException) -> bytes | None:
        """Ask :meth:`recover` for a replacement response; if one comes, give the
        server its status and headers with exc_info, and return its body."""
        if self.headers_sent or not isinstance(exc, Exception):
            return None
        try:
            replacement = self.recover(exc)
        except Exception:
            log.exception("%s.recover() raised", type(self).__name__)
            return None
        if replacement is None:
            return None
        status, headers, body = replacement
        # Called from the except clause that caught *exc*, so sys.exc_info() is it.
        # Raises the original error if the server refuses (its headers are out).
        self._start_response(status, headers, sys.exc_info())
        self.status, self.headers, self.transforming = status, headers, False
        if body_forbidden(self.environ.get("REQUEST_METHOD"), status):
            return b""
        return body

    def _close_app(self) -> None:
        """Close the app's iterable now (once); an error there is recorded."""
        inner_close = self._inner_close or getattr(self._result, "close", None)
        self._inner_close = None
        self._result = ()
        if inner_close is not None:
            try:
                inner_close()
            except Exception as exc:
                self._record_error(exc)

    def _record_error(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        if self._hooks_error:
            try:
                self.on_error(exc)
            except Exception:
                log.exception("%s.on_error() raised", type(self).__name__)

    def _run_on_close(self) -> None:
        """Run on_close; if it raises while another error propagates, log it."""
        if not self._hooks_close:
            return
        try:
            self.on_close()
        except BaseException:  # anything on_close raises: re-raised unless it
            if self.error is None:  # would mask the error already propagating
                raise
            log.exception(
                "%s.on_close() raised while another error propagated",
                type(self).__name__,
            )


class Transformer(Observer):
    """A response proxy that may change the body: the other kind of client of the
    core, used by compression.

    After :meth:`on_start` (where a subclass decides, and sets :attr:`transforming`
    to False to leave a response alone), every chunk the app yields or writes goes
    through :meth:`transform`, and what :meth:`finish` returns closes the body. The
    core removes ``Content-Length`` from a transformed response and never transforms
    a HEAD request or a 1xx, 204 or 304 response. A response left alone after a
    non-lazy ``start_response`` is handed on untouched, file wrappers included.

    :meth:`transform` must return an empty bytestring when it holds data back, and
    every chunk it is given must come out by the time :meth:`finish` returns.
    """

    transforms: ClassVar[bool] = True


class Layer:
    """A WSGI app made by applying a :class:`Middleware` to an inner app.

    :attr:`app` is the inner app and :attr:`middleware` the configuration, so a stack
    can be walked and printed (see :func:`middleware.describe`).
    """

    __slots__ = ("app", "middleware", "_observer")

    def __init__(
        self, app: WSGIApplication, middleware: Middleware, observer: type[Observer]
    ) -> None:
        self.app = app
        self.middleware = middleware
        self._observer = observer

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        # Observer.for_request, inlined: this runs once per request per layer.
        observer = _new(self._observer)
        observer.middleware = self.middleware
        observer.environ = environ
        observer._start_response = start_response
        return observer.respond(self.app)

    def __repr__(self) -> str:
        return f"{self.middleware!r}({self.app!r})"


class _AnsweringLayer(Layer):
    """The layer of a middleware that only answers requests (its ``answer()``):
    no per-request object at all; a request it does not answer costs one call."""

    __slots__ = ("_answer",)

    def __init__(self, app: WSGIApplication, middleware: Middleware) -> None:
        super().__init__(app, middleware, Observer)
        self._answer = middleware.answer

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        answer = self._answer(environ)
        if answer is None:
            return self.app(environ, start_response)
        return send_answer(answer, environ, start_response)


class _ScopedAnsweringLayer(_AnsweringLayer):
    """An answering layer whose middleware answers only under a path prefix
    (:attr:`Middleware.answers_under`): a request outside it goes straight to the
    app, without calling ``answer()``."""

    __slots__ = ("_under",)

    def __init__(self, app: WSGIApplication, middleware: Middleware) -> None:
        super().__init__(app, middleware)
        self._under: str = middleware.answers_under or ""

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith(self._under):
            return self.app(environ, start_response)
        answer = self._answer(environ)
        if answer is None:
            return self.app(environ, start_response)
        return send_answer(answer, environ, start_response)


class Middleware:
    """Base of every middleware: an object holding checked configuration, which,
    called with a WSGI app, returns the wrapped app (a PasteDeploy filter as is).

    A subclass checks its options in ``__init__`` and names its per-request proxy in
    :attr:`observer`. A middleware that only answers some requests itself (a 401, a
    static file) and passes the others on untouched overrides :meth:`answer`
    instead and sets no observer: its layer makes no per-request object.
    """

    #: The per-request proxy class, instantiated once per request.
    observer: ClassVar[type[Observer] | None] = None
    #: Attribute names whose values :func:`repr` hides (secrets).
    secret_options: ClassVar[frozenset[str]] = frozenset()

    def __call__(self, app: WSGIApplication) -> WSGIApplication:
        if not callable(app):
            raise TypeError(
                f"{type(self).__name__} wraps a WSGI application (a callable), "
                f"got {app!r}"
            )
        if self.observer is None:
            if type(self).answer is not Middleware.answer:
                if self.answers_under:
                    return _ScopedAnsweringLayer(app, self)
                return _AnsweringLayer(app, self)
            raise TypeError(
                f"{type(self).__name__} sets no observer class and overrides neither "
                "answer() nor __call__"
            )
        return Layer(app, self, self.observer)

    @property
    def answers_under(self) -> str | None:
        """(For a middleware without an :attr:`observer`.) A ``PATH_INFO`` prefix
        outside which :meth:`answer` always returns None, so the layer passes those
        requests on without calling it. None (or ``""``, the default): every request
        is offered to it. Read once, when an app is wrapped."""
        return None

    def answer(self, environ: WSGIEnvironment) -> Answer | None:
        """(For a middleware without an :attr:`observer`.) Called for every request
        before the app: return None to pass the request on to the app untouched, or
        an :data:`Answer`, ``(status, headers, body)``, which the core sends as
        :meth:`Observer.on_request`'s answers are sent (see :func:`send_answer`).
        """
        return None

    def __repr__(self) -> str:
        options = ", ".join(
            f"{name}={'***' if name in self.secret_options else repr(value)}"
            for name, value in vars(self).items()
            if not name.startswith("_")
        )
        return f"{type(self).__name__}({options})"
