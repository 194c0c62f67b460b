"""Access logging: :class:`AccessLog` writes one line per request, when the response
is closed, with what really happened.

The line is emitted from the response proxy's close, so the status is the final one
(after any ``exc_info`` replacement), the bytes are those that went out (iterable
and ``write()``; a passed-through ``wsgi.file_wrapper`` counts its length), and the
duration runs from the request's arrival to the end of the body. Paste's TransLogger
logs inside ``start_response``, before any of that is known.

Values from the request are escaped (``\\xhh`` for control characters, quotes,
backslashes and non-ASCII), so a request cannot forge log lines. The middleware
never adds handlers or changes logger configuration.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from .http import client_address
from .proxy import Middleware, Outcome, Responder
from .wsgi import REQUEST_ID_KEY, Headers, WSGIEnvironment, get_header

__all__ = ["AccessLog", "FORMATS", "RequestIdFilter", "request_id_var"]

#: The request id of the request being handled in this context, or None.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "middleware_request_id", default=None
)

# The wall clock for time stamps (a module attribute, so tests can fix it).
wall_clock = time.time


class RequestIdFilter(logging.Filter):
    """A logging filter that sets ``record.request_id`` from the current request,
    so your app's own log lines can carry it (``%(request_id)s``). Attach it to a
    handler; outside a request the id is ``-``."""

    def filter(self, record: logging.LogRecord) -> bool:
        # A record that carries its own (AccessLog's, ErrorCatcher's) keeps it.
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get() or "-"
        return True


#: The built-in text formats, in the placeholder syntax custom formats use.
FORMATS = {
    "common": '{h} {l} {u} {t} "{r}" {s} {b}',
    "combined": '{h} {l} {u} {t} "{r}" {s} {b} "{f}" "{a}"',
}

# Printable ASCII except the double quote and the backslash: everything else in a
# logged value is written \xhh (\uhhhh above U+00FF).
_UNSAFE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def _hex(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(value: str) -> str:
    """*value* with control characters, quotes, backslashes and non-ASCII written
    as ``\\xhh``: one request, one line, whatever the client sent."""
    return _UNSAFE.sub(_hex, value) if _UNSAFE.search(value) else value


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # fmt: skip


class _Clock:
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


def _environ_key(header: str) -> str:
    key = header.upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"


# -- the atoms --------------------------------------------------------------------
# Each takes the finished request's observer and returns the text to log.

Atom = Callable[["_Logging"], str]


def _request_line(r: _Logging) -> str:
    environ = r.environ
    return escape(
        f"{environ.get('REQUEST_METHOD', '-')} {_uri(environ)} "
        f"{environ.get('SERVER_PROTOCOL', '-')}"
    )


_PLAIN_PATH = re.compile(r"[A-Za-z0-9/._~!$&'()*+,;=:@%-]*")


def _uri(environ: WSGIEnvironment) -> str:
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


def compile_format(template: str) -> Callable[[_Logging], str]:
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
            atom = _header_in(_environ_key(name))
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

    def render(request: _Logging) -> str:
        return "".join([literal + atom(request) for literal, atom in pieces]) + tail

    return render


# -- the middleware ---------------------------------------------------------------

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


class _Ids:
    """Request ids: 32 hex digits, a random 20-digit prefix per process and a
    12-digit counter. Unique (a forked worker draws a new prefix), cheaper than a
    uuid4 per request; not secrets, so they need not be unguessable."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = os.urandom(10).hex()
        self.counter = itertools.count(1)

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter):012x}"


_ids = _Ids()


def _body_size(method: str | None, code: str, counted: int) -> int:
    """The body bytes that went out: none on HEAD, 1xx, 204 and 304, whatever the
    app yielded (the server drops them); else what the proxy counted. *code* is the
    status's first three characters (compared as text: cheaper than
    :func:`~middleware.wsgi.body_forbidden` on this path)."""
    if method == "HEAD" or code < "2" or code == "204" or code == "304":
        return 0
    return counted


