"""The middleware: :class:`AccessLog` (the configuration, and :meth:`~AccessLog.emit`,
which writes a line) and its per-request responder, which times the request, sets
its id and hands the finished request to ``emit`` when the response is closed."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any, ClassVar

from ..options import REFUSED, Flag, Option, Text
from ..proxy import Middleware, Outcome, Responder
from ..wsgi import REQUEST_ID_KEY, Headers, WSGIEnvironment, get_header
from .formats import FORMATS, UNSAFE, Clock, compile_format, environ_key, escape, uri
from .ids import new_request_id, request_id_var, valid_request_id
from .streams import NOWHERE, REPORT_EVERY, StreamOption, TextSink, write_line

__all__ = ["AccessLog", "wall_clock"]

# The middleware's own diagnostics (not the access lines).
log = logging.getLogger("middleware.access_log")

# The wall clock for time stamps (a module attribute, so tests can fix it).
wall_clock = time.time


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

    started = 0.0  # perf_counter() at arrival: for the duration
    arrived = 0.0  # time.time() at arrival: for the time stamp
    request_id = ""

    def on_request(self) -> None:
        self.started = time.perf_counter()
        self.arrived = wall_clock()
        middleware = self.middleware
        environ = self.environ
        request_id = None
        if middleware.trust_request_id:
            inbound = environ.get(middleware._request_id_key)
            if inbound and valid_request_id(inbound):
                request_id = inbound
        if request_id is None:
            request_id = new_request_id()
        self.request_id = environ[REQUEST_ID_KEY] = request_id
        self._token = request_id_var.set(request_id)

    def on_start(self, status: str, headers: Headers) -> None:
        # One header: an app that set its own (often the same id, read from the
        # environ) keeps it.
        name = self.middleware.request_id_header
        if get_header(headers, name) is None:
            headers.append((name, self.request_id))

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
        clock: Clock = self.middleware._clock
        return clock.stamps(self.arrived)[0]


class LoggerOption(Option[logging.Logger]):
    """A logger, or the name of one (what an ini file gives)."""

    expects = "a name or a Logger"

    def accept(self, value: Any) -> Any:
        if isinstance(value, str):
            return logging.getLogger(value)
        return value if isinstance(value, logging.Logger) else REFUSED


class LevelOption(Option[int]):
    """A logging level: an int, or a name such as ``"INFO"``."""

    expects = "a logging level such as 'INFO'"

    def accept(self, value: Any) -> Any:
        if isinstance(value, str):
            level = logging.getLevelName(value.upper())
            return level if isinstance(level, int) else REFUSED
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return REFUSED


class AccessLog(Middleware):
    """Log one line per request, when its response is closed.

    :param logger: a logger name or a :class:`logging.Logger`.
    :param format: ``"common"``, ``"combined"`` (Apache's), ``"json"``, or a custom
        format of ``{}`` placeholders: gunicorn's atoms ``h l u t r m U q H s B b f a
        T M D L p``, ``{Header}i``, ``{Header}o``, ``{key}e``, and ``{E}`` (the
        type of the exception that ended the response). No ``%`` anywhere, so ini
        files need no ``%%``.
    :param level: the level of the lines (an int or a name such as ``"INFO"``).
    :param request_id_header: the response header echoing the request id, and the
        request header read when ``trust_request_id`` is on.
    :param trust_request_id: take the inbound request id (1-128 characters of
        letters, digits and ``._:/+=-``; anything else gets a fresh id) instead of
        generating one. Only behind a proxy that sets or strips that header.
    :param utc: time stamps in UTC instead of local time.
    :param stderr_fallback: when nothing has configured a handler for the logger
        or its parents (no ``logging.basicConfig``, no framework's setup), write
        the lines to standard error instead, as gunicorn's ``--access-logfile -``
        does: else Python drops them (its last-resort handler shows only
        warnings). Looked at once a second. False turns it off.
    :param stream: write each line straight to ``"stdout"``, ``"stderr"`` or a
        text stream (one ``write`` and ``flush`` per line, under a lock) instead
        of through ``logging``: for a container that collects standard output,
        it skips the record, the handlers and the formatter (see
        ``benchmarks/bench_access_log.py`` for what that saves). *logger*,
        *level* and *stderr_fallback* are then unused, and lines carry no
        ``extra`` fields (the json format has them in the line). None (the
        default): logging.

    The request id goes to ``environ["middleware.request_id"]`` (ErrorCatcher shows
    it), to the response header, to :data:`request_id_var` for your own logging
    (see :class:`RequestIdFilter`), and into the line's ``extra`` fields.
    """

    responder = _Logging
    #: The declarations each option is checked (and read from ini files) by.
    options: ClassVar[dict[str, Option[Any]]] = {
        "logger": LoggerOption(),
        "format": Text(),
        "level": LevelOption(),
        "request_id_header": Text(r"[A-Za-z0-9-]+", expects="a header name"),
        "trust_request_id": Flag(),
        "utc": Flag(),
        "stderr_fallback": Flag(),
        "stream": StreamOption(none=True),
    }

    def __init__(
        self,
        logger: str | logging.Logger = "middleware.access",
        format: str = "combined",
        level: int | str = logging.INFO,
        request_id_header: str = "X-Request-ID",
        trust_request_id: bool = False,
        utc: bool = False,
        stderr_fallback: bool = True,
        stream: str | TextSink | None = None,
    ) -> None:
        options = self.options
        self.logger: logging.Logger = options["logger"].check("logger", logger)
        self.format: str = options["format"].check("format", format)
        self._render = (
            None if format == "json" else compile_format(FORMATS.get(format, format))
        )
        self._apache = format in FORMATS
        self.level: int = options["level"].check("level", level)
        self.request_id_header: str = options["request_id_header"].check(
            "request_id_header", request_id_header
        )
        self._request_id_key = environ_key(request_id_header)
        self.trust_request_id: bool = options["trust_request_id"].check(
            "trust_request_id", trust_request_id
        )
        self.utc: bool = options["utc"].check("utc", utc)
        self._clock = Clock(utc)
        self.stderr_fallback: bool = options["stderr_fallback"].check(
            "stderr_fallback", stderr_fallback
        )
        self.stream: str | TextSink | None = options["stream"].check("stream", stream)
        self._look = 0.0  # when to look again whether the logger has handlers
        self._unconfigured = False
        self._failed_at = -REPORT_EVERY  # when a failing stream was last reported

    def _stream(self) -> TextSink | None:
        """The stream lines are written to, or None for the logger: the *stream*
        option's, else standard error when :meth:`_writes_to_stderr`."""
        stream = self.stream
        if stream is None:
            return sys.stderr if self._writes_to_stderr() else None
        if isinstance(stream, str):
            found: TextSink | None = getattr(sys, stream)
            return NOWHERE if found is None else found
        return stream

    def _write(self, stream: TextSink, line: str) -> None:
        """One line on *stream*. A stream that fails (closed, a broken pipe) is
        logged once a minute while it fails, as a logging handler reports its own
        failures: the response it ends went out already, and the server should not
        see an error for it."""
        try:
            write_line(stream, line)
        except Exception:  # OSError (a closed pipe), ValueError (a closed file),
            # or whatever a user's stream raises: reported below, never raised
            # into a response that already went out (as logging.Handler does)
            now = time.monotonic()
            if now - self._failed_at >= REPORT_EVERY:
                self._failed_at = now
                log.warning(
                    "access lines cannot be written to %r (said once a minute "
                    "while it fails)",
                    stream,
                    exc_info=True,
                )

    def _writes_to_stderr(self) -> bool:
        """Whether lines go to standard error: the fallback is on and no handler
        is configured for the logger or its parents (looked at once a second)."""
        if not self.stderr_fallback:
            return False
        now = time.monotonic()
        if now >= self._look:
            self._look = now + 1.0
            self._unconfigured = not self.logger.hasHandlers()
        return self._unconfigured

    def client_address(self, environ: WSGIEnvironment) -> str:
        """The client as logged: ``REMOTE_ADDR`` (behind proxies, as
        :class:`~middleware.ProxyHeaders` set it), or ``-``."""
        address: str = environ.get("REMOTE_ADDR") or "-"
        return address

    def emit(self, request: _Logging) -> None:
        """Write the line of a finished request (if the logger is enabled).

        Every value is computed once, here, for the line and for the record's
        fields. The record comes from the logging record factory and goes to
        ``logger.handle``: no caller lookup (an access line has no call site) and
        no per-key checks of ``extra`` (the keys are fixed and safe).
        """
        logger = self.logger
        level = self.level
        stream = self._stream()
        if stream is None and not logger.isEnabledFor(level):
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
                target = uri(environ)
                protocol = environ.get("SERVER_PROTOCOL", "-")
                referer = fields["http.request.header.referer"] or "-"
                agent = fields["user_agent.original"] or "-"
                # One scan of every request value; escape one by one only if needed.
                if UNSAFE.search(
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
        if stream is not None:
            self._write(stream, line)
            return
        record = logging.getLogRecordFactory()(
            logger.name, level, __file__, 0, line, None, None, "emit"
        )
        record.__dict__.update(fields)
        logger.handle(record)
