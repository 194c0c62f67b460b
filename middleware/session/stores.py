"""Server-side session stores, behind one small interface.

A store keeps opaque strings (signed records made by the middleware) under session
ids, each with a time to live. It never interprets them: the signature is checked by
the middleware, so write access to the store alone cannot forge a session.

- :class:`MemoryStore`: one process; tests and development.
- :class:`SQLiteStore`: several processes on one machine (WAL mode), expired rows
  purged as it goes.
- :class:`RedisStore`: several machines; expiry is Redis's own, one round trip to
  read and one more only when the session changed.

Any store failure is a :class:`~middleware.session.StoreError` naming the store.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..backends import safe_url
from .errors import StoreError

if TYPE_CHECKING:
    import redis

__all__ = ["MemoryStore", "RedisStore", "SQLiteStore", "Store"]

log = logging.getLogger("middleware.session")


@runtime_checkable
class Store(Protocol):
    """What :class:`~middleware.session.Session` needs from a store."""

    def load(self, key: str) -> str | None:
        """The value saved under *key*, or None when there is none (or it expired)."""

    def save(self, key: str, value: str, ttl: int) -> None:
        """Save *value* under *key* for *ttl* seconds (at least 1), replacing any."""

    def delete(self, key: str) -> None:
        """Forget *key*; nothing happens when there is no such key."""


class MemoryStore:
    """Sessions in a dict of this process: lost at restart, not shared between
    processes. For tests and development. Expired entries are purged on save."""

    def __init__(self, purge_every: int = 1000) -> None:
        self._data: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._saves = 0
        self._purge_every = purge_every

    def load(self, key: str) -> str | None:
        entry = self._data.get(key)
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]

    def save(self, key: str, value: str, ttl: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._data[key] = (value, now + ttl)
            self._saves += 1
            if self._saves % self._purge_every == 0:
                self._data = {k: e for k, e in self._data.items() if e[1] > now}

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def __len__(self) -> int:
        """How many sessions are held, expired ones not yet purged included."""
        return len(self._data)

    def __repr__(self) -> str:
        return "MemoryStore()"


class SQLiteStore:
    """Sessions in an SQLite database file, shared by the processes of one machine.

    The database is opened in WAL mode (readers never wait for the writer), with a
    busy timeout so concurrent writers queue instead of failing. Each thread (and
    each process, after a fork) uses its own connection. Expired rows are deleted
    by a save at most once every *purge_interval* seconds, so the table does not
    grow without bound and no cron job is needed.

    :param path: the database file; its directory must exist. The table is created
        if missing. A file this process cannot write is refused here (a
        :class:`~middleware.session.StoreError` naming it), not at the first login.
        A file removed or replaced while running is opened again within a second
        (its sessions are gone: fresh sessions, no errors) and a warning logged.
    :param table: the table name (letters, digits and ``_``).
    :param timeout: seconds a writer waits for the lock before failing.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        table: str = "sessions",
        timeout: float = 5.0,
        purge_interval: float = 60.0,
    ) -> None:
        if not isinstance(path, str | os.PathLike) or str(path) in ("", ":memory:"):
            raise ValueError(
                f"path: expected a database file path, got {path!r} (an in-memory "
                "database is not shared between threads; use MemoryStore)"
            )
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise ValueError(
                f"path: the directory {str(self.path.parent)!r} does not exist"
            )
        if not (isinstance(table, str) and table.isidentifier() and table.isascii()):
            raise ValueError(f"table: expected an SQL identifier, got {table!r}")
        self.table = table
        self.timeout = timeout
        self.purge_interval = purge_interval
        self._local = threading.local()
        self._next_purge = 0.0
        self._sql_load = f"SELECT value FROM {table} WHERE id = ? AND expires > ?"
        self._sql_save = (
            f"INSERT OR REPLACE INTO {table} (id, value, expires) VALUES (?, ?, ?)"
        )
        self._sql_delete = f"DELETE FROM {table} WHERE id = ?"
        self._sql_purge = f"DELETE FROM {table} WHERE expires <= ?"
        # A write at once (the purge of expired rows), so that a database this
        # process cannot write fails here, not at the first login.
        with self._failures("open and write its database"):
            self._connection().execute(self._sql_purge, (time.time(),))
            self._next_purge = time.time() + purge_interval

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened again when the process forked (a
        connection must not cross a fork) or when the file was removed or replaced
        (a connection to a deleted file writes where no one will read): noticed
        within a second."""
        local = self._local
        connection: sqlite3.Connection | None = getattr(local, "connection", None)
        now = time.monotonic()
        if connection is not None and local.pid == os.getpid():
            if now < local.look:  # the file is looked at once a second (a stat
                return connection  # each time cost a third of a load)
            local.look = now + 1.0
            file = _identity(self.path)
            if local.file == file:
                return connection
            log.warning(
                "%r: the database file was removed or replaced; opened it again "
                "(sessions kept in the old file are gone)",
                self,
            )
            connection.close()
        connection = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} "
            "(id TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL NOT NULL)"
        )
        connection.execute(
            f"CREATE INDEX IF NOT EXISTS {self.table}_expires ON {self.table} (expires)"
        )
        local.connection, local.pid = connection, os.getpid()
        local.file, local.look = _identity(self.path), now + 1.0
        return connection

    def _failures(self, action: str) -> _Reraise:
        return _Reraise(self, action, sqlite3.Error)

    def load(self, key: str) -> str | None:
        with self._failures("load a session"):
            row = (
                self._connection()
                .execute(self._sql_load, (key, time.time()))
                .fetchone()
            )
        return None if row is None else str(row[0])

    def save(self, key: str, value: str, ttl: int) -> None:
        now = time.time()
        with self._failures("save a session"):
            connection = self._connection()
            connection.execute(self._sql_save, (key, value, now + ttl))
            if now >= self._next_purge:
                self._next_purge = now + self.purge_interval
                connection.execute(self._sql_purge, (now,))

    def delete(self, key: str) -> None:
        with self._failures("delete a session"):
            self._connection().execute(self._sql_delete, (key,))

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"


class RedisStore:
    """Sessions in Redis, for apps served from more than one machine.

    Each session is one string key, ``prefix + id``, with Redis's own expiry as its
    time to live: a read is one ``GET``, a save one ``SET ... EX``, nothing else.

    :param url: a ``redis://`` (or ``rediss://``, ``unix://``) URL, or an existing
        ``redis.Redis`` client (its pool is then shared with your app, and so are
        its timeouts).
    :param prefix: put before every session id, to share a database with other data.
    :param timeout: seconds to wait to connect, and for each reply, before the
        request fails with a :class:`~middleware.session.StoreError` naming the
        store and the timeout. Short by default (0.5): a session read takes well
        under a millisecond, and a frozen Redis must not hold every worker thread
        for redis-py's usual wait. No retry: the next request tries again.
    """

    def __init__(
        self, url: str | redis.Redis, *, prefix: str = "session:", timeout: float = 0.5
    ) -> None:
        try:
            import redis
        except ImportError as exc:
            raise ImportError(
                "RedisStore needs redis-py: "
                "pip install 'wsgi-middleware-toolkit[redis]'"
            ) from exc
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not (timeout > 0)
        ):
            raise ValueError(f"timeout: expected seconds > 0, got {timeout!r}")
        self.timeout = timeout
        if isinstance(url, str):
            try:
                self.client = redis.Redis.from_url(
                    url, socket_timeout=timeout, socket_connect_timeout=timeout
                )
            except ValueError as exc:
                raise ValueError(f"url: {exc} (got {safe_url(url)!r})") from exc
            self._name = safe_url(url)
            self._own_timeout: float | None = timeout
        elif isinstance(url, redis.Redis):
            self.client = url
            self._name = "<client>"
            self._own_timeout = None
        else:
            raise ValueError(f"url: expected a redis URL or client, got {url!r}")
        if not isinstance(prefix, str):
            raise ValueError(f"prefix: expected a string, got {prefix!r}")
        self.prefix = prefix
        self._errors = redis.RedisError

    def _failures(self, action: str) -> _Reraise:
        # A client given to us keeps its own timeouts (and retries): not ours to name.
        return _Reraise(self, action, self._errors, self._own_timeout)

    def load(self, key: str) -> str | None:
        with self._failures("load a session"):
            value = self.client.get(self.prefix + key)
        if value is None:
            return None
        return value.decode("ascii") if isinstance(value, bytes) else str(value)

    def save(self, key: str, value: str, ttl: int) -> None:
        with self._failures("save a session"):
            self.client.set(self.prefix + key, value, ex=max(int(ttl), 1))

    def delete(self, key: str) -> None:
        with self._failures("delete a session"):
            self.client.delete(self.prefix + key)

    def __repr__(self) -> str:
        return f"RedisStore({self._name!r})"


def _identity(path: Path) -> tuple[int, int] | None:
    """The file at *path* (device, inode), or None when there is none."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


class _Reraise:
    """A context manager turning a store library's errors into StoreError."""

    __slots__ = ("store", "action", "errors", "timeout")

    def __init__(
        self, store: object, action: str, errors: Any, timeout: float | None = None
    ) -> None:
        self.store = store
        self.action = action
        self.errors = errors
        self.timeout = timeout

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None and isinstance(exc, self.errors):
            waited = ""
            if self.timeout is not None and "Timeout" in type(exc).__name__:
                waited = f" (no answer within its timeout of {self.timeout} s)"
            raise StoreError(
                f"{self.store!r} failed to {self.action}{waited}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
