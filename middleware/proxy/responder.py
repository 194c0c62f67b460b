"""What a middleware subclasses to see or change responses: :class:`Responder`, with
the :class:`BodyFilter` its start hook may return and the :class:`Outcome` its close
hook is given."""

from __future__ import annotations

from typing import Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar

from ..wsgi import Answer, Headers, WSGIEnvironment, status_code

_tuple_new = tuple.__new__
#: The status line a server sends for an error raised before any byte went out.
SERVER_ERROR = "500 Internal Server Error"


class BodyFilter(Protocol):
    """What :meth:`Responder.on_start` returns to change a body (compression).

    :meth:`feed` is given every chunk the app yields or writes, empty ones included,
    and returns the bytes to send for it (``b""`` to hold data back); :meth:`finish`
    returns what ends the body, after the app's last chunk. Every byte fed must be
    out by the time :meth:`finish` has returned.

    A filter may also have a ``complete`` attribute: then its response gets an exact
    ``Content-Length`` whenever the whole filtered body is known before its first
    byte goes out, so the server can keep the connection alive instead of sending
    it chunked. The core holds the server's ``start_response`` until the app's
    first chunk has been fed. The body is whole when the app returned a list or
    tuple of bytestrings (one chunk, or several of at most 1 MiB together, which
    are joined: the core feeds it as one chunk and calls :meth:`finish` at once),
    or when ``complete`` is True after the first chunk (say the declared length was
    reached: :meth:`feed` and :meth:`finish` must then return ``b""``). Otherwise
    the headers go out with that first output, without a length. A server that
    refuses the held status or headers then raises while the body is iterated.
    The list must be the app's own: a layer between that proxies the body hides
    it (ErrorCatcher outside Compress, as the docs put it, does not).
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


#: The middleware class a responder belongs to (``Responder["Gzip"]``).
M = TypeVar("M")


class Responder(Generic[M]):
    """The per-request object a middleware subclasses to see or change responses.

    Made once per request by the layer, as ``YourResponder(middleware, environ)``;
    define ``__init__`` with that signature (calling ``super().__init__``) to set up
    per-request state. (One that overrides only error hooks and neither
    ``__init__`` nor ``__new__`` is made only if an error comes: nothing else would
    read it.) Override only the hooks you need: the layer's proxy is chosen
    from them (see the table in this module's docs). In the order they run:

    - :meth:`on_request` before the app; it may answer the request itself;
    - :meth:`on_start` when the app calls ``start_response``; may change the headers,
      replace the status (:meth:`replace_status`), and return a :class:`BodyFilter`;
    - :meth:`on_error` when the app, a hook, the iteration or ``close()`` raised;
    - :meth:`recover` when an error came before any byte went out: a replacement;
    - :meth:`on_recovered` once the server took (or refused) that replacement;
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

    #: Which hooks this class overrides (``on_request``; ``on_start`` or
    #: :attr:`filters`; ``on_error`` or ``recover``; ``on_close``): computed for each
    #: subclass when it is defined, read by :func:`~middleware.proxy.plan` and the
    #: proxies. Not to be set by hand.
    sees_request: ClassVar[bool] = False
    sees_start: ClassVar[bool] = False
    sees_error: ClassVar[bool] = False
    sees_close: ClassVar[bool] = False
    #: The status :meth:`replace_status` asked for, until the proxy takes it.
    replaced_status: str | None = None
    #: Set by :meth:`release`: this response's body is not watched.
    released: bool = False
    #: Set by the proxy before each :meth:`on_error`: True when :meth:`recover` will
    #: be asked about this error next (nothing of the body went out, and it is an
    #: ``Exception``), so a layer that reports errors can wait for
    #: :meth:`on_recovered` to say whether its replacement went out.
    recovering: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.sees_request = cls.on_request is not Responder.on_request
        cls.sees_start = cls.on_start is not Responder.on_start or cls.filters
        cls.sees_error = (
            cls.on_error is not Responder.on_error
            or cls.recover is not Responder.recover
            or cls.on_recovered is not Responder.on_recovered
        )
        cls.sees_close = cls.on_close is not Responder.on_close

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
        self.replaced_status = status

    def release(self) -> None:
        """From :meth:`on_start`: this response's end need not be seen. When the app
        has returned by then (it called ``start_response`` before returning), the
        server gets the app's own iterable, and :meth:`on_error` and
        :meth:`on_close` are not called for what follows: a layer that watches
        only some responses (a session with store writes to make) pays for the
        others what a start-only layer does. Not for filters."""
        self.released = True

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

    def on_recovered(self, exc: Exception, refused: BaseException | None) -> None:
        """Called after the server's ``start_response`` was given what
        :meth:`recover` returned for *exc*: *refused* is None when it took it, or
        what it raised when it refused (a server or test client that re-raises any
        ``exc_info``); that then propagates, and the replacement never went out. If
        this raises, that is logged."""

    def on_close(self, outcome: Outcome) -> None:
        """Called once when the response is over, after the app's iterable was
        closed (or after the app raised without returning one), with what went out.
        If it raises while an error propagates, it is logged, never masking it."""
