"""The throttle of failed logins: :class:`Failures` counts them per key."""

from __future__ import annotations

import math
import threading

__all__ = ["Failures"]


class Failures:
    """Failed attempts per key (a client address, a user name) in a fixed window.
    Bounded: past *limit* keys, the expired ones are dropped, then the oldest."""

    def __init__(self, window: float, limit: int = 100_000) -> None:
        self.window = window
        self.limit = limit
        self.counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def add(self, key: str, now: float) -> None:
        with self._lock:
            count, start = self.counts.get(key, (0, now))
            if now - start >= self.window:
                count, start = 0, now
            self.counts[key] = (count + 1, start)
            if len(self.counts) > self.limit:
                self.counts = {
                    k: v for k, v in self.counts.items() if now - v[1] < self.window
                }
                while len(self.counts) > self.limit:
                    del self.counts[next(iter(self.counts))]

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
