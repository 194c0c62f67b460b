"""The :class:`RateLimit` middleware: requests counted per client (or user, or a
key of yours) against one or more limits, in memory or in Redis, by the ``limits``
library; a 429 with ``Retry-After`` past them, and the IETF rate-limit fields on
every limited response."""

from __future__ import annotations

import logging
import math
import socket
import time
from collections.abc import Callable, Iterable
from hashlib import blake2b
from pathlib import Path
from typing import Any, ClassVar

from ..backends import Breaker, StoreOption
from ..http import prefers_json, prefixes, under
from ..options import REFUSED, Choice, Names, Option, Text, import_dotted
from ..proxy import Middleware, Responder
from ..wsgi import Answer, Headers, WSGIEnvironment, status_pages
from .storage import Tracked, describe, load_limits, make_storage

__all__ = ["STRATEGIES", "RateLimit"]

log = logging.getLogger("middleware.rate_limit")

#: The ``strategy`` option's values, and the ``limits`` class of each.
STRATEGIES = {
    "fixed-window": "FixedWindowRateLimiter",
    "moving-window": "MovingWindowRateLimiter",
    "sliding-window-counter": "SlidingWindowCounterRateLimiter",
}
# Before each key in the store, with the strategy: in one Redis, the same limit
# counted by two strategies keeps two records (a fixed window's counter is not a
# moving window's list: Redis answered WRONGTYPE).
_NAMESPACE = "middleware.rate_limit"
YEAR = 365 * 86400
_TOO_MANY = status_pages("429 Too Many Requests", "Too many requests.")
_UNAVAILABLE = status_pages(
    "503 Service Unavailable", "The rate limit cannot be checked now."
)


def address_key(environ: WSGIEnvironment) -> str | None:
    """``key="address"``: ``REMOTE_ADDR`` (behind proxies, as
    :class:`~middleware.ProxyHeaders` set it); an IPv6 address counts by its /64
    network, which one client usually holds whole. None (not limited) without an
    address."""
    remote: str = environ.get("REMOTE_ADDR") or ""
    if ":" not in remote:
        return remote or None
    try:
        packed = socket.inet_pton(socket.AF_INET6, remote)
    except (OSError, ValueError):
        return remote
    if packed[:12] == _MAPPED:  # a dual-stack server's IPv4 client
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    if packed[:12] == _NAT64 or packed == _LOOPBACK:  # one host each, not a /64
        return socket.inet_ntop(socket.AF_INET6, packed)
    return socket.inet_ntop(socket.AF_INET6, packed[:8] + bytes(8)) + "/64"


_MAPPED = bytes(10) + b"\xff\xff"  # ::ffff:0:0/96
_NAT64 = bytes.fromhex("0064ff9b") + bytes(8)  # 64:ff9b::/96, IPv4 behind NAT64
_LOOPBACK = bytes(15) + b"\x01"


def user_key(environ: WSGIEnvironment) -> str | None:
    """``key="user"``: ``REMOTE_USER``, set by BasicAuth or the server; None (not
    limited) for an anonymous request."""
    user: str | None = environ.get("REMOTE_USER") or None
    return user


class _Key(Option[Any]):
    """``"address"``, ``"user"`` or a callable ``environ -> str | None``; in ini
    files those words or a dotted name."""

    expects = "'address', 'user' or a callable environ -> str | None"

    def accept(self, value: Any) -> Any:
        if value in ("address", "user") or callable(value):
            return value
        return REFUSED

    def convert(self, text: str, here: Path) -> Any:
        word = text.strip()
        return word if word in ("address", "user") else import_dotted(word)


class _Counting(Responder["RateLimit"]):
    """Counts the request before the app runs; adds the fields to the response."""

    fields: tuple[tuple[str, str], ...] = ()

    def on_request(self) -> Answer | None:
        middleware, environ = self.middleware, self.environ
        if middleware.exempt and middleware.is_exempt(environ):
            return None
        answer, self.fields = middleware.count(environ)
        return answer

    def on_start(self, status: str, headers: Headers) -> None:
        if self.fields:
            present = {name.lower() for name, _ in headers}
            headers.extend(f for f in self.fields if f[0].lower() not in present)


