"""The :class:`Session` middleware: configuration, checked once, and the per-request
responder that puts a lazy session in the environ and saves it when the response
starts."""

from __future__ import annotations

import datetime
import logging
from typing import Any, ClassVar

from ..http import TOKEN
from ..options import Choice, Flag, Option, Seconds, Secret, Text
from ..proxy import Middleware, Outcome, Responder
from ..wsgi import SESSION_KEY, Headers, WSGIEnvironment
from .cookie import CookiePolicy
from .state import SessionData
from .stores import Store

__all__ = ["Session"]

log = logging.getLogger("middleware.session")

#: The shortest secret accepted, in bytes (256 bits, the HMAC-SHA256 key size).
MIN_SECRET_BYTES = 32
# Path and Domain attribute values: no ';', no controls, no spaces in a domain.


class _SessionResponder(Responder["Session"]):
    """Puts a lazy :class:`SessionData` in the environ; at start, saves it."""

    session: SessionData

    def on_request(self) -> None:
        # session_for(), inlined: this runs on every request, the ones that never
        # touch the session included (bench_session, "untouched").
        environ = self.environ
        self.session = environ[SESSION_KEY] = SessionData(
            self.middleware._policy,
            environ.get("HTTP_COOKIE"),
            environ.get("wsgi.url_scheme") == "https",
        )

    def on_start(self, status: str, headers: Headers) -> None:
        self.session.respond(status, headers)


class _StoredSessionResponder(_SessionResponder):
    """With a store: its writes are made at the end of the response, only when it
    completed without an error and was not a 5xx (an error in the body, after a
    200 started, must not leave the store changed). It sees every error, so its
    layer iterates the body of a response with writes to make; the others are
    released at start (no cost beyond a start layer's)."""

    def on_start(self, status: str, headers: Headers) -> None:
        session = self.session
        session.respond(status, headers)
        if not session.pending:
            self.release()

    def on_error(self, exc: BaseException) -> None:
        self.session.discard()

    def on_close(self, outcome: Outcome) -> None:
        status = outcome.status or ""
        if outcome.error is None and not status.startswith("5"):
            self.session.commit()
        else:
            self.session.discard()