class _Logging(Responder["AccessLog"]):
    """The per-request responder: times the request, sets its id, and logs the
    line when the response is closed, from the proxy's :class:`Outcome`."""

    counts_body = True  # the line's size is the body bytes that went out
    _token: contextvars.Token[str | None] | None = None
    #: What went out; set for the time of :meth:`AccessLog.emit`.
    outcome: Outcome | None = None
    _ended: float | None = None

    def __init__(self, middleware: AccessLog, environ: WSGIEnvironment) -> None:
        super().__init__(middleware, environ)
        self.started = time.perf_counter()  # for the duration
        self.arrived = wall_clock()  # for the time stamp
        self.request_id = ""

    def on_request(self) -> None:
        middleware = self.middleware
        environ = self.environ
        request_id = None
        if middleware.trust_request_id:
            inbound = environ.get(middleware._request_id_key)
            if inbound and _REQUEST_ID.fullmatch(inbound):
                request_id = inbound
        if request_id is None:
            request_id = _ids.next()
        self.request_id = environ[REQUEST_ID_KEY] = request_id
        self._token = request_id_var.set(request_id)

    def on_start(self, status: str, headers: Headers) -> None:
        headers.append((self.middleware.request_id_header, self.request_id))

    def on_close(self, outcome: Outcome) -> None:
        token = self._token
        if token is not None:
            self._token = None
            try:
                request_id_var.reset(token)
            except ValueError:  # closed in another context than it started in
                request_id_var.set(None)
        self.outcome = outcome
        try:
            self.middleware.emit(self)
        finally:
            self.outcome = None  # its error's traceback holds frames: no cycle

    # What the atoms of a custom format read, while the line is written.

    @property
    def client(self) -> str:
        address: str = self.middleware.client_address(self.environ)
        return address

    @property
    def final_status(self) -> str:
        """The status that went out (``500`` when an error came before any byte,
        as the server answered it); ``-`` when no response began."""
        outcome = self.outcome
        if outcome is None or outcome.status is None:
            return "-"
        return outcome.status

    @property
    def code(self) -> str:
        return self.final_status[:3]

    @property
    def status(self) -> str | None:
        return None if self.outcome is None else self.outcome.status

    @property
    def headers(self) -> Headers | None:
        return None if self.outcome is None else self.outcome.headers

    @property
    def error(self) -> BaseException | None:
        return None if self.outcome is None else self.outcome.error

    @property
    def size(self) -> int:
        sent = 0 if self.outcome is None else self.outcome.bytes_sent
        return _body_size(self.environ.get("REQUEST_METHOD"), self.code, sent)

    @property
    def duration(self) -> float:
        """Seconds from the request's arrival to the close of its response."""
        if self._ended is None:
            return time.perf_counter() - self.started
        return self._ended

    @property
    def stamp(self) -> str:
        clock: _Clock = self.middleware._clock
        return clock.stamps(self.arrived)[0]


