"""The configuration side: :class:`Middleware`, which wraps an app in a :class:`Layer`,
and :func:`plan`, which picks once, per layer, the proxy its responder needs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from ..wsgi import (
    Answer,
    Headers,
    OptExcInfo,
    StartResponse,
    WriteCallable,
    WSGIApplication,
    WSGIEnvironment,
    send_answer,
)
from .body import Body, Filter
from .close import Close
from .errors import Errors
from .misuse import NO_FILTERS, TWICE
from .responder import Responder

# -- choosing a proxy, once per layer --------------------------------------------------


def plan(middleware: Middleware) -> str:
    """The proxy a layer of *middleware* uses: ``"answer"``, ``"direct"``,
    ``"start"``, ``"close"``, ``"errors"``, ``"body"`` or ``"filter"`` (see the
    module's table).
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
    if (
        responder.sees_error
        and not (responder.sees_request or responder.sees_start)
        and not (responder.sees_close or responder.counts_body)
        and responder.__init__ is Responder.__init__
        and responder.__new__ is Responder.__new__
        and type(responder).__call__ is type(Responder).__call__
    ):
        return "errors"  # made by Responder's own construction: nothing to miss
    if responder.sees_error or responder.counts_body:
        return "body"
    if responder.sees_close:
        return "close"
    if responder.sees_start:
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
        if kind == "errors":
            return _ErrorsLayer(app, self)
        proxy = {"close": Close, "body": Body, "filter": Filter}[kind]
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
            if not name.startswith("_") and name != "responder"
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
        self._request = self._responder.sees_request

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
                raise RuntimeError(TWICE)
            headers = list(headers)  # never change a list the app may reuse
            if on_start(status, headers) is not None:
                raise TypeError(NO_FILTERS.format(type(responder).__name__))
            replaced = responder.replaced_status
            if replaced is not None:
                status = replaced
                responder.replaced_status = None
            if restart:
                return start_response(status, headers, exc_info)
            write = start_response(status, headers)
            started = True  # once the server accepted it: it may refuse a status
            return write

        return self.app(environ, start)


class _ProxyLayer(Layer):
    """A responder that needs to see the end of the response: a proxy object per
    request (:class:`Close`, :class:`Body` or :class:`Filter`)."""

    __slots__ = ("_responder", "_proxy")

    def __init__(
        self, app: WSGIApplication, middleware: Middleware, proxy: type[Close]
    ) -> None:
        super().__init__(app, middleware)
        self._responder: type[Responder[Any]] = middleware.responder  # type: ignore[assignment]
        self._proxy = proxy

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        responder = self._responder(self.middleware, environ)
        return self._proxy(responder, start_response).run(self.app, environ)


class _ErrorsLayer(_DirectLayer):
    """A responder that sees only errors: an :class:`Errors` proxy per request,
    which makes the responder only if an error comes."""

    __slots__ = ()

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        proxy = Errors(self._responder, self.middleware, environ, start_response)
        return proxy.run(self.app, environ)
