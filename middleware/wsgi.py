"""What every module of the package shares about WSGI itself (PEP 3333): the types,
every environ key the package sets, status and header helpers, and the small status
pages a middleware answers with.

This module depends on nothing else in the package.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TypeAlias
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "COMPRESS_KEY",
    "Answer",
    "ExcInfo",
    "Headers",
    "OptExcInfo",
    "REQUEST_ID_KEY",
    "SESSION_KEY",
    "StartResponse",
    "WSGIApplication",
    "WSGIEnvironment",
    "WriteCallable",
    "add_vary",
    "body_forbidden",
    "get_header",
    "remove_header",
    "send_answer",
    "status_code",
    "status_page",
    "status_pages",
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

# -- the environ keys the package sets (each documented on its middleware's page) ----

#: The request's id, set by :class:`~middleware.AccessLog`, read by the error pages.
REQUEST_ID_KEY = "middleware.request_id"
#: The request's :class:`~middleware.session.SessionData`, set by ``Session``.
SESSION_KEY = "middleware.session"
#: Set to False by an app to keep its response uncompressed (``Compress``).
COMPRESS_KEY = "middleware.compress"


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


def status_page(status: str, *extra: tuple[str, str]) -> Answer:
    """A small plain-text answer, ``"404 Not Found\\n"``, with an exact length and
    *extra* headers: what StaticFiles answers a refused path with. Build it once,
    at import or construction; :func:`send_answer` copies the headers it sends."""
    body = f"{status}\n".encode()
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        *extra,
    ]
    return status, headers, [body]


def status_pages(status: str, message: str) -> tuple[Answer, Answer]:
    """An error answer in two forms, ``(html, json)``, both ``no-store``: pick one
    with :func:`middleware.http.prefers_json`. Build them once, at import."""
    answers = []
    for content_type, body in (
        (
            "text/html; charset=utf-8",
            f"<!DOCTYPE html><html><head><title>{status}</title></head>"
            f"<body><h1>{status}</h1><p>{message}</p></body></html>",
        ),
        (
            "application/json",
            json.dumps({"error": status[4:], "status": int(status[:3])}),
        ),
    ):
        data = body.encode()
        headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
        ]
        answers.append((status, headers, [data]))
    return answers[0], answers[1]
