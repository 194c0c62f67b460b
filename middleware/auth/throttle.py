"""The throttle of failed logins: :class:`Failures` counts them per key."""

from __future__ import annotations

import math
import threading
from hashlib import blake2b

__all__ = ["Failures", "key"]


def key(kind: str, value: str) -> str:
    """The throttle's key for a client address or a user name: the value itself
    when short (an IP address), else a 128-bit digest of it, so no key is long
    whatever a client sends (a 3 KB user name, a forged X-Forwarded-For)."""
    if len(value) <= 64:
        return f"{kind}:{value}"
    digest = blake2b(value.encode("utf-8", "surrogatepass"), digest_size=16)
    return f"{kind}#{digest.hexdigest()}"


class Failures:
    """Failed attempts per key (a client address, a user name) in a fixed window.
    Bounded: past *limit* keys, the oldest window is dropped first. Keys are short
    (see :func:`key`): 100,000 of them take about 17 MB."""

    def __init__(self, window: float, limit: int = 100_000) -> None:
        self.window = window
        self.limit = limit
        self.counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    @property
    def anyone(self) -> bool:
        """Whether any key is counted (else nobody can be throttled)."""
        return bool(self.counts)

    def add(self, key: str, now: float) -> None:
        """Count one failure against *key* (a request that could not even be read)."""
        with self._lock:
            self._count(key, now)

    def attempt(self, keys: tuple[str, ...], now: float, maximum: int) -> int:
        """Count one attempt against each of *keys* before the check it allows,
        atomically, so that concurrent requests cannot all pass a check made
        before any of them counted: 0 when the check may run (the attempt is then
        counted), else the seconds to wait (and nothing is counted)."""
        with self._lock:
            for key in keys:
                entry = self.counts.get(key)
                if entry is not None and entry[0] >= maximum:
                    left = self.window - (now - entry[1])
                    if left > 0:
                        return math.ceil(left)
            for key in keys:
                self._count(key, now)
        return 0

    def forgive(self, key: str, since: float) -> None:
        """Take back one attempt counted against *key* at *since*: it succeeded.
        Nothing is taken from a window that began after it."""
        if key in self.counts:
            with self._lock:
                entry = self.counts.get(key)
                if entry is not None and entry[1] <= since:
                    if entry[0] <= 1:
                        del self.counts[key]
                    else:
                        self.counts[key] = (entry[0] - 1, entry[1])

    def _count(self, key: str, now: float) -> None:
        """One more against *key* (the lock held)."""
        counts = self.counts
        count, start = counts.get(key, (0, now))
        if now - start >= self.window:
            count, start = 0, now
            counts.pop(key, None)  # to the end: the table stays in start order
        counts[key] = (count + 1, start)
        # The oldest first out, one at a time (a rebuild of a full table under
        # the lock cost 14 ms a request).
        while len(counts) > self.limit:
            del counts[next(iter(counts))]

    def retry_after(self, key: str, now: float, maximum: int) -> int:
        """Seconds until *key* may try again (0: now)."""
        entry = self.counts.get(key)
        if entry is None or entry[0] < maximum:
            return 0
        left = self.window - (now - entry[1])
        return math.ceil(left) if left > 0 else 0

    def clear(self, key: str) -> None:
        if key in self.counts:  # the common case, a clean record, takes no lock
            with self._lock:
                self.counts.pop(key, None)
