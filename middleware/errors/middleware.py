"""The :class:`ErrorCatcher` middleware: which errors it answers, how it reports
them, and what became of each (the pages themselves are in :mod:`.pages`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from ..http import escape, prefers_json
from ..options import Dotted, Flag, Names, Option
from ..proxy import Middleware, Responder
from ..wsgi import REQUEST_ID_KEY, ExcInfo, Headers, WSGIEnvironment
from .pages import (
    DEFAULT_SECRETS,
    FALLBACK,
    SECRET_NAMES,
    ErrorPage,
    render_html,
    render_json,
    secret_patterns,
)

log = logging.getLogger("middleware.errors")

#: What became of a reported error, in its log line, in the record's ``outcome``
#: attribute and in ``environ["middleware.errors.outcome"]`` for the reporters.
#: The client got this layer's 500.
ANSWERED = "answered 500"
#: The server (or a test client that re-raises any ``exc_info``) refused the 500's
#: headers; the error went on to it, and it answers or aborts as it does.
REFUSED = "the server refused the 500; the error went on to it"
#: Bytes of the body had gone out (or the server was closing it): no 500 was possible.
AFTER_START = "after the response started; the error went on to the server"
#: Building the 500 itself failed; the error went on to the server.
NOT_ANSWERED = "no 500 could be built; the error went on to the server"
#: The environ key a reporter reads the outcome from.
OUTCOME_KEY = "middleware.errors.outcome"

#: A reporter: called with ``(exc_info, environ)`` for every caught error.
Reporter = Callable[[ExcInfo, WSGIEnvironment], object]


# -- the middleware --------------------------------------------------------------------


def _exception(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, BaseException)


class _Catching(Responder["ErrorCatcher"]):
    """Reports every error once, saying what became of it: answered with a 500,
    refused by the server (which then has the error), or cut short after the
    response had started."""

    reported: BaseException | None = None

    def on_error(self, exc: BaseException) -> None:
        if not self.recovering:  # no 500 is possible: the body had started
            self._report(exc, AFTER_START)

    def recover(self, exc: Exception) -> tuple[str, Headers, bytes] | None:
        try:
            return self.middleware.error_response(exc, self.environ)
        except BaseException:
            self._report(exc, NOT_ANSWERED)
            raise

    def on_recovered(self, exc: Exception, refused: BaseException | None) -> None:
        self._report(exc, ANSWERED if refused is None else REFUSED)

    def _report(self, exc: BaseException, outcome: str) -> None:
        if exc is not self.reported:
            self.reported = exc
            self.middleware.report(exc, self.environ, outcome)


class ErrorCatcher(Middleware):
    """Catch what the app raises; answer 500 when the headers can still change.

    :param debug: render the traceback (frames, source lines, the environ with
        secrets hidden) in the page. Never in production: it shows code and data.
    :param on_error: reporters, each called as ``reporter(exc_info, environ)`` for
        every caught error, in its own ``try``: one that raises is logged and the
        others still run.
    :param expected: exception types re-raised untouched, neither reported nor
        answered (a framework's control-flow exceptions).
    :param render: ``render(page: ErrorPage) -> (content_type, body_bytes)`` for
        your own pages; or subclass and override :meth:`render`. If it raises, a
        plain-text 500 goes out and the failure is logged.
    :param secret_names: more name fragments (case-insensitive) whose values the
        debug page hides, beside :data:`SECRET_NAMES` (``["tenant_id"]``).

    Every caught error is logged to ``middleware.errors`` at ERROR with the
    traceback, the method, the path and the request id (also as the record's
    ``request_id``, ``http.request.method`` and ``url.path`` attributes).
    ``GeneratorExit``, ``KeyboardInterrupt`` and ``SystemExit`` are never caught.

    Place it inside :class:`AccessLog` (after it in ``compose()``), so the access
    log records the 500 this layer sends.
    """

    responder = _Catching
    #: The declarations each option is checked (and read from ini files) by.
    options: ClassVar[dict[str, Option[Any]]] = {
        "debug": Flag(),
        "on_error": Dotted(many=True, expects="a list or tuple of callables"),
        "expected": Dotted(many=True, expects="exception classes", item=_exception),
        "render": Dotted(none=True),
        "secret_names": Names(
            lambda name: isinstance(name, str) and name != "",
            expects="a list of name fragments",
        ),
    }

    def __init__(
        self,
        debug: bool = False,
        on_error: Iterable[Reporter] = (),
        expected: type[BaseException] | Iterable[type[BaseException]] = (),
        render: Callable[[ErrorPage], tuple[str, bytes]] | None = None,
        secret_names: Iterable[str] = (),
    ) -> None:
        options = self.options
        self.debug: bool = options["debug"].check("debug", debug)
        self.on_error: tuple[Reporter, ...] = options["on_error"].check(
            "on_error", on_error
        )
        types = (expected,) if isinstance(expected, type) else expected
        self.expected: tuple[type[BaseException], ...] = options["expected"].check(
            "expected", types if isinstance(types, list | tuple) else expected
        )
        self._render: Callable[[ErrorPage], tuple[str, bytes]] | None = options[
            "render"
        ].check("render", render)
        self.secret_names: tuple[str, ...] = options["secret_names"].check(
            "secret_names", secret_names
        )
        self._secrets = (
            secret_patterns((*SECRET_NAMES, *self.secret_names))
            if self.secret_names
            else DEFAULT_SECRETS
        )

    def report(
        self, exc: BaseException, environ: WSGIEnvironment, outcome: str = ANSWERED
    ) -> None:
        """Log one caught error with its *outcome* (what the client got: one of
        :data:`ANSWERED`, :data:`REFUSED`, :data:`AFTER_START`,
        :data:`NOT_ANSWERED`) and run the reporters. Expected types and
        ``BaseException``\\ s that are not ``Exception``\\ s are not reported."""
        if not isinstance(exc, Exception) or isinstance(exc, self.expected):
            return
        exc_info: ExcInfo = (type(exc), exc, exc.__traceback__)  # type: ignore[assignment]
        method = environ.get("REQUEST_METHOD", "-")
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        request_id = environ.get(REQUEST_ID_KEY)
        # The request's values escaped as the access log escapes them: a path
        # with CR, LF or ESC in it must not forge a line of the server's log.
        log.error(
            "%s %s raised %s (request id %s): %s",
            escape(method),
            escape(path),
            type(exc).__qualname__,
            escape(request_id or "-"),
            outcome,
            exc_info=exc_info,
            extra={
                "request_id": request_id,
                "http.request.method": method,
                "url.path": path,
                "outcome": outcome,
            },
        )
        environ[OUTCOME_KEY] = outcome
        for reporter in self.on_error:
            try:
                reporter(exc_info, environ)
            except Exception:
                log.exception("error reporter %r raised", reporter)

    def error_response(
        self, exc: Exception, environ: WSGIEnvironment
    ) -> tuple[str, Headers, bytes] | None:
        """The 500 to send for *exc*, or None for an expected type."""
        if isinstance(exc, self.expected):
            return None
        page = ErrorPage(
            exc_info=(type(exc), exc, exc.__traceback__),  # type: ignore[arg-type]
            environ=environ,
            request_id=environ.get(REQUEST_ID_KEY),
            debug=self.debug,
            wants_json=prefers_json(environ.get("HTTP_ACCEPT")),
            secrets=self._secrets,
        )
        try:
            content_type, body = self.render(page)
            if not isinstance(content_type, str) or not isinstance(body, bytes):
                raise TypeError(
                    f"a renderer returns (str, bytes), got "
                    f"({type(content_type).__name__}, {type(body).__name__})"
                )
        except Exception:
            log.exception("rendering the error page failed; sent a plain one")
            content_type, body = FALLBACK
        headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ]
        return "500 Internal Server Error", headers, body

    def render(self, page: ErrorPage) -> tuple[str, bytes]:
        """``(content_type, body)`` of the 500: the ``render`` option if given,
        else JSON when the client prefers it, else a small HTML page."""
        if self._render is not None:
            return self._render(page)
        if page.wants_json:
            return "application/json", render_json(page)
        return "text/html; charset=utf-8", render_html(page)
