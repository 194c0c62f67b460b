"""htpasswd files: :func:`read_htpasswd` parses one, :class:`Htpasswd` keeps its
users current, re-reading the file when it changes."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from .passwords import UnsupportedHash, hash_kind

__all__ = ["SETTLE", "Htpasswd", "read_htpasswd"]

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


#: A changed version of the file is read once it has stayed the same for this many
#: seconds, by the caller's clock (two looks apart): Apache's ``htpasswd`` rewrites
#: the file in place, so a version younger than that may be half-written. Judged
#: by looks, not by the file's modification time, which may be in the future (NFS
#: clocks, ``touch -d``, ``rsync -t`` from a host ahead).
SETTLE = 0.5


class Htpasswd:
    """An htpasswd file's users, re-read when it changes (looked at no more than
    once a second).

    A new version is taken only when it is whole: unchanged between two looks at
    least :data:`SETTLE` seconds apart, unchanged while it was read, parsed without
    error, and not empty where the last one had users. Otherwise the last good
    users stay, with a warning, and the file is read again at its next change (or,
    when it was still changing, at the next look). A change is seen within about
    two seconds.

    The caller's clock gives *now*, at creation and to :meth:`current`, in seconds.
    """

    def __init__(self, path: Path, allow_plaintext: bool, now: float) -> None:
        self.path = path
        self.allow_plaintext = allow_plaintext
        st = path.stat()
        self.users = read_htpasswd(path, allow_plaintext)
        self._seen = _version(st)  # the version read last, taken or refused
        self._candidate: tuple[tuple[int, int, int, int], float] | None = None
        self._next_check = now + 1.0
        self._lock = threading.Lock()

    @property
    def mtime(self) -> int:
        """The modification time (ns) of the version read last."""
        return self._seen[0]

    def current(self, now: float) -> dict[str, str]:
        if now < self._next_check:
            return self.users
        with self._lock:
            if now < self._next_check:
                return self.users
            self._next_check = now + 1.0
            try:
                self._reload(now)
            except OSError as exc:  # gone, unreadable: keep serving
                log.warning(
                    "could not reload %s, keeping the last users: %s", self.path, exc
                )
        return self.users

    def _reload(self, now: float) -> None:
        version = _version(self.path.stat())
        if version == self._seen:
            self._candidate = None
            return
        candidate = self._candidate
        if candidate is None or candidate[0] != version:
            self._candidate = (version, now)  # new: look again before reading it
            return
        if now - candidate[1] < SETTLE:
            return
        self._candidate = None
        try:
            users = read_htpasswd(self.path, self.allow_plaintext)
        except (ValueError, UnicodeDecodeError) as exc:
            problem = str(exc)
        else:
            if _version(self.path.stat()) != version:
                return  # changed while it was read: look again next time
            if users or not self.users:
                self.users = users
                self._seen = version
                log.info("reloaded %s: %d users", self.path, len(users))
                return
            problem = f"no users, where the last version had {len(self.users)}"
        self._seen = version  # refused: read again when it changes
        log.warning(
            "could not reload %s, keeping the last users: %s", self.path, problem
        )


def _version(st: os.stat_result) -> tuple[int, int, int, int]:
    """What tells one version of a file from another (the change time too: a
    rewrite that keeps the size and the modification time still moves it)."""
    return st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns
