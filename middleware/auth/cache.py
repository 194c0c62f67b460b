"""The cache of verified credentials: :class:`VerifiedCache`."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from hashlib import blake2b

__all__ = ["VerifiedCache"]


class VerifiedCache:
    """Credentials that verified, each until its expiry time, keyed by a keyed
    BLAKE2b MAC of user, password and stored hash under a per-process random key:
    no password is kept, and a changed hash misses the cache. Bounded by the size
    given to :meth:`remember`: past it, the oldest entry is dropped. Safe under
    threads: lookups read the dict, changes take a lock (eviction without it raced:
    ``KeyError`` or "dictionary changed size" under load). Iterating gives the
    keys."""

    def __init__(self) -> None:
        # key -> (expiry, the throttle key of the address it verified from)
        self.entries: dict[bytes, tuple[float, str]] = {}
        self._secret = secrets.token_bytes(32)
        self._lock = threading.Lock()

    def key(self, user: str, password: bytes, stored: str) -> bytes:
        """The cache key of these credentials against this *stored* hash."""
        message = b"\0".join((user.encode("utf-8"), password, stored.encode("utf-8")))
        return blake2b(message, key=self._secret).digest()

    def fresh(self, key: bytes, now: float) -> str | None:
        """The address (its throttle key) *key* verified from, if it is remembered
        and not yet expired at *now*; else None."""
        entry = self.entries.get(key)
        if entry is None or entry[0] <= now:
            return None
        return entry[1]

    def remember(self, key: bytes, expires: float, size: int, origin: str = "") -> None:
        """Remember *key*, verified from *origin*, until *expires*, keeping at most
        *size* entries."""
        with self._lock:
            entries = self.entries
            entries[key] = (expires, origin)
            while len(entries) > size:
                del entries[next(iter(entries))]

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[bytes]:
        with self._lock:
            return iter(list(self.entries))
