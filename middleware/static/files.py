"""Serving a file of the table: GET and HEAD only, the variant the client accepts,
conditional requests (``If-None-Match``, ``If-Modified-Since``), a file changed or
gone since the scan, byte ranges, and the body through ``wsgi.file_wrapper``."""

from __future__ import annotations

import email.utils
import logging
import os
import stat
import time
from collections.abc import Callable
from typing import BinaryIO

from ..wsgi import Answer, WSGIEnvironment, status_page
from .ranges import BLOCK_SIZE, Body, range_answer
from .variants import File, Variant

__all__ = ["NOT_ALLOWED", "FileServer"]

log = logging.getLogger("middleware.static")

#: The answer to a method other than GET and HEAD.
NOT_ALLOWED = status_page("405 Method Not Allowed", ("Allow", "GET, HEAD"))


class FileServer:
    """Answers the requests for the files of a table. *reload* looks a file up on
    disk again and updates the table (see :meth:`serve`); *inside* tells whether
    an opened file may be served
    (:meth:`~middleware.static.table.Table.inside`); *autorefresh* is the option of
    the same name; *no_file* is what a request for no file gets (None: passed on
    to the app)."""

    __slots__ = ("reload", "inside", "autorefresh", "no_file")

    def __init__(
        self,
        reload: Callable[[str, File], File | None],
        inside: Callable[[int, str, os.stat_result], bool],
        autorefresh: bool,
        no_file: Answer | None,
    ) -> None:
        self.reload = reload
        self.inside = inside
        self.autorefresh = autorefresh
        self.no_file = no_file

    def serve(
        self, environ: WSGIEnvironment, file: File, key: str, retry: bool
    ) -> Answer | None:
        """The response for *file*, found in the table at *key*. With *retry* (a
        file of the table, checked at the scan) a conditional request or a HEAD is
        judged against the file as it is now, and a file that changed or cannot be
        opened is looked up again and served once more."""
        method = environ.get("REQUEST_METHOD")
        if method != "GET" and method != "HEAD":
            return NOT_ALLOWED
        ranged = method == "GET" and "HTTP_RANGE" in environ and file.identity.size > 0
        if ranged or not file.vary:
            variant = file.identity
        else:
            variant = file.choose(environ.get("HTTP_ACCEPT_ENCODING"))
        none_match = environ.get("HTTP_IF_NONE_MATCH")
        since = environ.get("HTTP_IF_MODIFIED_SINCE") if none_match is None else None
        if since is not None or none_match is not None or method == "HEAD":
            # Answered from the table's headers without opening the file: first
            # make sure they are the file's as it is now (RFC 9110, section 13.1).
            if retry:  # (inlined: one frame less on every 304, bench_static)
                try:
                    st = os.stat(variant.path)
                except OSError:  # gone or unreadable now: looked up again
                    return self._again(environ, file, key)
                # The change time moves with every write, utime and rename.
                if st.st_ctime_ns != variant.ctime_ns or st.st_ino != variant.inode:
                    return self._again(environ, file, key)
            if not variant.verified:
                # Headers only from a file that was opened and checked: once per
                # variant (a table's), or per request (autorefresh's).
                opened = self._open(variant)
                if opened is None:
                    return self._again(environ, file, key) if retry else self.no_file
                handle, st = opened
                handle.close()
                if st.st_ctime_ns != variant.ctime_ns or st.st_ino != variant.inode:
                    variant = file.reopened(variant, st)  # changed since its stat
                    variant.verified = True
            if none_match is not None:
                if _matches(none_match, variant.etag):
                    return "304 Not Modified", variant.not_modified, []
            elif since is not None and _unmodified(since, variant):
                return "304 Not Modified", variant.not_modified, []
            if method == "HEAD":
                return "200 OK", variant.headers, []
        opened = self._open(variant)
        if opened is None:
            # Gone, unreadable, or not what was checked since: look again, once.
            return self._again(environ, file, key) if retry else self.no_file
        handle, st = opened
        try:
            if st.st_ctime_ns != variant.ctime_ns or st.st_ino != variant.inode:
                # Changed since the scan (and checked again): send what is open,
                # with its own headers.
                variant = file.reopened(variant, st)
                variant.verified = True
                if not self.autorefresh:
                    self.reload(key, file)
            if ranged:
                answer = range_answer(environ, variant, handle, file.base)
                if answer is not None:
                    return answer
            wrapper = environ.get("wsgi.file_wrapper")
            body = (
                wrapper(handle, BLOCK_SIZE)
                if wrapper is not None
                else Body(handle, ((0, variant.size),))
            )
        except BaseException:
            handle.close()
            raise
        return "200 OK", variant.headers, body

    def _again(self, environ: WSGIEnvironment, file: File, key: str) -> Answer | None:
        """*file* looked up on disk again (the table updated) and served once more."""
        fresh = self.reload(key, file)
        if fresh is None:
            return self.no_file
        return self.serve(environ, fresh, key, False)

    def _open(self, variant: Variant) -> tuple[BinaryIO, os.stat_result] | None:
        """The variant's file, opened first and checked after: a regular file, and
        inside the directory by what the descriptor names (see
        :meth:`~middleware.static.table.Table.inside`), unless it is the very file
        that passed that check before (same device, inode and change time: the
        kernel moves the change time at every write, rename and creation, so
        nothing else has them). Never blocks: a FIFO or a device put in its place
        is refused, not read. The file and its ``fstat()``; None, and a debug
        line, when it cannot be served."""
        path = variant.path
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            log.debug("cannot open %r: %s", path, exc.strerror)
            return None
        try:
            st = os.fstat(fd)
            same = (st.st_ino, st.st_dev, st.st_ctime_ns) == (
                variant.inode,
                variant.device,
                variant.ctime_ns,
            )
            if not stat.S_ISREG(st.st_mode) or not (
                (same and variant.verified) or self.inside(fd, path, st)
            ):
                log.debug("not served: %r is not a file inside the directory", path)
                os.close(fd)
                return None
            if same:
                variant.verified = True
            return open(fd, "rb"), st  # noqa: SIM115 (closed by the server)
        except BaseException:
            os.close(fd)
            raise


# Opening a FIFO without O_NONBLOCK waits for a writer, forever; on a regular file
# the flag changes nothing.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def _matches(header: str, etag: str) -> bool:
    """If-None-Match: whether any listed tag (or ``*``) matches *etag*, weakly."""
    if header == etag:
        return True
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" or tag == etag or (tag.startswith("W/") and tag[2:] == etag):
            return True
    return False


def _timestamp(header: str) -> float | None:
    """An HTTP date as a POSIX timestamp; None when malformed."""
    try:
        parsed = email.utils.parsedate_tz(header)
        return None if parsed is None else email.utils.mktime_tz(parsed)
    except (IndexError, OverflowError, TypeError, ValueError):  # malformed
        return None


def _unmodified(header: str, variant: Variant) -> bool:
    """If-Modified-Since: whether the file is no newer than the date. A malformed
    date, or one in the future, is ignored (RFC 9110, section 13.1.3)."""
    if header == variant.last_modified:
        return True
    since = _timestamp(header)
    return since is not None and variant.modified <= since <= time.time()
