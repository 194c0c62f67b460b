"""Error catching: :class:`ErrorCatcher` turns a crash into a correct 500 and reports
it.

Before any byte of the body is sent, an exception becomes a fresh ``500 Internal
Server Error``: new headers (never the app's), an exact ``Content-Length``, and
``exc_info`` passed to ``start_response``, so an outer layer or the server replaces
the status it stored. The app's iterable is closed first. After bytes were sent the
exception is reported and re-raised: the server aborts the connection and the
client sees a truncated response, never an error page glued into a body that may be
JSON. The protocol work is the core's (:meth:`middleware.proxy.Responder.recover`);
this module decides what to say and whom to tell.

No interactive debugger is shipped: ``debug=True`` renders a read-only traceback.
"""

from __future__ import annotations

import html
import json
import linecache
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar

from .http import escape, prefers_json
from .options import Dotted, Flag, Names, Option
from .proxy import Middleware, Responder
from .wsgi import REQUEST_ID_KEY, ExcInfo, Headers, WSGIEnvironment

__all__ = [
    "REQUEST_ID_KEY",
    "SECRET_NAMES",
    "SECRET_WORDS",
    "ErrorCatcher",
    "ErrorPage",
]

log = logging.getLogger("middleware.errors")

#: A reporter: called with ``(exc_info, environ)`` for every caught error.
Reporter = Callable[[ExcInfo, WSGIEnvironment], object]

#: Name fragments (case-insensitive) of environ keys and query parameters whose
#: values a debug page never shows: credentials and anything that looks like a
#: secret. Found anywhere in a name. ``ErrorCatcher(secret_names=...)`` adds more.
SECRET_NAMES: tuple[str, ...] = (
    "auth", "bearer", "cookie", "credential", "csrf", "xsrf", "pass", "secret",
    "token", "session", "signature", "private", "nonce", "apikey",
)  # fmt: skip
#: Short fragments, found only as whole words of a name (between ``_``, ``-``,
#: ``.`` or its ends), so that ``X-Signal`` or ``discard=`` stay visible.
SECRET_WORDS: tuple[str, ...] = (
    "key", "sig", "otp", "pwd", "jwt", "ssn", "dsn", "cvv", "pin", "card", "cert",
    "salt",
)  # fmt: skip


