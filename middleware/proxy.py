"""The one abstraction every middleware stands on.

- :class:`Middleware` is configuration: checked in ``__init__``; called with an app,
  it returns the wrapped app, a :class:`Layer`.
- :class:`Responder` is what a middleware subclasses to see or change responses: one
  instance per request, with a real ``__init__(middleware, environ)``, and hooks
  named apart from the protocol (:meth:`~Responder.on_request`,
  :meth:`~Responder.on_start`, :meth:`~Responder.on_error`,
  :meth:`~Responder.recover`, :meth:`~Responder.on_close`).
- A :class:`BodyFilter`, returned by ``on_start``, changes the body:
  ``feed(bytes) -> bytes`` for each chunk, ``finish() -> bytes`` at the end.
- An :class:`Outcome` is the one record of what went out, given to ``on_close``.

The protocol itself lives in a few small, final, internal proxies. Which one a layer
uses is chosen once, when an app is wrapped (:func:`plan`), from the hooks its
responder overrides, so a layer pays only for what it uses:

========== ================================================= =========================
proxy      chosen when the responder...                      per request
========== ================================================= =========================
answer     (no responder) the middleware overrides           one call to ``answer()``
           :meth:`Middleware.answer`
direct     overrides ``on_request`` only                     the responder
start      overrides ``on_start`` (not the ones below)       the responder, a closure
close      overrides ``on_close``                            the responder, a proxy
body       overrides ``on_error`` or ``recover``, or sets    the responder, a proxy, a
           :attr:`~Responder.counts_body`                    generator over the body
filter     sets :attr:`~Responder.filters`                   as body, plus the filter
========== ================================================= =========================

What the proxies guarantee (PEP 3333):

- the app gets the proxy's own ``start_response`` and may call it lazily, from
  inside a generator, on the first ``next()``; nothing reads status or headers
  before the app gave them; an empty header list is a list like any other;
- an app may call ``start_response`` again with ``exc_info`` while nothing has been
  sent: the hooks see the new status and headers, and the server gets them *with*
  ``exc_info``; once bytes went out, the error is re-raised;
- ``write()`` is honoured; its bytes go through the same filter as the iterable's;
- ``close()`` of the app's iterable is called exactly once, whatever happens, and
  ``on_close`` after it; no reference cycle is left once the server closed the
  response;
- a layer that does not change the body hands the server the app's own iterable, or
  its ``wsgi.file_wrapper`` object with ``close`` chained, so sendfile keeps working;
- a filtered body loses ``Content-Length``; HEAD and 1xx, 204 and 304 are never
  filtered; empty chunks are passed on, so streams keep flowing;
- an app that returns a non-iterable or yields ``str`` gets a ``TypeError`` naming
  the PEP 3333 rule, through the same error path as any other exception.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar

from .wsgi import (
    Answer,
    ExcInfo,
    Headers,
    OptExcInfo,
    StartResponse,
    WriteCallable,
    WSGIApplication,
    WSGIEnvironment,
    body_forbidden,
    get_header,
    remove_header,
    send_answer,
    status_code,
)

__all__ = [
    "BodyFilter",
    "Layer",
    "Middleware",
    "Outcome",
    "Responder",
    "plan",
]

log = logging.getLogger("middleware.proxy")

_tuple_new = tuple.__new__
#: The status line a server sends for an error raised before any byte went out.
SERVER_ERROR = "500 Internal Server Error"


class BodyFilter(Protocol):
    """What :meth:`Responder.on_start` returns to change a body (compression).

    :meth:`feed` is given every chunk the app yields or writes, empty ones included,
    and returns the bytes to send for it (``b""`` to hold data back); :meth:`finish`
    returns what ends the body, after the app's last chunk. Every byte fed must be
    out by the time :meth:`finish` has returned.
    """

    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class Outcome(NamedTuple):
    """What went out for one response, computed once by PEP 3333's rules and given
    to :meth:`Responder.on_close`.

    Headers count as sent once a non-empty chunk went out or the body was exhausted
    (so an empty 204 whose ``close()`` then raises still went out as a 204). An error
    before that means the server answered it: :attr:`status` is then
    ``"500 Internal Server Error"``.
    """

    #: The status line the client got; None when no response began (the client left).
    status: str | None
    #: The headers the server was given last (after every hook); None if none.
    headers: Headers | None
    #: Whether the status and headers reached the server's output.
    headers_sent: bool
    #: Body bytes passed to the server; for a file handed on, the file's size. Only
    #: counted by layers that see the body (``counts_body``, body and filter proxies).
    bytes_sent: int
    #: The first exception raised by the app, a hook, the iteration or ``close()``.
    error: BaseException | None
    #: True when a ``wsgi.file_wrapper`` object went to the server as it was.
    file_handed_on: bool

    @property
    def code(self) -> int:
        """The status as an int; 0 when no response began."""
        return status_code(self.status) if self.status else 0


M = TypeVar("M", bound="Middleware")


class Responder(Generic[M]):
    """The per-request object a middleware subclasses to see or change responses.

    Made once per request by the layer, as ``YourResponder(middleware, environ)``;
    define ``__init__`` with that signature (calling ``super().__init__``) to set up
    per-request state. Override only the hooks you need: the layer's proxy is chosen
    from them (see the table in this module's docs). In the order they run:

    - :meth:`on_request` before the app; it may answer the request itself;
    - :meth:`on_start` when the app calls ``start_response``; may change the headers,
      replace the status (:meth:`replace_status`), and return a :class:`BodyFilter`;
    - :meth:`on_error` when the app, a hook, the iteration or ``close()`` raised;
    - :meth:`recover` when an error came before any byte went out: a replacement;
    - :meth:`on_close` once, with the :class:`Outcome`, when the response is over.

    Hook names never collide with the proxy's own ``close``, ``write`` or iteration:
    a responder method called ``close`` is just a method.
    """

    #: Set True when :meth:`on_start` may return a :class:`BodyFilter`.
    filters: ClassVar[bool] = False
    #: Set True to have :attr:`Outcome.bytes_sent` and ``headers_sent`` counted from
    #: every chunk (an access log); otherwise a layer with only ``on_close`` hands the
    #: iteration to the app's own iterator and assumes a body it did not see went out.
    counts_body: ClassVar[bool] = False
    #: (Filter layers.) Set by the proxy before each :meth:`on_start`: False when a
    #: filter cannot be used for this response (HEAD, 1xx, 204, 304, or a body the
    #: server already has as it was), so ``on_start`` must return None.
    filterable: bool = False

    # Which hooks a subclass overrides: computed once per class, read by plan().
    _sees_request: ClassVar[bool] = False
    _sees_start: ClassVar[bool] = False
    _sees_error: ClassVar[bool] = False
    _sees_close: ClassVar[bool] = False
    _replaced: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._sees_request = cls.on_request is not Responder.on_request
        cls._sees_start = cls.on_start is not Responder.on_start or cls.filters
        cls._sees_error = (
            cls.on_error is not Responder.on_error
            or cls.recover is not Responder.recover
        )
        cls._sees_close = cls.on_close is not Responder.on_close

    def __init__(self, middleware: M, environ: WSGIEnvironment) -> None:
        #: The middleware (the configuration) this request runs through.
        self.middleware: M = middleware
        #: The request's WSGI environ.
        self.environ: WSGIEnvironment = environ

    def on_request(self) -> Answer | None:
        """Called before the app, with :attr:`environ` ready to read and extend.

        Return None to go on to the app, or an :data:`~middleware.wsgi.Answer`,
        ``(status, headers, body)``, to answer the request yourself: the app is not
        called, the server gets your status and headers and your body as is (or
        nothing on HEAD, 1xx, 204 and 304), and no other hook runs. If it raises,
        :meth:`on_error`, :meth:`recover` and :meth:`on_close` run as for an error
        of the app.
        """
        return None

    def on_start(self, status: str, headers: Headers) -> BodyFilter | None:
        """Called when the app calls ``start_response``, before the server is.

        *headers* is a copy of the app's list: change it in place. Call
        :meth:`replace_status` to send another status. Return a :class:`BodyFilter`
        to change the body (only with :attr:`filters` set, and only when
        :attr:`filterable`), else None. Runs again when the app replaces its headers
        with ``exc_info`` before anything was sent: keep per-response state here.
        """
        return None

    def replace_status(self, status: str) -> None:
        """From :meth:`on_start`: send *status* instead of the app's."""
        self._replaced = status

    def on_error(self, exc: BaseException) -> None:
        """Called with the exception raised by :meth:`on_request`, the app, the
        iteration, a filter or the app iterable's ``close()``. It propagates (or
        :meth:`recover` answers it) after this returns; if this raises, that is
        logged and the original goes on."""

    def recover(self, exc: Exception) -> tuple[str, Headers, bytes] | None:
        """Called after :meth:`on_error` when an ``Exception`` came before any byte
        of the body was sent. Return ``(status, headers, body)`` to send instead, or
        None to let the exception propagate.

        The proxy does the protocol: it calls the server's ``start_response`` with
        your status and headers *and* ``exc_info`` (an outer layer or the server
        replaces what it stored), closes the app's iterable and sends your body
        (nothing on HEAD, 1xx, 204, 304). ``GeneratorExit``, ``KeyboardInterrupt``
        and ``SystemExit`` are never offered.
        """
        return None

    def on_close(self, outcome: Outcome) -> None:
        """Called once when the response is over, after the app's iterable was
        closed (or after the app raised without returning one), with what went out.
        If it raises while an error propagates, it is logged, never masking it."""


# -- choosing a proxy, once per layer --------------------------------------------------


def plan(middleware: Middleware) -> str:
    """The proxy a layer of *middleware* uses: ``"answer"``, ``"direct"``,
    ``"start"``, ``"close"``, ``"body"`` or ``"filter"`` (see the module's table).
    Decided here only, from the hooks the responder class overrides."""
    responder = middleware.responder
    if responder is None:
        if type(middleware).answer is Middleware.answer:
            raise TypeError(
                f"{type(middleware).__name__} sets no responder class and "
                "overrides neither answer() nor __call__"
            )
        return "answer"
    if not (isinstance(responder, type) and issubclass(responder, Responder)):
        raise TypeError(
            f"{type(middleware).__name__}.responder must be a Responder subclass, "
            f"got {responder!r}"
        )
    if responder.filters:
        return "filter"
    if responder._sees_error or responder.counts_body:
        return "body"
    if responder._sees_close:
        return "close"
    if responder._sees_start:
        return "start"
    return "direct"


class Middleware:
    """Base of every middleware: checked configuration which, called with a WSGI
    app, returns the wrapped app (so it is a PasteDeploy filter as it is).

    A subclass checks its options in ``__init__`` and names its per-request
    :attr:`responder` class; or, when it only answers some requests itself (a 401, a
    static file) and passes the others on untouched, overrides :meth:`answer` and
    sets no responder: its layer makes no per-request object.
    """

    #: The per-request :class:`Responder` class.
    responder: ClassVar[type[Responder[Any]] | None] = None
    #: Attribute names whose values :func:`repr` hides (secrets).
    secret_options: ClassVar[frozenset[str]] = frozenset()

    def __call__(self, app: WSGIApplication) -> WSGIApplication:
        if not callable(app):
            raise TypeError(
                f"{type(self).__name__} wraps a WSGI application (a callable), "
                f"got {app!r}"
            )
        kind = plan(self)
        if kind == "answer":
            if self.answers_under:
                return _ScopedAnswerLayer(app, self)
            return _AnswerLayer(app, self)
        if kind == "direct":
            return _DirectLayer(app, self)
        if kind == "start":
            return _StartLayer(app, self)
        proxy = {"close": _Close, "body": _Body, "filter": _Filter}[kind]
        return _ProxyLayer(app, self, proxy)

    @property
    def answers_under(self) -> str | None:
        """(A middleware without a :attr:`responder`.) A ``PATH_INFO`` prefix outside
        which :meth:`answer` always returns None, so the layer passes those requests
        on without calling it. None (or ``""``, the default): every request is
        offered. Read once, when an app is wrapped."""
        return None

    def answer(self, environ: WSGIEnvironment) -> Answer | None:
        """(A middleware without a :attr:`responder`.) Called for every request
        before the app: return None to pass it on untouched, or an
        :data:`~middleware.wsgi.Answer`, sent by
        :func:`~middleware.wsgi.send_answer`."""
        return None

    def __repr__(self) -> str:
        options = ", ".join(
            f"{name}={'***' if name in self.secret_options else repr(value)}"
            for name, value in vars(self).items()
            if not name.startswith("_")
        )
        return f"{type(self).__name__}({options})"


# -- the layers: the wrapped apps ------------------------------------------------------


class Layer:
    """A WSGI app made by applying a :class:`Middleware` to an inner app.

    :attr:`app` is the inner app and :attr:`middleware` the configuration, so a stack
    can be walked and printed (:func:`middleware.describe`). Made by
    ``Middleware.__call__``; its subclasses are the proxies of the module's table.
    """

    __slots__ = ("app", "middleware")

    def __init__(self, app: WSGIApplication, middleware: Middleware) -> None:
        self.app = app
        self.middleware = middleware

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        raise NotImplementedError  # pragma: no cover - every layer is a subclass

    def __repr__(self) -> str:
        return f"{self.middleware!r}({self.app!r})"


class _AnswerLayer(Layer):
    """A middleware that only answers requests: no per-request object; a request
    it does not answer costs one call."""

    __slots__ = ("_answer",)

    def __init__(self, app: WSGIApplication, middleware: Middleware) -> None:
        super().__init__(app, middleware)
        self._answer = middleware.answer

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        answer = self._answer(environ)
        if answer is None:
            return self.app(environ, start_response)
        return send_answer(answer, environ, start_response)


class _ScopedAnswerLayer(_AnswerLayer):
    """An answering layer whose middleware answers only under a path prefix: a
    request outside it goes straight to the app."""

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


class _DirectLayer(Layer):
    """A responder with ``on_request`` only: the app gets the server's own
    ``start_response`` and the server the app's own iterable."""

    __slots__ = ("_responder",)

    def __init__(self, app: WSGIApplication, middleware: Middleware) -> None:
        super().__init__(app, middleware)
        self._responder: type[Responder[Any]] = middleware.responder  # type: ignore[assignment]

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        answer = self._responder(self.middleware, environ).on_request()
        if answer is not None:
            return send_answer(answer, environ, start_response)
        return self.app(environ, start_response)


class _StartLayer(_DirectLayer):
    """A responder that sees status and headers only: the app gets a closure around
    the server's ``start_response``; the server gets the app's own iterable."""

    __slots__ = ("_request",)

    def __init__(self, app: WSGIApplication, middleware: Middleware) -> None:
        super().__init__(app, middleware)
        self._request = self._responder._sees_request

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        responder = self._responder(self.middleware, environ)
        if self._request:
            answer = responder.on_request()
            if answer is not None:
                return send_answer(answer, environ, start_response)
        on_start = responder.on_start
        started = False

        def start(
            status: str, headers: Headers, exc_info: OptExcInfo = None
        ) -> WriteCallable:
            nonlocal started
            restart = exc_info is not None and exc_info[1] is not None
            if started and not restart:
                raise RuntimeError(_TWICE)
            started = True
            headers = list(headers)  # never change a list the app may reuse
            if on_start(status, headers) is not None:
                raise TypeError(_NO_FILTERS.format(type(responder).__name__))
            replaced = responder._replaced
            if replaced is not None:
                status = replaced
                responder._replaced = None
            if restart:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        return self.app(environ, start)


class _ProxyLayer(Layer):
    """A responder that needs to see the end of the response: a proxy object per
    request (:class:`_Close`, :class:`_Body` or :class:`_Filter`)."""

    __slots__ = ("_responder", "_proxy")

    def __init__(
        self, app: WSGIApplication, middleware: Middleware, proxy: type[_Close]
    ) -> None:
        super().__init__(app, middleware)
        self._responder: type[Responder[Any]] = middleware.responder  # type: ignore[assignment]
        self._proxy = proxy

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        responder = self._responder(self.middleware, environ)
        return self._proxy(responder, start_response).run(self.app, environ)


_TWICE = (
    "start_response() was called a second time without exc_info; PEP 3333 allows "
    "a second call only to replace the headers after an error, with "
    "exc_info=sys.exc_info()"
)
_NO_FILTERS = (
    "{}.on_start() returned a body filter; set filters = True on the responder "
    "class so its layer can filter bodies"
)


def _not_iterable(result: object) -> TypeError:
    return TypeError(
        f"PEP 3333: an application must return an iterable of bytestrings, got "
        f"{type(result).__name__} ({result!r:.80})"
    )


def _not_bytes(data: object) -> TypeError:
    return TypeError(
        f"PEP 3333: a response body is made of bytestrings (bytes), got "
        f"{type(data).__name__} ({data!r:.80}); encode text before yielding or "
        "writing it"
    )


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


# -- the proxies of one response -------------------------------------------------------


class _Close:
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

    def __init__(self, responder: Responder[Any], start_response: StartResponse):
        self._responder = responder
        self._server_start = start_response

    # -- the app's call ----------------------------------------------------------------

    def run(self, app: WSGIApplication, environ: WSGIEnvironment) -> Iterable[bytes]:
        """Run *app* for this request; return what the server should iterate."""
        responder = self._responder
        if responder._sees_request:
            try:
                answer = responder.on_request()
            except BaseException as exc:
                body = self._caught(exc)
                if body is None:
                    self._end_early()
                    raise
                self._result = [body]
                return self
            if answer is not None:
                return send_answer(answer, environ, self._server_start)
        try:
            result = app(environ, self.start_response)
            if result.__class__ is not list and not hasattr(result, "__iter__"):
                raise _not_iterable(result)
        except BaseException as exc:
            body = self._caught(exc)
            if body is None:
                self._end_early()
                raise
            self._result = [body]
            return self
        if self._filters:
            return self._respond(result, environ)
        # What the server gets for the app's result: this proxy, or the app's own
        # file wrapper with this proxy's close chained (inlined: one frame less on
        # every request of a close or body layer, bench_core).
        if self.status is not None:
            wrapper = environ.get("wsgi.file_wrapper")
            # uWSGI's file_wrapper is a function, not a class: its results are
            # iterated like any iterable.
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
        raise NotImplementedError  # pragma: no cover - only _Filter calls it

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
            raise RuntimeError(_TWICE)
        responder = self._responder
        if responder._sees_start:
            headers = list(headers)  # never change a list the app may reuse
            if self._filters:  # the filter proxy decides its filter here
                status = self._on_start(status, headers)
            else:  # inlined: the close and body proxies' usual path
                if responder.on_start(status, headers) is not None:
                    raise TypeError(_NO_FILTERS.format(type(responder).__name__))
                replaced = responder._replaced
                if replaced is not None:
                    responder._replaced = None
                    status = replaced
        self.status, self.headers = status, headers
        self._write = self._server_start(status, headers)
        return self.write

    def _restart(
        self, status: str, headers: Headers, exc_info: ExcInfo
    ) -> WriteCallable:
        """start_response with exc_info: replace the headers, or re-raise."""
        if self.headers_sent:
            raise exc_info[1].with_traceback(exc_info[2])
        if self._responder._sees_start:
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
            raise TypeError(_NO_FILTERS.format(type(responder).__name__))
        replaced = responder._replaced
        if replaced is None:
            return status
        responder._replaced = None
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
        responder = self._responder
        if self.error is not None:
            self._end()
        elif responder._sees_close:  # _end's usual path, inlined (bench_core)
            responder.on_close(
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

    def _record(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        if self._responder._sees_error:
            try:
                self._responder.on_error(exc)
            except Exception:
                log.exception("%s.on_error() raised", type(self._responder).__name__)

    def _caught(self, exc: BaseException) -> bytes | None:
        """An error before the app returned: record it, and ask ``recover`` for a
        replacement; its body, or None to re-raise. Called inside the ``except``."""
        self._record(exc)
        if not self._responder._sees_error:
            return None
        return self._replace(exc)

    def _replace(self, exc: BaseException) -> bytes | None:
        """Ask ``recover`` for a replacement response; if one comes, give the server
        its status and headers with exc_info, and return its body."""
        if self.headers_sent or not isinstance(exc, Exception):
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
        self._server_start(status, headers, sys.exc_info())
        self.status, self.headers = status, headers
        self._replaced_body()
        if body_forbidden(responder.environ.get("REQUEST_METHOD"), status):
            return b""
        return body

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
        """Run on_close with the outcome; if it raises while another error
        propagates, log it instead of masking that error. Then forget the error:
        its traceback holds this proxy's frames, a cycle once the server let go."""
        responder = self._responder
        error = self.error
        if error is None:  # the usual path: no try, the outcome built here
            if responder._sees_close:
                responder.on_close(
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
            return
        try:
            if responder._sees_close:
                responder.on_close(self.outcome())
        except BaseException:
            log.exception(
                "%s.on_close() raised while another error propagated",
                type(responder).__name__,
            )
        finally:
            self.error = None


class _Body(_Close):
    """The response of a responder that sees every chunk (errors while iterating,
    byte counts): the server iterates this object's generator over the body."""

    _counts = True

    def _file_size(self, result: object) -> int | None:
        return _file_size(result, self.headers)

    def write(self, data: bytes) -> None:
        """The ``write()`` the app is given: counted (and filtered) like a chunk."""
        if data.__class__ is not bytes and not isinstance(data, bytes):
            raise _not_bytes(data)
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
                    raise _not_bytes(data)
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
            self._record(exc)
            body = self._replace(exc) if self._responder._sees_error else None
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


class _Filter(_Body):
    """The response of a responder that may change the body: each response's
    :class:`BodyFilter` is the one ``on_start`` returned (None: sent as is)."""

    _filters = True

    # Declined at a start before the app returned, so the server may hold the app's
    # body as it was: a later exc_info replacement is never filtered.
    _passthrough = False

    def _respond(
        self, result: Iterable[bytes], environ: WSGIEnvironment
    ) -> Iterable[bytes]:
        """What the server gets for the app's *result* (called by ``run``)."""
        if self._filter is not None:  # filtered: never handed on as it is
            self._result = result
            return self
        if self.status is not None:
            # Started and declined: the server may get the body as it is, so a
            # later replacement is not filtered either. With nothing else to see,
            # it gets the app's own iterable and this proxy stays out.
            self._passthrough = True
            responder = self._responder
            if not (
                responder._sees_error or responder._sees_close or responder.counts_body
            ):
                return result
            wrapper = environ.get("wsgi.file_wrapper")
            if (
                isinstance(wrapper, type)
                and isinstance(result, wrapper)
                and self._hand_on_file(result)
            ):
                return result
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
        self._filter = body_filter
        if body_filter is not None:
            remove_header(headers, "Content-Length")
        replaced = responder._replaced
        if replaced is None:
            return status
        responder._replaced = None
        return replaced

    def _restart(
        self, status: str, headers: Headers, exc_info: ExcInfo
    ) -> WriteCallable:
        kept = self._filter
        try:
            return super()._restart(status, headers, exc_info)
        except BaseException:  # the server refused: the old filter stands
            self._filter = kept
            raise

    def _replaced_body(self) -> None:
        self._filter = None