class AccessLog(Middleware):
    """Log one line per request, when its response is closed.

    :param logger: a logger name or a :class:`logging.Logger`.
    :param format: ``"common"``, ``"combined"`` (Apache's), ``"json"``, or a custom
        format of ``{}`` placeholders: gunicorn's atoms ``h l u t r m U q H s B b f a
        T M D L p``, ``{Header}i``, ``{Header}o``, ``{key}e``, and ``{E}`` (the
        type of the exception that ended the response). No ``%`` anywhere, so ini
        files need no ``%%``.
    :param level: the level of the lines (an int or a name such as ``"INFO"``).
    :param trusted_proxies: how many proxies in front of the app append to
        ``X-Forwarded-For``; the client is the N-th address from the right (as
        Werkzeug's ProxyFix). 0, the default, trusts nothing: ``REMOTE_ADDR``.
    :param request_id_header: the response header echoing the request id, and the
        request header read when ``trust_request_id`` is on.
    :param trust_request_id: take the inbound request id (1-128 characters of
        letters, digits and ``._:/+=-``; anything else gets a fresh id) instead of
        generating one. Only behind a proxy that sets or strips that header.
    :param utc: time stamps in UTC instead of local time.

    The request id goes to ``environ["middleware.request_id"]`` (ErrorCatcher shows
    it), to the response header, to :data:`request_id_var` for your own logging
    (see :class:`RequestIdFilter`), and into the line's ``extra`` fields.
    """

    responder = _Logging

    def __init__(
        self,
        logger: str | logging.Logger = "middleware.access",
        format: str = "combined",
        level: int | str = logging.INFO,
        trusted_proxies: int = 0,
        request_id_header: str = "X-Request-ID",
        trust_request_id: bool = False,
        utc: bool = False,
    ) -> None:
        if isinstance(logger, str):
            logger = logging.getLogger(logger)
        elif not isinstance(logger, logging.Logger):
            raise ValueError(f"logger: expected a name or a Logger, got {logger!r}")
        self.logger = logger
        if not isinstance(format, str):
            raise ValueError(f"format: expected a string, got {format!r}")
        self.format = format
        self._render = (
            None if format == "json" else compile_format(FORMATS.get(format, format))
        )
        self._apache = format in FORMATS
        self.level = _check_level(level)
        if (
            isinstance(trusted_proxies, bool)
            or not isinstance(trusted_proxies, int)
            or trusted_proxies < 0
        ):
            raise ValueError(
                f"trusted_proxies: expected an int >= 0, got {trusted_proxies!r}"
            )
        self.trusted_proxies = trusted_proxies
        if not isinstance(request_id_header, str) or not re.fullmatch(
            r"[A-Za-z0-9-]+", request_id_header
        ):
            raise ValueError(
                f"request_id_header: expected a header name, got {request_id_header!r}"
            )
        self.request_id_header = request_id_header
        self._request_id_key = _environ_key(request_id_header)
        for name, value in (("trust_request_id", trust_request_id), ("utc", utc)):
            if not isinstance(value, bool):
                raise ValueError(f"{name}: expected True or False, got {value!r}")
        self.trust_request_id = trust_request_id
        self.utc = utc
        self._clock = _Clock(utc)

    def client_address(self, environ: WSGIEnvironment) -> str:
        """The client as logged: the :func:`~middleware.http.client_address`
        with this log's ``trusted_proxies``, or ``-``."""
        return client_address(environ, self.trusted_proxies) or "-"

    def emit(self, request: _Logging) -> None:
        """Write the line of a finished request (if the logger is enabled).

        Every value is computed once, here, for the line and for the record's
        fields. The record comes from the logging record factory and goes to
        ``logger.handle``: no caller lookup (an access line has no call site) and
        no per-key checks of ``extra`` (the keys are fixed and safe).
        """
        logger = self.logger
        level = self.level
        if not logger.isEnabledFor(level):
            return
        duration = request._ended = time.perf_counter() - request.started
        environ = request.environ
        method = environ.get("REQUEST_METHOD") or "-"
        outcome = request.outcome
        if outcome is None:  # only on_close, which sets it, calls this
            return
        error = outcome.error
        code = (outcome.status or "-")[:3]
        size = _body_size(method, code, outcome.bytes_sent)
        client = self.client_address(environ)
        apache, iso = self._clock.stamps(request.arrived)
        fields: dict[str, Any] = {
            "time": iso,
            "http.request.method": method,
            "url.path": environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
            "url.query": environ.get("QUERY_STRING") or None,
            "http.response.status_code": int(code) if code.isdigit() else None,
            "client.address": client,
            "user.name": environ.get("REMOTE_USER") or None,
            "user_agent.original": environ.get("HTTP_USER_AGENT"),
            "http.request.header.referer": environ.get("HTTP_REFERER"),
            "duration_ms": int(duration * 1e6) / 1e3,
            "bytes": size,
            "request_id": request.request_id,
            "error.type": type(error).__qualname__ if error is not None else None,
        }
        if self._render is None:
            line = json.dumps(fields, separators=(",", ":"))
        else:
            if self._apache:  # common and combined, written out: the usual case
                user = fields["user.name"] or "-"
                target = _uri(environ)
                protocol = environ.get("SERVER_PROTOCOL", "-")
                referer = fields["http.request.header.referer"] or "-"
                agent = fields["user_agent.original"] or "-"
                # One scan of every request value; escape one by one only if needed.
                if _UNSAFE.search(
                    f"{client} {user} {method} {target} {protocol} {referer} {agent}"
                ):
                    client, user, method, target = map(
                        escape, (client, user, method, target)
                    )
                    protocol, referer, agent = map(escape, (protocol, referer, agent))
                line = (
                    f'{client} - {user} {apache} "{method} {target} {protocol}" '
                    f"{code} {size or '-'}"
                )
                if self.format == "combined":
                    line = f'{line} "{referer}" "{agent}"'
            else:
                line = self._render(request)
            if error is not None and self._apache:
                line = f"{line} [error: {fields['error.type']}]"
        record = logging.getLogRecordFactory()(
            logger.name, level, __file__, 0, line, None, None, "emit"
        )
        record.__dict__.update(fields)
        logger.handle(record)


def _check_level(level: int | str) -> int:
    if isinstance(level, str):
        value = logging.getLevelName(level.upper())
        if isinstance(value, int):
            return value
    elif isinstance(level, int) and not isinstance(level, bool):
        return level
    raise ValueError(f"level: expected a logging level such as 'INFO', got {level!r}")
