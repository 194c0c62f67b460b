"""The access log's text formats: the built-in :data:`FORMATS`, the atoms, the
compiler of custom formats (:func:`compile_format`), the escaping of request
values (:func:`escape`), and the Apache and ISO 8601 time stamps (:class:`Clock`).

The atoms read a finished request through :class:`LoggedRequest`, which the
access log's per-request responder satisfies; this module knows nothing else of
the middleware.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import quote

from ..http import UNSAFE, escape
from ..wsgi import Headers, WSGIEnvironment, get_header

__all__ = [
    "ATOMS",
    "FORMATS",
    "UNSAFE",
    "Atom",
    "Clock",
    "LoggedRequest",
    "compile_format",
    "environ_key",
    "escape",
    "uri",
]

#: The built-in text formats, in the placeholder syntax custom formats use.
FORMATS = {
    "common": '{h} {l} {u} {t} "{r}" {s} {b}',
    "combined": '{h} {l} {u} {t} "{r}" {s} {b} "{f}" "{a}"',
}

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # fmt: skip


class Clock:
    """Apache's ``[10/Oct/2000:13:55:36 -0700]`` and ISO 8601, computed once per
    second (not per request), from an aware datetime so half-hour zones come out
    right. English month names whatever the locale."""

    __slots__ = ("utc", "_cached")

    def __init__(self, utc: bool) -> None:
        self.utc = utc
        self._cached: tuple[int, str, str] = (-1, "", "")

    def stamps(self, now: float) -> tuple[str, str]:
        second = int(now)
        cached = self._cached
        if cached[0] != second:
            moment = datetime.fromtimestamp(second, UTC)
            if not self.utc:
                moment = moment.astimezone()
            offset = moment.strftime("%z")
            apache = (
                f"[{moment.day:02d}/{_MONTHS[moment.month - 1]}/{moment.year}:"
                f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} {offset}]"
            )
            cached = self._cached = (second, apache, moment.isoformat())
        return cached[1], cached[2]


def environ_key(header: str) -> str:
    """The environ key of a request header (``X-Request-ID``: ``HTTP_X_REQUEST_ID``;
    ``Content-Type`` and ``Content-Length`` have no ``HTTP_``)."""
    key = header.upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"


class LoggedRequest(Protocol):
    """What the atoms read of a finished request, while its line is written."""

    @property
    def environ(self) -> WSGIEnvironment: ...
    @property
    def client(self) -> str: ...
    @property
    def stamp(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def duration(self) -> float: ...
    @property
    def error(self) -> BaseException | None: ...
    @property
    def headers(self) -> Headers | None: ...


# -- the atoms --------------------------------------------------------------------
# Each takes the finished request's observer and returns the text to log.

Atom = Callable[[LoggedRequest], str]


def _request_line(r: LoggedRequest) -> str:
    environ = r.environ
    return escape(
        f"{environ.get('REQUEST_METHOD', '-')} {uri(environ)} "
        f"{environ.get('SERVER_PROTOCOL', '-')}"
    )


_PLAIN_PATH = re.compile(r"[A-Za-z0-9/._~!$&'()*+,;=:@%-]*")


def uri(environ: WSGIEnvironment) -> str:
    """The request target as the client sent it: the server's raw URI (gunicorn's
    RAW_URI, waitress's REQUEST_URI), else rebuilt, the path quoted again."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw)
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    if not _PLAIN_PATH.fullmatch(path):
        path = quote(path.encode("latin-1", "replace"), safe="/;:@&=+$,%~!*'()")
    query = environ.get("QUERY_STRING")
    return f"{path}?{query}" if query else path


def _header_in(key: str) -> Atom:
    return lambda r: escape(r.environ.get(key) or "-")


def _header_out(name: str) -> Atom:
    return lambda r: escape(get_header(r.headers or [], name) or "-")


def _environ_value(key: str) -> Atom:
    return lambda r: escape(str(r.environ.get(key, "-")))


ATOMS: dict[str, Atom] = {
    "h": lambda r: escape(r.client),
    "l": lambda r: "-",
    "u": lambda r: escape(r.environ.get("REMOTE_USER") or "-"),
    "t": lambda r: r.stamp,
    "r": _request_line,
    "m": lambda r: escape(r.environ.get("REQUEST_METHOD", "-")),
    "U": lambda r: escape(
        r.environ.get("SCRIPT_NAME", "") + r.environ.get("PATH_INFO", "")
    ),
    "q": lambda r: escape(r.environ.get("QUERY_STRING", "")),
    "H": lambda r: escape(r.environ.get("SERVER_PROTOCOL", "-")),
    "s": lambda r: r.code,
    "B": lambda r: str(r.size),
    "b": lambda r: str(r.size) if r.size else "-",
    "f": lambda r: escape(r.environ.get("HTTP_REFERER") or "-"),
    "a": lambda r: escape(r.environ.get("HTTP_USER_AGENT") or "-"),
    "T": lambda r: str(int(r.duration)),
    "M": lambda r: str(int(r.duration * 1e3)),
    "D": lambda r: str(int(r.duration * 1e6)),
    "L": lambda r: f"{r.duration:.6f}",
    "p": lambda r: f"<{os.getpid()}>",
    # Ours: the type of the exception that ended the response, or "-".
    "E": lambda r: type(r.error).__qualname__ if r.error is not None else "-",
}

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}([ioe]?)|[{}]")


def compile_format(template: str) -> Callable[[LoggedRequest], str]:
    """Turn a format such as ``'{h} {t} "{r}" {s} {User-Agent}i'`` into a function
    of a finished request. ``{x}`` is a one-letter atom; ``{Name}i``, ``{Name}o``
    and ``{key}e`` are a request header, a response header and an environ value;
    ``{{`` and ``}}`` are literal braces. An unknown placeholder is a ValueError."""
    literals: list[str] = []
    atoms: list[Atom] = []
    text: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        text.append(template[position : match.start()])
        position = match.end()
        token = match.group()
        if token in ("{{", "}}"):
            text.append(token[0])
            continue
        name, kind = match.group(1), match.group(2)
        if name is None:
            raise ValueError(f"format: unbalanced brace in {template!r}")
        if name in ATOMS:
            atom = ATOMS[name]
            if kind:
                position -= 1  # the letter after a one-letter atom is literal
        elif kind == "i" and name:
            atom = _header_in(environ_key(name))
        elif kind == "o" and name:
            atom = _header_out(name)
        elif kind == "e" and name:
            atom = _environ_value(name)
        else:
            raise ValueError(
                f"format: unknown placeholder {match.group()!r} in {template!r}"
            )
        literals.append("".join(text))
        text = []
        atoms.append(atom)
    text.append(template[position:])
    tail = "".join(text)
    pieces = list(zip(literals, atoms, strict=True))

    def render(request: LoggedRequest) -> str:
        return "".join([literal + atom(request) for literal, atom in pieces]) + tail

    return render
