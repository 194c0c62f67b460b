"""The body of an error catcher's 500: :class:`ErrorPage` (what a renderer is
given), the built-in HTML and JSON pages, and the rules that keep secrets off a
debug page (:data:`SECRET_NAMES`, :func:`safe_environ`)."""

from __future__ import annotations

import html
import json
import linecache
import re
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from ..wsgi import ExcInfo, WSGIEnvironment

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
#: The patterns :func:`safe_environ` hides by default.
DEFAULT_SECRETS = secret_patterns(SECRET_NAMES)
_HIDDEN = "[hidden]"
#: The plain body sent when a renderer fails.
FALLBACK = ("text/plain; charset=utf-8", b"500 Internal Server Error\n")


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
    secrets: tuple[re.Pattern[str], re.Pattern[str]] = DEFAULT_SECRETS


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
    secrets: tuple[re.Pattern[str], re.Pattern[str]] = DEFAULT_SECRETS,
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