def secret_patterns(
    names: Iterable[str], words: Iterable[str] = SECRET_WORDS
) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The pattern that finds a secret-looking name (an environ key, a query
    parameter's name), and the pattern of query parameters (in QUERY_STRING,
    REQUEST_URI, RAW_URI, a Referer) whose names are looked at."""
    fragments = "|".join(re.escape(name) for name in names)
    whole = "|".join(re.escape(word) for word in words)
    return (
        re.compile(rf"{fragments}|(?:^|[_.\-])(?:{whole})(?:$|[_.\-])", re.IGNORECASE),
        _PARAMETER,
    )


# A query parameter: what follows ?, & or ; up to its =, then its value. Names
# hold no / or ?, so a path is never read as part of a name.
_PARAMETER = re.compile(r"(^|[?&;])([^=&;#?/]*)=([^&;#]*)")
_SECRET_KEY, _SECRET_PARAM = secret_patterns(SECRET_NAMES)
_HIDDEN = "[hidden]"
_FALLBACK = ("text/plain; charset=utf-8", b"500 Internal Server Error\n")


@dataclass(frozen=True)
class ErrorPage:
    """What a renderer is given to build the body of a 500."""

    #: The caught exception, as ``sys.exc_info()`` gave it.
    exc_info: ExcInfo
    #: The request's environ (read it; secrets are not redacted here).
    environ: WSGIEnvironment
    #: ``environ["middleware.request_id"]``, if an outer layer set one.
    request_id: str | None
    #: Whether the catcher runs with ``debug=True``.
    debug: bool
    #: Whether the client's ``Accept`` prefers JSON to HTML.
    wants_json: bool
    #: What :func:`safe_environ` hides (:func:`secret_patterns`).
    secrets: tuple[re.Pattern[str], re.Pattern[str]] = (_SECRET_KEY, _SECRET_PARAM)


# -- the built-in pages

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:2em auto;max-width:60em;"
    "padding:0 1em;color:#222}code,pre{font:14px/1.4 ui-monospace,monospace}"
    "pre{background:#f4f4f4;padding:.5em;overflow-x:auto}.line{background:#fde2e2}"
    "table{border-collapse:collapse}td{border-top:1px solid #ddd;padding:2px 8px;"
    "vertical-align:top;font:13px ui-monospace,monospace;word-break:break-all}"
)


def _frames(tb: TracebackType | None) -> list[tuple[str, int, str, list[str], int]]:
    """(file, line, function, source lines, index of the failing one) per frame,
    skipping frames that set ``__traceback_hide__``."""
    frames = []
    while tb is not None:
        frame = tb.tb_frame
        hidden = frame.f_locals.get("__traceback_hide__") or frame.f_globals.get(
            "__traceback_hide__"
        )
        if not hidden:
            filename, lineno = frame.f_code.co_filename, tb.tb_lineno
            first = max(lineno - 3, 1)
            lines = [
                linecache.getline(filename, number, frame.f_globals).rstrip("\n")
                for number in range(first, lineno + 3)
            ]
            frames.append(
                (filename, lineno, frame.f_code.co_name, lines, lineno - first)
            )
        tb = tb.tb_next
    return frames


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and the ones it was raised from or during, oldest first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return chain[::-1]


def safe_environ(
    environ: WSGIEnvironment,
    secrets: tuple[re.Pattern[str], re.Pattern[str]] = (_SECRET_KEY, _SECRET_PARAM),
) -> list[tuple[str, str]]:
    """The environ as (key, value) strings for a debug page, sorted, with the
    values of credential headers and secret-looking keys replaced (*secrets*:
    :func:`secret_patterns`)."""
    secret_key, secret_param = secrets
    shown = []
    for key in sorted(environ, key=str):
        value = environ[key]
        if secret_key.search(str(key)):
            text = _HIDDEN
        elif isinstance(value, str):
            text = secret_param.sub(  # ?token=... in URIs
                lambda m: (
                    f"{m[1]}{m[2]}={_HIDDEN}" if secret_key.search(m[2]) else m[0]
                ),
                value,
            )
        else:
            try:
                text = repr(value)
            except Exception:  # a broken __repr__ must not cost the page
                text = f"<{type(value).__name__} object: repr() failed>"
        shown.append((str(key), text[:500]))
    return shown


def _summary(exc: BaseException) -> str:
    """``Type: message``, as :mod:`traceback` writes it, even for an exception
    whose ``str()`` raises (then ``<exception str() failed>``)."""
    try:
        message = str(exc)
    except Exception:
        message = "<exception str() failed>"
    name = type(exc).__qualname__
    return f"{name}: {message}" if message else name


def render_json(page: ErrorPage) -> bytes:
    """The JSON body: error, status and request id; in debug also the exception
    and its traceback (frames hidden as on the HTML page)."""
    data: dict[str, Any] = {
        "error": "Internal Server Error",
        "status": 500,
        "request_id": page.request_id,
    }
    if page.debug:
        exc = page.exc_info[1]
        data["exception"] = _summary(exc)
        data["traceback"] = [
            {
                "exception": _summary(item),
                "frames": [
                    {"file": f, "line": n, "function": fn, "code": src[i].strip()}
                    for f, n, fn, src, i in _frames(item.__traceback__)
                ],
            }
            for item in _chain(exc)
        ]
    return json.dumps(data).encode()


def render_html(page: ErrorPage) -> bytes:
    """The HTML body: a short page with the request id; in debug also the
    traceback (every value escaped) and the environ with secrets hidden."""
    esc = html.escape
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        "<title>500 Internal Server Error</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Internal Server Error</h1>",
        "<p>The server hit an error and could not finish your request.</p>",
    ]
    if page.request_id:
        parts.append(f"<p>Request id: <code>{esc(page.request_id)}</code></p>")
    if page.debug:
        for exc in _chain(page.exc_info[1]):
            parts.append(f"<h2>{esc(_summary(exc))}</h2>")
            for filename, lineno, function, lines, index in _frames(exc.__traceback__):
                parts.append(
                    f"<p><code>{esc(filename)}</code>, line {lineno}, "
                    f"in <code>{esc(function)}</code></p><pre>"
                )
                for number, line in enumerate(lines):
                    text = esc(line) or " "
                    parts.append(
                        f'<span class="line">{text}</span>\n'
                        if number == index
                        else f"{text}\n"
                    )
                parts.append("</pre>")
        parts.append("<h2>Request environ</h2><table>")
        for key, value in safe_environ(page.environ, page.secrets):
            parts.append(f"<tr><td>{esc(key)}</td><td>{esc(value)}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts).encode()


# -- the middleware --------------------------------------------------------------------


def _exception(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, BaseException)


class _Catching(Responder["ErrorCatcher"]):
    """Reports every error and answers those that came before any byte went out."""

    def on_error(self, exc: BaseException) -> None:
        self.middleware.report(exc, self.environ)

    def recover(self, exc: Exception) -> tuple[str, Headers, bytes] | None:
        return self.middleware.error_response(exc, self.environ)


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
            else (_SECRET_KEY, _SECRET_PARAM)
        )

    def report(self, exc: BaseException, environ: WSGIEnvironment) -> None:
        """Log one caught error and run the reporters (expected types and
        ``BaseException``\\ s that are not ``Exception``\\ s are not reported)."""
        if not isinstance(exc, Exception) or isinstance(exc, self.expected):
            return
        exc_info: ExcInfo = (type(exc), exc, exc.__traceback__)  # type: ignore[assignment]
        method = environ.get("REQUEST_METHOD", "-")
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        request_id = environ.get(REQUEST_ID_KEY)
        # The request's values escaped as the access log escapes them: a path
        # with CR, LF or ESC in it must not forge a line of the server's log.
        log.error(
            "%s %s raised %s (request id %s)",
            escape(method),
            escape(path),
            type(exc).__qualname__,
            escape(request_id or "-"),
            exc_info=exc_info,
            extra={
                "request_id": request_id,
                "http.request.method": method,
                "url.path": path,
            },
        )
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
            content_type, body = _FALLBACK
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
