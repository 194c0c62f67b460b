"""The middleware: :class:`BasicAuth`, which lets a request through to the app
only with credentials that verify, and answers the rest with a 401 or a 429."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from ..backends import StoreOption
from ..http import escape, prefers_json, prefixes, under
from ..options import (
    Choice,
    Count,
    Dotted,
    Flag,
    Names,
    Option,
    PathOption,
    Seconds,
    Text,
)
from ..proxy import Middleware
from ..wsgi import Answer, WSGIEnvironment, status_pages
from .cache import VerifiedCache
from .credentials import parse_basic
from .htpasswd import Htpasswd
from .passwords import UnsupportedHash, hash_cost, hash_kind, load_bcrypt, verify
from .shared_throttle import RedisFailures, ThrottleUnavailable
from .throttle import Failures
from .throttle import key as throttle_key

__all__ = ["BasicAuth", "Check"]

log = logging.getLogger("middleware.auth")

#: A check callable: ``(username, password, environ) -> bool``.
Check = Callable[[str, str, WSGIEnvironment], bool]

#: The clock failures and the cache are timed by; tests replace it.
clock = time.monotonic


def _absolute(path: object) -> bool:
    return isinstance(path, str) and path.startswith("/")


class BasicAuth(Middleware):
    """HTTP Basic authentication in front of an app.

    Exactly one source of users is required (none is an error, never an open
    door):

    :param users: a mapping of user name to password hash (any format of
        :mod:`middleware.auth.passwords`).
    :param htpasswd: the path of an htpasswd file (``htpasswd -B``); re-read when it
        changes.
    :param check: a callable ``(username, password, environ) -> bool``.

    Options:

    :param realm: shown by the browser's login prompt; no CR or LF.
    :param exempt: paths (whole segments: ``/static`` exempts ``/static`` and
        ``/static/app.css``, not ``/staticadmin``) served without credentials.
    :param cache_ttl: seconds a successful check is remembered (0: never), keyed by
        a keyed BLAKE2b MAC of user, password and stored hash under a per-process
        random key:
        no password is kept, and a changed hash misses the cache.
    :param cache_size: the most credentials remembered.
    :param max_failures: attempts per client address in *failure_window* seconds
        whose credentials were not already verified (see :meth:`answer`); past
        them, such a request gets 429 with Retry-After and no hash is checked.
        None turns throttling off.
    :param failure_window: seconds a failure counts for.
    :param allow_plaintext: accept plain-text passwords in *users* or the file.
    :param lock_users: also count attempts per user name, from any address, and
        refuse that user's unverified attempts past *max_failures*: it slows a
        guesser spread over many addresses, at the price that anyone can lock a
        named user out of new logins for the window (cached credentials still
        pass). Off by default.
    :param throttle_store: where the failure counts live: ``"memory"`` (this
        process; the default), or a ``redis://`` URL or ``redis.Redis`` client,
        shared by every worker and machine, so *max_failures* holds in total.
    :param on_store_error: when that Redis fails: ``"deny"`` answers attempts that
        need the throttle with 503; ``"allow"`` checks them unthrottled. One error
        line either way; never a 500.
    """

    # A Redis URL may hold a password.
    secret_options: ClassVar[frozenset[str]] = frozenset({"throttle_store"})
    #: The declarations the plain options are checked (and read from ini files) by;
    #: ``users``, ``htpasswd`` and ``check`` (exactly one) are checked together.
    options: ClassVar[dict[str, Option[Any]]] = {
        "realm": Text(r"[^\x00-\x1f\x7f]*", expects="text without control characters"),
        "htpasswd": PathOption(none=True),
        "check": Dotted(expects="a callable (user, password, environ)", none=True),
        "exempt": Names(_absolute, expects="a list of paths starting with '/'"),
        "cache_ttl": Seconds(positive=False, whole=False),
        "cache_size": Count(),
        "max_failures": Count(minimum=1, none=True),
        "failure_window": Seconds(whole=False),
        "allow_plaintext": Flag(),
        "lock_users": Flag(),
        "throttle_store": StoreOption(),
        "on_store_error": Choice("deny", "allow"),
    }

    def __init__(
        self,
        realm: str = "Restricted",
        users: Mapping[str, str] | None = None,
        htpasswd: str | os.PathLike[str] | None = None,
        check: Check | None = None,
        exempt: Iterable[str] = (),
        cache_ttl: float = 300,
        cache_size: int = 10_000,
        max_failures: int | None = 10,
        failure_window: float = 300,
        allow_plaintext: bool = False,
        lock_users: bool = False,
        throttle_store: Any = "memory",
        on_store_error: str = "deny",
    ) -> None:
        sources = [
            name
            for name, value in (
                ("users", users),
                ("htpasswd", htpasswd),
                ("check", check),
            )
            if value is not None
        ]
        if len(sources) != 1:
            raise ValueError(
                "users, htpasswd, check: exactly one is required, got "
                f"{', '.join(sources) or 'none'} (without users, nothing could pass)"
            )
        options = self.options
        self.realm: str = options["realm"].check("realm", realm)
        self.allow_plaintext: bool = options["allow_plaintext"].check(
            "allow_plaintext", allow_plaintext
        )
        self._htpasswd: Htpasswd | None = None
        self._users: dict[str, str] | None = None
        if users is not None:
            if not isinstance(users, Mapping) or not users:
                raise ValueError(
                    f"users: expected a non-empty mapping of user to hash: {users!r}"
                )
            for user, stored in users.items():
                if not isinstance(user, str) or not user or ":" in user:
                    raise ValueError(f"users: bad user name {user!r}")
                try:
                    hash_kind(stored, allow_plaintext)
                except (UnsupportedHash, AttributeError, TypeError) as exc:
                    raise ValueError(f"users[{user!r}]: {exc}") from None
            self._users = dict(users)
        elif htpasswd is not None:
            path = Path(options["htpasswd"].check("htpasswd", htpasswd))
            try:
                self._htpasswd = Htpasswd(path, allow_plaintext, clock())
            except OSError as exc:
                raise ValueError(
                    f"htpasswd: cannot read {str(path)!r}: {exc.strerror}"
                ) from None
            if not self._htpasswd.users:
                raise ValueError(f"htpasswd: {str(path)!r} has no users")
        else:
            options["check"].check("check", check)
        self._check = check
        exempt = options["exempt"].check("exempt", exempt)
        self.exempt = prefixes(exempt)
        self.cache_ttl: float = options["cache_ttl"].check("cache_ttl", cache_ttl)
        self.cache_size: int = options["cache_size"].check("cache_size", cache_size)
        self.max_failures: int | None = options["max_failures"].check(
            "max_failures", max_failures
        )
        self.failure_window: float = options["failure_window"].check(
            "failure_window", failure_window
        )
        self.lock_users: bool = options["lock_users"].check("lock_users", lock_users)
        if any(
            hash_kind(h, allow_plaintext) == "bcrypt" for h in self._current().values()
        ):
            load_bcrypt()  # an error now, naming the extra, not at the first login
        escaped = realm.replace("\\", "\\\\").replace('"', '\\"')
        self._challenge = f'Basic realm="{escaped}", charset="UTF-8"'
        self._cache = VerifiedCache()
        self.throttle_store = options["throttle_store"].check(
            "throttle_store", throttle_store
        )
        self.on_store_error: str = options["on_store_error"].check(
            "on_store_error", on_store_error
        )
        self._failures: Failures | RedisFailures = (
            Failures(failure_window)
            if self.throttle_store == "memory"
            else RedisFailures(
                failure_window, self.throttle_store, self.on_store_error == "deny"
            )
        )
        self._decoys: tuple[dict[str, str], str] | None = None

    def _current(self) -> dict[str, str]:
        if self._htpasswd is not None:
            return self._htpasswd.current(clock())
        return self._users or {}

    # -- per request ---------------------------------------------------------------

    def answer(self, environ: WSGIEnvironment) -> Answer | None:
        """See :meth:`_answer`; a shared throttle that cannot be asked (with
        ``on_store_error="deny"``) is a 503."""
        try:
            return self._answer(environ)
        except ThrottleUnavailable:
            status, headers, body = _page(environ, _UNAVAILABLE)
            return status, [*headers, ("Retry-After", "1")], body

    def _answer(self, environ: WSGIEnvironment) -> Answer | None:
        """None to let the request through (REMOTE_USER set), else the 401 or 429.

        The throttle's model: credentials that verified within *cache_ttl* pass
        whatever the throttle says (Basic sends them on every request, so a
        throttle in front of them would lock honest users out). Any other attempt
        is counted against the client's address (and with *lock_users*, the user
        name) before its hash is checked, atomically, so no more than
        *max_failures* checks per address run in a *failure_window*, however many
        arrive at once; past that it gets 429 without a check. A success takes its
        own count back."""
        if self.exempt and self._is_exempt(environ):
            environ.pop("REMOTE_USER", None)
            environ.pop("AUTH_TYPE", None)
            return None
        header = environ.get("HTTP_AUTHORIZATION")
        if not header:
            return self._refuse(environ)
        now = clock()
        credentials = parse_basic(header)
        if credentials is None:
            if self.max_failures is not None:
                self._failures.add(self._address_key(environ), now)
            return self._refuse(environ)
        user, password = credentials
        users = self._current() if self._check is None else None
        stored = "" if users is None else users.get(user)
        address = ""
        cache_key = b""
        if self.cache_ttl and stored is not None:
            cache_key = self._cache.key(user, password, stored)
            origin = self._cache.fresh(cache_key, now)
            if origin is not None:
                # Verified credentials pass, unless this address is throttled and
                # they were verified from elsewhere: else a throttled guesser would
                # learn a cached password by a 200 among its 429s, unbounded.
                if self.max_failures is None or not self._failures.anyone:
                    return self._let_in(environ, user)  # nobody is throttled
                address = self._address_key(environ)
                if origin == address or not self._is_throttled(address, now):
                    return self._let_in(environ, user)
        if not address:
            address = self._address_key(environ)
        keys: tuple[str, ...] = ()
        if self.max_failures is not None:
            keys = (address,)
            if self.lock_users:
                keys += (throttle_key("u", user),)
            wait = self._failures.attempt(keys, now, self.max_failures)
            if wait:
                return self._throttled(environ, wait)
        if self._check is not None:
            ok = bool(self._check(user, password.decode("utf-8"), environ))
        elif stored is None:
            # An unknown user costs what the costliest known one does: checked
            # against that hash, and refused whatever the result.
            if users:
                verify(password, self._decoy(users), self.allow_plaintext)
            ok = False
        else:
            ok = verify(password, stored, self.allow_plaintext)
        if ok:
            if cache_key:
                self._cache.remember(
                    cache_key, now + self.cache_ttl, self.cache_size, address
                )
            if keys:
                self._failures.forgive(keys[0], now)
                if self.lock_users:
                    self._failures.clear(keys[1])
            return self._let_in(environ, user)
        log.info(
            'failed Basic login for user "%s" from %s',
            escape(user),
            escape(environ.get("REMOTE_ADDR") or "-"),
        )
        return self._refuse(environ)

    def _let_in(self, environ: WSGIEnvironment, user: str) -> Answer | None:
        """Through to the app, as *user*."""
        environ["REMOTE_USER"] = user
        environ["AUTH_TYPE"] = "Basic"
        return None

    def _is_throttled(self, address: str, now: float) -> bool:
        """Whether the address (its throttle key) is past *max_failures* now."""
        if self.max_failures is None or not self._failures.anyone:
            return False
        return self._failures.retry_after(address, now, self.max_failures) > 0

    def _address_key(self, environ: WSGIEnvironment) -> str:
        return throttle_key("a", environ.get("REMOTE_ADDR") or "")

    def _decoy(self, users: dict[str, str]) -> str:
        """The costliest hash of *users*, to check unknown users against (so a
        user's existence does not show in the time a refusal takes); remembered
        per table."""
        decoy = self._decoys
        if decoy is None or decoy[0] is not users:
            stored = max(
                users.values(), key=lambda h: hash_cost(h, self.allow_plaintext)
            )
            decoy = self._decoys = (users, stored)
        return decoy[1]

    def _is_exempt(self, environ: WSGIEnvironment) -> bool:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        return under(path, self.exempt)

    def _refuse(self, environ: WSGIEnvironment) -> Answer:
        status, headers, body = _page(environ, _UNAUTHORIZED)
        return status, [*headers, ("WWW-Authenticate", self._challenge)], body

    def _throttled(self, environ: WSGIEnvironment, wait: int) -> Answer:
        status, headers, body = _page(environ, _TOO_MANY)
        return status, [*headers, ("Retry-After", str(wait))], body


_UNAUTHORIZED = status_pages("401 Unauthorized", "Authentication required.")
_TOO_MANY = status_pages("429 Too Many Requests", "Too many failed logins.")
_UNAVAILABLE = status_pages(
    "503 Service Unavailable", "Logins cannot be checked now; try again."
)


def _page(environ: WSGIEnvironment, pages: tuple[Answer, Answer]) -> Answer:
    """The JSON page when the request's Accept prefers JSON, else the HTML one."""
    return pages[1] if prefers_json(environ.get("HTTP_ACCEPT")) else pages[0]
