"""What the middleware that keep state in Redis share (RateLimit, BasicAuth's
throttle): clients with short timeouts, URLs fit for a log line, and a breaker
that stops asking a Redis that just failed.

This module depends on the option vocabulary only; redis-py is imported only
when a Redis is configured.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .options import REFUSED, Option

__all__ = [
    "LONGEST_WAIT",
    "REDIS_TIMEOUT",
    "Breaker",
    "StoreOption",
    "redis_client",
    "safe_url",
]

#: Seconds a Redis client made from a URL waits to connect and for each reply (as
#: the session store's): a frozen Redis fails a request in this time, it does not
#: hold it.
REDIS_TIMEOUT = 0.5
#: The longest a given client may wait for a frozen Redis (its timeout times its
#: tries) before it is refused at construction.
LONGEST_WAIT = 2.0


def safe_url(url: str) -> str:
    """A Redis URL fit for a log line: no user, no password, no query (redis-py
    takes ``?password=`` too)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        where = parts.hostname or ""
        if parts.port is not None:
            where += f":{parts.port}"
    except ValueError:  # a port that is not a number
        where = "?"
    return f"{parts.scheme}://{where}{parts.path}"


def redis_client(name: str, store: Any) -> Any:
    """The ``redis.Redis`` client for option *name*: made from a URL with connect
    and reply timeouts of :data:`REDIS_TIMEOUT`, or the one given, refused (a
    ``ValueError`` naming the option) when it could hold a request longer than
    :data:`LONGEST_WAIT` while Redis is frozen (its timeouts times its tries), or
    is not synchronous (``redis.asyncio``)."""
    import redis

    if isinstance(store, str):
        try:
            return redis.Redis.from_url(
                store,
                socket_timeout=REDIS_TIMEOUT,
                socket_connect_timeout=REDIS_TIMEOUT,
            )
        except ValueError as exc:
            raise ValueError(f"{name}: {exc} (got {safe_url(store)!r})") from None
    client = store
    if not isinstance(client, redis.Redis):
        raise ValueError(
            f"{name}: expected 'memory', a redis:// URL or a redis.Redis client, "
            f"got {client!r}"
        )
    kwargs = client.connection_pool.connection_kwargs
    timeouts: tuple[Any, Any] = (
        kwargs.get("socket_timeout"),
        kwargs.get("socket_connect_timeout"),
    )
    retry: Any = kwargs.get("retry")
    tries = 1 + (retry.get_retries() if hasattr(retry, "get_retries") else 0)
    longest: float | None = None
    if None not in timeouts:
        longest = max(float(timeouts[0]), float(timeouts[1])) * tries
    if longest is None or longest > LONGEST_WAIT:
        raise ValueError(
            f"{name}: this redis client could hold a request for "
            f"{'ever' if longest is None else f'{longest:g} s'} while "
            f"Redis is frozen (timeouts {timeouts[0]} and {timeouts[1]} s, {tries} "
            f"tries; redis.Redis() waits 5 s and retries 10 times by default); make "
            f"it with socket_timeout={REDIS_TIMEOUT}, socket_connect_timeout="
            f"{REDIS_TIMEOUT} and retry=None, or give a URL"
        )
    return client


class Breaker:
    """After a store failure, one second in which the store is not asked (each
    request gets the failure answer at once, and no more error lines), so a
    frozen Redis costs one timeout a second, not one per request or per call."""

    def __init__(self, pause: float = 1.0) -> None:
        self.pause = pause
        self._until = 0.0

    def closed(self) -> bool:
        """Whether the store is not to be asked now (it failed within the pause)."""
        return self._until != 0.0 and time.monotonic() < self._until

    def failed(self) -> None:
        self._until = time.monotonic() + self.pause

    def worked(self) -> None:
        if self._until:
            self._until = 0.0


class StoreOption(Option[Any]):
    """Where a middleware keeps its counts: ``"memory"``, a ``redis://``,
    ``rediss://`` or ``unix://`` URL, or a ``redis.Redis`` client (checked further
    by :func:`redis_client`); in ini files the word or the URL."""

    expects = "'memory', a redis:// or rediss:// URL, or a redis.Redis client"

    def accept(self, value: Any) -> Any:
        if value == "memory" or hasattr(value, "connection_pool"):
            return value
        if isinstance(value, str) and value.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            return value
        return REFUSED

    def convert(self, text: str, here: Path) -> str:
        return text.strip()
