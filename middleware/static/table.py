"""The path table: the directory scanned once into a table from ``PATH_INFO`` to
file, the rules that decide which paths are safe to serve (dotfiles, Windows device
names, bad characters, symlinks out of the directory), and the memo of the paths
that name no file."""

from __future__ import annotations

import logging
import os
import re
import stat
import sys
import weakref
from typing import Literal

from ..http import MEMO_KEY_LIMIT
from .variants import VARIANTS, Builder, File

__all__ = ["MISS_MEMO_SIZE", "MISS_PATH_LIMIT", "Table", "decode", "unsafe"]

log = logging.getLogger("middleware.static")

#: How many request paths under the prefix that name no file, checked safe, are
#: remembered so the next request for one skips the check (scan mode only; the
#: memo is emptied when full, so hostile paths cost the check and nothing more).
MISS_MEMO_SIZE = 4096
#: Paths longer than this are never remembered (a server may accept request lines
#: of 256 KB): the memo holds at most MISS_MEMO_SIZE x MISS_PATH_LIMIT characters.
MISS_PATH_LIMIT = MEMO_KEY_LIMIT

# Names Windows opens as devices, whatever the extension or trailing spaces.
_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"]
    + [f"{name}{n}" for name in ("COM", "LPT") for n in "123456789¹²³"]
)
# Characters never in a served name: controls, backslash, colon (drive letters,
# NTFS streams).
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\:]")

# A quick test of a path (PATH_INFO: UTF-8 bytes as latin-1) that missed the table:
# when it finds nothing, the path is safe and holds no dotfile, so it simply names no
# file. When it finds something, the path is decoded and looked at segment by segment
# (unsafe, Table.hidden), which decides.
_SUSPECT = re.compile(
    r"//|/\.|[. ](?:/|$)|[\x00-\x1f\x7f\\:]"
    r"|/(?:con|prn|aux|nul|conin\$|conout\$|clock\$"
    r"|(?:com|lpt)(?:[1-9]|\xc2[\xb2\xb3\xb9])) *(?:[./]|$)",
    re.IGNORECASE,
)


if sys.platform == "darwin":
    import fcntl

    def _descriptor_path(fd: int) -> str | None:
        """The path the kernel holds for an open descriptor (macOS: F_GETPATH)."""
        try:
            raw = fcntl.fcntl(fd, fcntl.F_GETPATH, bytes(1024))
        except OSError:  # not told: the caller resolves the path instead
            return None
        return os.fsdecode(raw.rstrip(b"\0"))

elif os.path.isdir("/proc/self/fd"):

    def _descriptor_path(fd: int) -> str | None:
        """The path the kernel holds for an open descriptor (Linux: /proc)."""
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # /proc not readable here: the caller resolves the path
            return None

else:

    def _descriptor_path(fd: int) -> str | None:
        """Not known on this platform."""
        return None


def unsafe(segment: str) -> bool:
    """Whether a path segment (a URL's or a file's name) must never be served."""
    if segment in ("", ".", ".."):
        return True
    if _BAD_CHARS.search(segment) or segment[-1] in ". ":
        return True  # Windows drops trailing dots and spaces: a.txt. is a.txt
    return segment.split(".", 1)[0].rstrip(" ").upper() in _DEVICES


def decode(segments: list[str]) -> list[str]:
    """PATH_INFO segments (latin-1 text of URL bytes) as the UTF-8 they are.

    :raises UnicodeDecodeError: not UTF-8.
    """
    return [s.encode("latin-1").decode("utf-8") for s in segments]


