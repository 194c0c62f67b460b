"""The per-request session: a lazy mapping of JSON values that knows whether it was
read, changed, regenerated or invalidated, and what to send when the response starts.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

from ..wsgi import SESSION_KEY, Headers, WSGIEnvironment, add_vary, get_header
from .cookie import CookiePolicy
from .errors import SessionError, SessionTooLarge

__all__ = ["ENVIRON_KEY", "SessionData", "get_session"]

#: Where the session of a request is found in the WSGI environ.
ENVIRON_KEY = SESSION_KEY
#: The largest ``Set-Cookie`` value sent; browsers keep 4096 bytes per cookie.
COOKIE_LIMIT = 4093
_check_json = json.JSONEncoder(allow_nan=False).encode

log = logging.getLogger("middleware.session")

#: The clock sessions are timed by (seconds since the epoch); tests replace it.
clock = time.time


def get_session(environ: WSGIEnvironment) -> SessionData:
    """The session of the request whose environ this is.

    :raises LookupError: no :class:`~middleware.session.Session` middleware is in
        front of the app.
    """
    try:
        session: SessionData = environ[ENVIRON_KEY]
    except KeyError:
        raise LookupError(
            f"no session in this request's environ (key {ENVIRON_KEY!r}): wrap the "
            "app with middleware.session.Session(...)"
        ) from None
    return session


def _first_cookie(header: str, name: str) -> str | None:
    """The value of the first cookie called *name* in a ``Cookie`` header (quotes
    taken off), or None."""
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value
    return None


class SessionData(MutableMapping[str, Any]):
    """The session of one request, at ``environ["middleware.session"]``.

    A mutable mapping of JSON values (keys are strings), loaded from the cookie or
    the store on first use, so a request that never touches it costs almost nothing
    and gets no ``Set-Cookie``. Every read (``[]``, ``get``, ``in``, ``len``,
    iteration) marks it *accessed*, which adds ``Vary: Cookie`` to the response;
    every write marks it *modified*, which saves it when the response starts.

    Values are checked when set: one JSON cannot hold is an error naming the key.
    JSON has no tuples or non-string keys: a tuple comes back a list. A change
    *inside* a value (``session["cart"].append(3)``) is not seen; assign the value
    again or call :meth:`mark_modified`.

    After the response started, a change raises :class:`SessionError` instead of
    being lost.
    """

    # Class-level defaults: a request that never touches the session sets only two
    # attributes.
    _data: dict[str, Any] | None = None
    _accessed = False
    _modified = False
    _regenerated = False
    _invalidated = False
    _started = False  # the response started: saved (or not) already
    _saved = False
    _set_cookie: str | None = None
    _had_cookie = False  # the request carried our cookie, valid or not
    _new = True
    _sid: str | None = None  # server-side stores: the id the record is under
    _created = 0
    _issued = 0
    _reissue = False  # verified with a fallback secret: sign again with the current
    _pending: list[tuple[str, tuple[Any, ...]]] | None = None  # store writes to commit

    def __init__(
        self, policy: CookiePolicy, cookie_header: str | None, https: bool
    ) -> None:
        """Made by the ``Session`` middleware for each request, from the request's
        ``Cookie`` header and scheme (never the environ itself, which holds this
        session: no reference cycle)."""
        self._policy = policy
        self._header = cookie_header
        self._https = https

    # -- reading -----------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        """Load the session from the request's cookie (and the store) once."""
        data = self._data
        if data is not None:
            return data
        if self._started:
            log.warning(
                "the session was first used after the response started: no "
                "Vary: Cookie could be added, and changes cannot be saved"
            )
        data = self._data = {}
        header = self._header
        policy = self._policy
        name = policy.name
        if not header or name not in header:
            return data
        value = _first_cookie(header, name)
        if value is None:
            return data
        # The first cookie of our name wins, the others are not looked at: one
        # verification and one store lookup per request, however many a request
        # carries (4,800 repeated cookies made 4,800 Redis GETs). Browsers send
        # the cookie of the most specific path first.
        self._had_cookie = True
        opened = policy.open(value, clock())
        if opened is not None:
            payload, current = opened
            data = self._data = payload["d"]
            self._created = payload["c"]
            self._issued = payload["t"]
            self._sid = payload.get("s")
            self._new = False
            self._reissue = not current
        return data

    def __getitem__(self, key: str) -> Any:
        self._accessed = True
        return (self._data if self._data is not None else self._load())[key]

    def get(self, key: str, default: Any = None) -> Any:
        self._accessed = True
        return (self._data if self._data is not None else self._load()).get(
            key, default
        )

    def __contains__(self, key: object) -> bool:
        self._accessed = True
        return key in (self._data if self._data is not None else self._load())

    def __iter__(self) -> Iterator[str]:
        self._accessed = True
        return iter(list(self._load()))

    def __len__(self) -> int:
        self._accessed = True
        return len(self._load())

    @property
    def new(self) -> bool:
        """True when the request brought no valid session (a read: adds Vary)."""
        self._accessed = True
        self._load()
        return self._new

    # -- changing ----------------------------------------------------------------

    def _writable(self) -> dict[str, Any]:
        # What a change sends depends on the request's cookie (a deletion cookie,
        # or none), so the response varies by Cookie, as after a read.
        self._accessed = True
        if self._started:
            raise SessionError(
                "the session was changed after the response started, when its "
                "cookie had already been decided; change the session before "
                "calling start_response (before returning the response)"
            )
        return self._data if self._data is not None else self._load()

    def __setitem__(self, key: str, value: Any) -> None:
        data = self._writable()
        if not isinstance(key, str):
            raise TypeError(f"session keys are strings (JSON), got {key!r}")
        try:
            _check_json(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"session[{key!r}]: the value cannot be stored as JSON ({exc})"
            ) from None
        data[key] = value
        self._modified = True

    def __delitem__(self, key: str) -> None:
        data = self._writable()
        self._accessed = True  # a KeyError tells whether the key was there
        del data[key]
        self._modified = True

    def clear(self) -> None:
        """Remove every key (the cookie is deleted when the response starts)."""
        data = self._writable()
        if data:
            data.clear()
            self._modified = True

    def mark_modified(self) -> None:
        """Save the session at the end of this request even though no key was
        assigned: after changing a value in place (``session["cart"].append(3)``)."""
        self._writable()
        self._modified = True

    def regenerate(self) -> None:
        """Keep the data under a new session id and delete the old record, so an id
        planted before login is worthless after it. Call it when the user logs in
        (or their privileges change). The absolute lifetime starts again.

        With signed cookies there is no record to delete: the old cookie stays
        valid until it expires (cookie sessions cannot be revoked).
        """
        self._writable()
        self._regenerated = True

    def invalidate(self) -> None:
        """Empty the session, delete its record and its cookie (call it at logout).
        Keys set afterwards in the same request start a new session, under a new
        id."""
        data = self._writable()
        data.clear()
        self._invalidated = True
        self._modified = False

    # -- responding --------------------------------------------------------------

    def respond(self, status: str, headers: Headers) -> None:
        """Called by the middleware at ``start_response``: decide what to save and
        add Set-Cookie and Vary to *headers*. A session never touched adds nothing.
        On an exc_info replacement the same cookie is added again, unless the
        replacement is a 5xx; a 5xx response saves nothing and sends no cookie (a
        failed request should not half-change a session), and with a store nothing
        is written until the response completed without an error (:meth:`commit`).
        """
        if self._data is None and not self._accessed:
            self._started = True  # never touched: nothing to send
            return
        failed = status.startswith("5")
        if not self._saved and not failed:
            self._set_cookie = self._save()
            self._saved = True
        self._started = True
        # A 5xx, first or an exc_info replacement of a 2xx, sends no cookie.
        cookie = None if failed else self._set_cookie
        if self._accessed or cookie is not None:
            add_vary(headers, "Cookie")
        if cookie is not None:
            headers.append(("Set-Cookie", cookie))
            if get_header(headers, "Cache-Control") is None:
                # A shared cache must never hand one visitor's session to another.
                headers.append(("Cache-Control", "private"))

    @property
    def pending(self) -> bool:
        """Whether this response decided store writes that :meth:`commit` makes."""
        return bool(self._pending)

    def commit(self) -> None:
        """Make the store writes this response decided (the middleware calls it when
        the response completed without an error and was not a 5xx)."""
        pending, self._pending = self._pending, None
        store = self._policy.store
        for action, arguments in pending or ():
            getattr(store, action)(*arguments)

    def discard(self) -> None:
        """Forget the store writes this response decided: it failed."""
        if self._pending:
            log.info("a failed response: its session changes are not saved")
        self._pending = None

    def _save(self) -> str | None:
        """Decide what the session sends: the Set-Cookie value, if any. A store's
        writes are only noted, for :meth:`commit` at the end of the response."""
        data = self._data
        if data is None:
            return None
        policy = self._policy
        store = policy.store
        now = int(clock())
        old_sid = self._sid
        pending = self._pending = []
        if (
            store is not None
            and old_sid is not None
            and (self._invalidated or self._regenerated or not data)
        ):
            # Made after the new record's save (commit() goes in order and stops at
            # a failure): a save that fails leaves the old record in place.
            self._sid = None
        else:
            old_sid = None
        try:
            if not data:
                # Never store an empty session; forget one the client holds.
                if self._had_cookie and (self._modified or self._invalidated):
                    return policy.deletion(self._https)
                return None
            reissue = self._reissue or (
                policy.reissue_after is not None
                and now - self._issued >= policy.reissue_after
            )
            if not (self._modified or self._regenerated or reissue):
                return None
            if self._new or self._regenerated or self._invalidated:
                self._created = now
            max_age = policy.lifetime(self._created, now)
            payload: dict[str, Any] = {"c": self._created, "t": now, "d": data}
            if store is None:
                value = policy.dump_cookie(payload)
            else:
                sid = self._sid or secrets.token_urlsafe(32)
                self._sid = payload["s"] = sid
                pending.append(("save", (sid, policy.dump_record(payload), max_age)))
                value = sid
            cookie = policy.set_cookie(value, max_age, self._https)
            if len(cookie) > COOKIE_LIMIT:
                raise SessionTooLarge(len(cookie), COOKIE_LIMIT)
            return cookie
        finally:
            if old_sid is not None:  # after the save: see above
                pending.append(("delete", (old_sid,)))

    def __repr__(self) -> str:
        state = "not loaded" if self._data is None else f"{len(self._data)} keys"
        return f"<SessionData {state}>"
