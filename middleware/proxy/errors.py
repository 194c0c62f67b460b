"""The proxy of a responder that sees only errors: :class:`Errors`, a
:class:`~middleware.proxy.body.Body` whose responder is made when the first error
comes, so a normal request makes none (ErrorCatcher; ``bench_errors.py``)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from ..wsgi import (
    Headers,
    OptExcInfo,
    StartResponse,
    WriteCallable,
    WSGIApplication,
    WSGIEnvironment,
)
from .body import Body
from .misuse import TWICE, not_iterable
from .responder import Responder
from .sizes import listed_size


class Errors(Body):
    """The response of a responder whose class overrides only error hooks
    (``on_error``, ``recover``, ``on_recovered``) and keeps Responder's own
    construction (``__new__``, ``__init__``: they only store the two arguments):
    nothing but an error reads it, so it is made then, with the same arguments, at
    most once. Otherwise a :class:`Body`: the same protocol, without the reads of
    hooks this responder cannot have (``on_request``, ``on_start``, ``release``,
    ``on_close``; ``_hooked`` tells Close's own methods)."""

    _hooked = False

    def __init__(
        self,
        responder: type[Responder[Any]],
        middleware: Any,
        environ: WSGIEnvironment,
        start_response: StartResponse,
    ) -> None:
        self._make = responder
        self._middleware = middleware
        self._environ = environ
        self._server_start = start_response

    @functools.cached_property
    def _responder(self) -> Responder[Any]:  # type: ignore[override]
        return self._make(self._middleware, self._environ)

    def run(self, app: WSGIApplication, environ: WSGIEnvironment) -> Iterable[bytes]:
        """As :meth:`Close.run`, for a responder that sees only errors."""
        # Inline, as in Close.run: one frame less per request (bench_errors).
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
        if self.status is not None:
            # A list of bytestrings: nothing in it can fail. (One chunk, the usual
            # case, tested inline.)
            if (
                result.__class__ is list
                and len(result) == 1
                and result[0].__class__ is bytes
            ) or listed_size(result) is not None:
                return result
            return self._handed_back(result, environ)
        self._result = result
        return self

    def start_response(
        self, status: str, headers: Headers, exc_info: OptExcInfo = None
    ) -> WriteCallable:
        """:meth:`Close.start_response` without its start hook's test: this runs on
        every request of an ErrorCatcher (bench_errors)."""
        if exc_info is not None and exc_info[1] is not None:
            return self._restart(status, headers, exc_info)
        if self.status is not None:
            raise RuntimeError(TWICE)
        self._write = self._server_start(status, headers)
        self.status, self.headers = status, headers
        return self.write
