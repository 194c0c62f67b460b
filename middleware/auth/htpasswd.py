"""htpasswd files: :func:`read_htpasswd` parses one, :class:`Htpasswd` keeps its
users current, re-reading the file when it changes."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from .passwords import UnsupportedHash, hash_kind

__all__ = ["Htpasswd", "read_htpasswd"]

log = logging.getLogger("middleware.auth")


def read_htpasswd(
    path: str | os.PathLike[str], allow_plaintext: bool = False
) -> dict[str, str]:
    """The users of an htpasswd file, ``{user: hash}``.

    Blank lines and ``#`` comments are skipped; the first entry of a user wins (as
    in Apache). Every hash must be in a supported format.

    :raises ValueError: a malformed line, naming the file and the line number.
    :raises OSError: the file cannot be read.
    """
    users: dict[str, str] = {}
    text = Path(path).read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, stored = line.partition(":")
        if not sep or not user or not stored:
            raise ValueError(f"{path}, line {number}: expected 'user:hash'")
        try:
            hash_kind(stored, allow_plaintext)
        except UnsupportedHash as exc:
            raise ValueError(f"{path}, line {number} (user {user!r}): {exc}") from None
        users.setdefault(user, stored)
    return users


class Htpasswd:
    """An htpasswd file's users, re-read when its modification time changes
    (looked at no more than once a second). A reload that fails keeps the last
    good users and logs the error.

    The caller's clock gives *now*, at creation and to :meth:`current`, in seconds.
    """

    def __init__(self, path: Path, allow_plaintext: bool, now: float) -> None:
        self.path = path
        self.allow_plaintext = allow_plaintext
        self.mtime = path.stat().st_mtime_ns
        self.users = read_htpasswd(path, allow_plaintext)
        self._next_check = now + 1.0
        self._lock = threading.Lock()

    def current(self, now: float) -> dict[str, str]:
        if now < self._next_check:
            return self.users
        with self._lock:
            if now < self._next_check:
                return self.users
            self._next_check = now + 1.0
            try:
                mtime = self.path.stat().st_mtime_ns
                if mtime != self.mtime:
                    self.users = read_htpasswd(self.path, self.allow_plaintext)
                    self.mtime = mtime
                    log.info("reloaded %s: %d users", self.path, len(self.users))
            except (OSError, ValueError, UnicodeDecodeError) as exc:  # keep serving
                log.error(
                    "could not reload %s, keeping the last users: %s", self.path, exc
                )
        return self.users
