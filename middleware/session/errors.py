"""The errors of the session middleware: each says what went wrong and what to do."""

from __future__ import annotations

__all__ = ["SessionError", "SessionTooLarge", "StoreError"]


class SessionError(RuntimeError):
    """The session was used in a way that would lose data: changed after the
    response started, or given a value JSON cannot hold."""


class SessionTooLarge(SessionError):
    """The signed-cookie session does not fit in one cookie (browsers drop a
    ``Set-Cookie`` header over 4096 bytes without a word)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the session cookie would be {size} bytes, over the {limit}-byte limit "
            "browsers keep; store less in the session, or use a server-side store "
            "(SQLiteStore, RedisStore)"
        )
        self.size = size
        self.limit = limit


class StoreError(SessionError):
    """A session store failed (a database that cannot be opened, Redis down). The
    request fails loudly rather than silently dropping session data."""