class RateLimit(Middleware):
    """Limit how often each client may call the app.

    :param limits: one or more limits in the ``limits`` library's notation:
        ``"10/second"``, ``"100 per minute"``, ``"5/second; 1000/hour"`` (or a list
        of such strings). A request must pass them all.
    :param key: what is counted: ``"address"`` (``REMOTE_ADDR``, an IPv6 address by
        its /64), ``"user"`` (``REMOTE_USER``), or a callable ``environ -> str |
        None``. A request whose key is None is not limited.
    :param store: ``"memory"`` (this process only), a ``redis://`` or ``rediss://``
        URL (every process and machine sharing it; timeouts of 0.5 s), or a
        ``redis.Redis`` client (its own pool and timeouts).
    :param strategy: ``"moving-window"`` (exact: no more than N in any window),
        ``"fixed-window"`` (cheapest; up to 2N across a window's edge) or
        ``"sliding-window-counter"`` (an estimate between the two).
    :param exempt: path prefixes never counted (whole segments, as BasicAuth's).
    :param on_store_error: when the store fails (Redis down or frozen):
        ``"deny"`` answers 503 with ``Retry-After: 1``; ``"allow"`` lets the request
        through unlimited. Either way one error line is logged naming the store;
        never a 500, never a hang.

    Past a limit: ``429 Too Many Requests`` with ``Retry-After`` (whole seconds)
    and a small HTML or JSON page by the client's Accept. Every counted response
    carries ``RateLimit-Policy`` and ``RateLimit`` as in
    draft-ietf-httpapi-ratelimit-headers-10.
    """

    responder = _Counting
    #: The declarations each option is checked (and read from ini files) by.
    options: ClassVar[dict[str, Option[Any]]] = {
        "limits": Text(expects="limits such as '10/second' or '5/second; 1000/hour'"),
        "key": _Key(),
        "store": StoreOption(),
        "strategy": Choice(*STRATEGIES),
        "exempt": Names(
            lambda p: isinstance(p, str) and p.startswith("/"),
            expects="a list of paths starting with '/'",
        ),
        "on_store_error": Choice("deny", "allow"),
    }

    def __init__(
        self,
        limits: str | list[str] | tuple[str, ...],
        *,
        key: str | Callable[[WSGIEnvironment], str | None] = "address",
        store: Any = "memory",
        strategy: str = "moving-window",
        exempt: Iterable[str] = (),
        on_store_error: str = "deny",
    ) -> None:
        library = load_limits()
        options = self.options
        if isinstance(limits, list | tuple) and all(isinstance(x, str) for x in limits):
            text = "; ".join(limits)
        elif isinstance(limits, str):
            text = limits
        else:
            raise ValueError(
                f"limits: expected {options['limits'].expects}, got {limits!r}"
            )
        self.limits: str = options["limits"].check("limits", text)
        try:
            self.items = tuple(library.parse_many(self.limits))
        except ValueError:
            raise ValueError(
                f"limits: expected {options['limits'].expects}, got {limits!r}"
            ) from None
        if not self.items:
            raise ValueError(f"limits: expected at least one limit, got {limits!r}")
        for item in self.items:  # what Redis and the header fields can hold
            if not (1 <= item.amount <= 10**9 and 1 <= item.get_expiry() <= 10 * YEAR):
                raise ValueError(
                    f"limits: each limit allows 1 to 10**9 requests in 1 second to "
                    f"10 years, got {item.amount} per {item.get_expiry()} s in "
                    f"{limits!r}"
                )
        self.key = options["key"].check("key", key)
        self.store = options["store"].check("store", store)
        self.strategy: str = options["strategy"].check("strategy", strategy)
        exempt = options["exempt"].check("exempt", exempt)
        self.exempt: tuple[str, ...] = prefixes(exempt)
        self.on_store_error: str = options["on_store_error"].check(
            "on_store_error", on_store_error
        )
        self._key: Callable[[WSGIEnvironment], str | None] = {
            "address": address_key,
            "user": user_key,
        }.get(self.key, self.key)
        storage = make_storage(self.store)
        limiter_class = getattr(library.strategies, STRATEGIES[self.strategy])
        self._limiter = limiter_class(storage)
        self._namespace = f"{_NAMESPACE}/{self.strategy}"
        self._store_name = describe(self.store)
        self._breaker = Breaker()
        self._tracked = Tracked(self._forget) if self.store == "memory" else None
        self._policy = ", ".join(
            f'"{_name(item)}";q={item.amount};w={item.get_expiry()}'
            for item in self.items
        )

    # A Redis URL may hold a password.
    secret_options: ClassVar[frozenset[str]] = frozenset({"store"})

    def _forget(self, identifier: str) -> None:
        for item in self.items:
            self._limiter.clear(item, self._namespace, identifier)

    def is_exempt(self, environ: WSGIEnvironment) -> bool:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        return under(path, self.exempt)

    def count(
        self, environ: WSGIEnvironment
    ) -> tuple[Answer | None, tuple[tuple[str, str], ...]]:
        """Count one request: ``(the answer, or None to call the app; the
        fields to add to the app's response)``."""
        try:
            found: object = self._key(environ)
            if found is None:
                return None, ()
            identifier = found if isinstance(found, str) else str(found)
        except Exception:
            log.exception(
                "RateLimit: the key function %r raised; not limited", self.key
            )
            return None, ()
        # Keys stay short and storable whatever the request holds (a lone
        # surrogate cannot be sent to Redis).
        if len(identifier) > 64 or not identifier.isascii():
            digest = blake2b(
                identifier.encode("utf-8", "surrogatepass"), digest_size=16
            )
            identifier = "#" + digest.hexdigest()
        limiter = self._limiter
        if self._breaker.closed():  # failed within the last second: not asked
            return self._store_failed(environ, None), ()
        try:
            if self._tracked is not None:
                self._tracked.see(identifier)
            over = None
            for item in self.items:
                if not limiter.hit(item, self._namespace, identifier):
                    over = item
                    break
            stats = [
                (item, limiter.get_window_stats(item, self._namespace, identifier))
                for item in self.items
            ]
        except Exception as exc:
            self._breaker.failed()
            return self._store_failed(environ, exc), ()
        self._breaker.worked()
        now = time.time()
        # The field names the limit with the least left (the soonest reset on a tie).
        item, window = min(stats, key=lambda s: (s[1].remaining, s[1].reset_time))
        if over is not None:
            item = over
            window = next(w for i, w in stats if i is over)
        reset = max(math.ceil(window.reset_time - now), 0)
        fields = (
            ("RateLimit-Policy", self._policy),
            ("RateLimit", f'"{_name(item)}";r={window.remaining};t={reset}'),
        )
        if over is None:
            return None, fields
        status, headers, body = _page(environ, _TOO_MANY)
        answer = (
            status,
            [*headers, ("Retry-After", str(max(reset, 1))), *fields],
            body,
        )
        return answer, ()

    def _store_failed(
        self, environ: WSGIEnvironment, exc: Exception | None
    ) -> Answer | None:
        """The answer while the store fails; *exc* is logged (None: the breaker
        is open, the failure already logged)."""
        if exc is not None:
            log.error(
                "RateLimit: the store %s failed (%s: %s); %s for a second",
                self._store_name,
                type(exc).__name__,
                exc,
                "answering 503" if self.on_store_error == "deny" else "not limiting",
            )
        if self.on_store_error == "allow":
            return None
        status, headers, body = _page(environ, _UNAVAILABLE)
        return status, [*headers, ("Retry-After", "1")], body


def _name(item: Any) -> str:
    """A limit's name in the fields: ``10-per-1-minute``."""
    return f"{item.amount}-per-{item.multiples}-{item.GRANULARITY.name}"


def _page(environ: WSGIEnvironment, pages: tuple[Answer, Answer]) -> Answer:
    return pages[1] if prefers_json(environ.get("HTTP_ACCEPT")) else pages[0]
