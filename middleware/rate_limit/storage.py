"""Where the counts of a rate limit live: the ``limits`` library's storage for
``"memory"``, a ``redis://`` URL or a redis client, with short timeouts; and the
bound on the keys a memory store tracks."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..backends import redis_client, safe_url

__all__ = [
    "KEY_LIMIT",
    "Tracked",
    "describe",
    "load_limits",
    "make_storage",
]

#: Identifiers a memory store tracks at most; past it, the one seen least recently
#: is forgotten (its counts start again).
KEY_LIMIT = 100_000


def load_limits() -> Any:
    """The ``limits`` library, or an ImportError saying how to install it."""
    try:
        import limits
        import limits.storage
        import limits.strategies
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise ImportError(
            "RateLimit needs the limits library: "
            "pip install 'wsgi-middleware-toolkit[ratelimit]'"
        ) from exc
    return limits


def make_storage(store: Any) -> Any:
    """The ``limits`` storage for *store*: ``"memory"``, a ``redis://``,
    ``rediss://`` or ``unix://`` URL, or a ``redis.Redis`` client with timeouts
    (:func:`~middleware.backends.redis_client`)."""
    limits = load_limits()
    if store == "memory":
        return limits.storage.MemoryStorage()
    client = redis_client("store", store)
    return limits.storage.RedisStorage(
        "redis://", connection_pool=client.connection_pool
    )


def describe(store: Any) -> str:
    """The store as an error line names it: ``memory``, or the URL without a
    password, or the client's host and port."""
    if store == "memory":
        return "memory"
    if isinstance(store, str):
        return safe_url(store)
    kwargs = store.connection_pool.connection_kwargs
    where = kwargs.get("path") or f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
    return f"redis client {where}"


class Tracked:
    """The identifiers a memory store counts, least recently seen first: past
    *limit*, the oldest is forgotten, its counts cleared through *clear*, so a
    flood of unique clients cannot grow the store without bound."""

    def __init__(self, clear: Callable[[str], None], limit: int = KEY_LIMIT) -> None:
        self.limit = limit
        self._clear = clear
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def see(self, identifier: str) -> None:
        with self._lock:
            seen = self._seen
            if identifier in seen:
                seen.move_to_end(identifier)
                return
            seen[identifier] = None
            forgotten = seen.popitem(last=False)[0] if len(seen) > self.limit else None
        if forgotten is not None:
            self._clear(forgotten)

    def __len__(self) -> int:
        return len(self._seen)