class Session(Middleware):
    """Sessions: signed cookies by default, or a server-side store.

    :param secret: signs cookies and store records (HMAC-SHA256); ``str`` or
        ``bytes`` of at least 32 bytes. Keep it out of source code.
    :param fallback_secrets: older secrets, a list or tuple: they verify, never
        sign, so secrets can be rotated without logging everyone out. A session
        verified with one is signed again with *secret* on that response.
    :param store: None for signed-cookie sessions (the data lives in the cookie,
        4 KB at most), or a :class:`~middleware.session.Store`
        (:class:`~middleware.session.SQLiteStore`,
        :class:`~middleware.session.RedisStore`, ...): the cookie then holds only a
        random id.
    :param cookie_name: the cookie's name. Pick another than your framework's own
        session cookie (Flask's and Django's default is ``session``/``sessionid``).
    :param max_age: absolute lifetime in seconds (or a ``timedelta``): a session
        older than this is refused, whatever the cookie says. 14 days by default.
    :param idle_timeout: seconds without a save after which the session is refused;
        None (the default) for none. Use it with *reissue_after*, so an active user
        is re-issued before going idle.
    :param reissue_after: seconds after which a session that is used is saved (and
        its cookie sent) again although unchanged: sliding expiry, without a
        ``Set-Cookie`` on every response. None (the default) for never.
    :param secure: the cookie's ``Secure`` flag; None (the default) sets it when the
        request came over https (``wsgi.url_scheme``).
    :param httponly: the ``HttpOnly`` flag (default on: scripts cannot read it).
    :param samesite: ``"Lax"`` (default), ``"Strict"``, ``"None"`` (needs
        ``secure=True``), or None to leave the attribute out.
    :param path: the cookie's Path (default ``/``).
    :param domain: the cookie's Domain; None (the default) for the host only.
    """

    responder = _SessionResponder
    #: The declarations the plain options are checked (and read from ini files) by;
    #: the secrets, the store, path and domain have rules of their own.
    options: ClassVar[dict[str, Option[Any]]] = {
        "cookie_name": Text(
            TOKEN, expects="a cookie name (letters, digits and !#$%&'*+-.^_`|~)"
        ),
        "max_age": Seconds(),
        "idle_timeout": Seconds(none=True),
        "reissue_after": Seconds(none=True),
        "secure": Flag(none=True),
        "httponly": Flag(),
        "samesite": Choice("Lax", "Strict", "None", none=True),
        "secret": Secret(MIN_SECRET_BYTES),
        # Cookie attribute values: no ';', no controls; no spaces in a domain.
        "path": Text(
            r"/[\x20-\x3a\x3c-\x7e]*",
            expects="a path starting with '/', without ';' or control characters",
        ),
        "domain": Text(r"[\x21-\x3a\x3c-\x7e]+", expects="a domain name", none=True),
    }
    secret_options: ClassVar[frozenset[str]] = frozenset({"secret", "fallback_secrets"})

    def __init__(
        self,
        secret: str | bytes,
        fallback_secrets: list[str | bytes] | tuple[str | bytes, ...] = (),
        store: Store | None = None,
        cookie_name: str = "session",
        max_age: int | datetime.timedelta = 14 * 24 * 3600,
        idle_timeout: int | datetime.timedelta | None = None,
        reissue_after: int | datetime.timedelta | None = None,
        secure: bool | None = None,
        httponly: bool = True,
        samesite: str | None = "Lax",
        path: str = "/",
        domain: str | None = None,
    ) -> None:
        options = self.options
        key: bytes = options["secret"].check("secret", secret)
        if not isinstance(fallback_secrets, list | tuple):
            raise ValueError(
                "fallback_secrets: expected a list or tuple of secrets, got "
                f"{type(fallback_secrets).__name__} (a bare string would be split "
                "into one-character keys)"
            )
        fallbacks = tuple(
            options["secret"].check(f"fallback_secrets[{index}]", value)
            for index, value in enumerate(fallback_secrets)
        )
        if store is not None and not isinstance(store, Store):
            raise ValueError(
                f"store: expected None or a store with load, save and delete, "
                f"got {store!r}"
            )
        options["cookie_name"].check("cookie_name", cookie_name)
        self.max_age: int = options["max_age"].check("max_age", max_age)
        self.idle_timeout: int | None = options["idle_timeout"].check(
            "idle_timeout", idle_timeout
        )
        self.reissue_after: int | None = options["reissue_after"].check(
            "reissue_after", reissue_after
        )
        if self.idle_timeout is not None and self.idle_timeout > self.max_age:
            raise ValueError(
                f"idle_timeout: {self.idle_timeout} is longer than max_age "
                f"({self.max_age}), so it would never apply"
            )
        limit = self.idle_timeout or self.max_age
        if self.reissue_after is not None and self.reissue_after >= limit:
            raise ValueError(
                f"reissue_after: {self.reissue_after} must be shorter than "
                f"{'idle_timeout' if self.idle_timeout else 'max_age'} ({limit})"
            )
        options["secure"].check("secure", secure)
        options["httponly"].check("httponly", httponly)
        samesite = options["samesite"].check("samesite", samesite)
        if samesite == "None" and secure is not True:
            raise ValueError(
                "samesite: 'None' needs secure=True (browsers refuse a "
                f"SameSite=None cookie without Secure), got secure={secure!r}"
            )
        options["path"].check("path", path)
        options["domain"].check("domain", domain)
        if cookie_name.startswith(("__Secure-", "__Host-")) and secure is not True:
            raise ValueError(
                f"secure: a cookie named {cookie_name!r} needs secure=True "
                f"(browsers refuse it otherwise), got {secure!r}"
            )
        if cookie_name.startswith("__Host-") and (domain is not None or path != "/"):
            raise ValueError(
                f"cookie_name: a __Host- cookie needs path='/' and no domain, got "
                f"path={path!r}, domain={domain!r}"
            )
        self.secret = key
        self.fallback_secrets = fallbacks
        self.store = store
        self.cookie_name = cookie_name
        self.secure = secure
        self.httponly = httponly
        self.samesite = samesite
        self.path = path
        self.domain = domain
        attributes = f"; Path={path}"
        if domain is not None:
            attributes += f"; Domain={domain}"
        if httponly:
            attributes += "; HttpOnly"
        if samesite is not None:
            attributes += f"; SameSite={samesite}"
        if store is not None:
            # This instance's responder (the class attribute, for cookie sessions,
            # stays the cheaper start-only one).
            self.__dict__["responder"] = _StoredSessionResponder
        #: How cookies are verified and written (used by each request's session).
        self._policy = CookiePolicy(
            name=cookie_name,
            secret=key,
            fallback_secrets=fallbacks,
            store=store,
            max_age=self.max_age,
            idle_timeout=self.idle_timeout,
            reissue_after=self.reissue_after,
            secure=secure,
            attributes=attributes,
        )

    def session_for(self, environ: WSGIEnvironment) -> SessionData:
        """A new, lazy session for the request of *environ* (what the middleware
        puts at ``environ["middleware.session"]``); it reads only the request's
        ``Cookie`` header and scheme."""
        return SessionData(
            self._policy,
            environ.get("HTTP_COOKIE"),
            environ.get("wsgi.url_scheme") == "https",
        )