class Table:
    """The files of *root* (a real path) by the ``PATH_INFO`` they are served at,
    under *prefix*; *index*, *dotfiles*, *follow_symlinks* and *precompressed* are
    the options of *owner*, the :class:`~middleware.static.StaticFiles` its log
    messages name. *builder* builds each file's responses."""

    def __init__(
        self,
        owner: object,
        root: str,
        prefix: str,
        index: str | None,
        dotfiles: Literal["deny", "ignore", "allow"],
        follow_symlinks: bool,
        precompressed: bool,
        builder: Builder,
    ) -> None:
        # Held weakly, so that the owner and its table make no reference cycle.
        self._owner = weakref.ref(owner)
        self.root = root
        self.root_prefix = os.path.join(root, "")  # with its separator
        self.prefix = prefix
        self.under = prefix + "/"
        self.index = index
        self.dotfiles = dotfiles
        self.follow_symlinks = follow_symlinks
        self.precompressed = precompressed
        self.builder = builder
        # PATH_INFO (as the server gives it: latin-1 text of the URL's bytes) to file.
        self.files: dict[str, File] = {}
        # Directory URLs without their slash, which redirect to it.
        self.directories: set[str] = set()
        # Safe paths under the prefix known to name no file (see MISS_MEMO_SIZE).
        self.misses: set[str] = set()
        # Files of the scan found gone since, by URL: looked for again on request,
        # never remembered as misses. At most as many as the scan found.
        self.vanished: dict[str, File] = {}

    # -- path safety ---------------------------------------------------------------

    def contained(self, path: str) -> bool:
        """Whether *path*, symlinks resolved, is inside the directory (always, with
        ``follow_symlinks``)."""
        if self.follow_symlinks:
            return True
        try:
            real = os.path.realpath(path)
            return os.path.commonpath([self.root, real]) == self.root
        except (OSError, ValueError) as exc:  # a loop, a bad name: not served
            log.debug("%r: cannot resolve %r: %s", self._owner(), path, exc)
            return False

    def inside(self, fd: int, path: str, st: os.stat_result) -> bool:
        """Whether the file open at *fd* (opened at *path*; *st*, its fstat) is
        inside the directory (always, with ``follow_symlinks``). Read from what the
        kernel says the descriptor names (Linux's ``/proc/self/fd``, macOS's
        ``F_GETPATH``), so no swap of the path after the open can fool it. Where
        neither exists, the path is resolved again and must still name the opened
        file: a swap back and forth between those two looks can get through."""
        if self.follow_symlinks:
            return True
        real = _descriptor_path(fd)
        if real is not None:
            return real.startswith(self.root_prefix) or real == self.root
        if not self.contained(path):
            return False
        try:
            now = os.stat(path)
        except OSError:  # gone since the open: not the file it names
            return False
        return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)

    def hidden(self, segments: list[str]) -> bool:
        """Whether the dotfile policy keeps these path segments from being served."""
        if self.dotfiles == "allow":
            return False
        return any(
            s.startswith(".") and not (i == 0 and s == ".well-known")
            for i, s in enumerate(segments)
        )

    def suspect(self, path: str) -> bool:
        """Whether a path under the prefix that missed the table is to be looked at
        segment by segment (it may be unsafe or hold a dotfile)."""
        return _SUSPECT.search(path, len(self.prefix)) is not None

    # -- building ------------------------------------------------------------------

    def scan(self) -> None:
        """Add every servable file under the directory to the table."""
        self._scan(self.root, [], set())

    def _scan(self, directory: str, segments: list[str], seen: set[str]) -> None:
        """Add every servable file under *directory* to the URL table."""
        seen.add(os.path.realpath(directory))
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            log.warning(
                "%r: cannot list %s: %s", self._owner(), directory, exc.strerror
            )
            return
        names = {entry.name for entry in entries}
        for entry in entries:
            path = segments + [entry.name]
            if unsafe(entry.name) or self.hidden(path):
                log.debug("%r: not served: %s", self._owner(), entry.path)
                continue
            try:
                if entry.is_symlink() and not self.contained(entry.path):
                    log.debug(
                        "%r: symlink out of the directory: %s",
                        self._owner(),
                        entry.path,
                    )
                    continue
                st = entry.stat()  # follows symlinks
            except OSError:
                continue  # a dangling symlink, or gone since the listing
            if stat.S_ISDIR(st.st_mode):
                if os.path.realpath(entry.path) not in seen:  # no symlink loops
                    self._scan(entry.path, path, seen)
            elif stat.S_ISREG(st.st_mode):
                file = self.build(entry.path, path, st, names)
                if file is not None:
                    self.files[self._url(path)] = file
        if self.index is not None and self.index in names:
            index = self.files.get(self._url(segments + [self.index]))
            if index is not None:
                self.files[self._url(segments + [""])] = index
                self.directories.add(self._url(segments))

    def _url(self, segments: list[str]) -> str:
        """The PATH_INFO a server gives for these segments (UTF-8 bytes as latin-1)."""
        path = "/".join(segments).encode("utf-8", "surrogateescape")
        return self.under + path.decode("latin-1") if segments else self.prefix

    def build(
        self,
        path: str,
        segments: list[str],
        st: os.stat_result,
        siblings: set[str] | None,
    ) -> File | None:
        """The responses of one file and its precompressed siblings (looked for
        among *siblings*, the names in its directory, or on disk when None)."""
        relative = "/".join(segments)
        try:
            relative.encode("utf-8")
        except UnicodeEncodeError:
            log.debug("%r: not a UTF-8 name: %r", self._owner(), path)
            return None
        base = self.builder.base(relative, segments[-1])
        found = [("identity", path, st)]
        if self.precompressed:
            for coding, suffix in VARIANTS:
                if siblings is not None and segments[-1] + suffix not in siblings:
                    continue
                sibling = path + suffix
                try:
                    sibling_stat = os.stat(sibling)
                except OSError:
                    continue
                if stat.S_ISREG(sibling_stat.st_mode) and self.contained(sibling):
                    found.append((coding, sibling, sibling_stat))
        return self.builder.build(base, found)

    # -- after the scan ------------------------------------------------------------

    def reload(self, key: str, file: File) -> File | None:
        """*file* looked up on disk again, and the URL table updated (scan mode).
        The file is opened and checked as a request's would be (:meth:`inside`).
        One that is gone is kept aside (:attr:`vanished`), so a file deleted and
        made again, as a deploy may do, is found again by the next request."""
        path = file.identity.path
        checked = self._checked_stat(path)
        fresh = None
        if checked is not None:
            segments = key[len(self.under) :].split("/")
            if segments[-1] == "" and self.index is not None:
                segments[-1] = self.index
            fresh = self.build(path, decode(segments), checked, None)
        if fresh is None:
            if self.files.pop(key, None) is not None:
                self.vanished[key] = file
        else:
            fresh.identity.verified = True  # built from the checked descriptor
            self.files[key] = fresh
            self.vanished.pop(key, None)
        return fresh

    def _checked_stat(self, path: str) -> os.stat_result | None:
        """The fstat of the regular file at *path*, opened without blocking and
        found inside the directory; None when there is none."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError:  # gone or unreadable: no file
            return None
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and self.inside(fd, path, st):
                return st
            return None
        finally:
            os.close(fd)

    def remember(self, path: str) -> None:
        """Remember a safe path under the prefix that names no file (see
        :data:`MISS_MEMO_SIZE`)."""
        if len(path) > MISS_PATH_LIMIT or path in self.vanished:
            return
        misses = self.misses
        if len(misses) >= MISS_MEMO_SIZE:
            misses.clear()
        misses.add(path)
