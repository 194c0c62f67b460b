"""Serving a file of the table: GET and HEAD only, the variant the client accepts,
conditional requests (``If-None-Match``, ``If-Modified-Since``), a file changed or
gone since the scan, byte ranges, and the body through ``wsgi.file_wrapper``."""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import Callable

from ..wsgi import Answer, WSGIEnvironment, status_page
from .ranges import BLOCK_SIZE, Body, range_answer
from .variants import File, Variant

__all__ = ["NOT_ALLOWED", "FileServer"]

#: The answer to a method other than GET and HEAD.
NOT_ALLOWED = status_page("405 Method Not Allowed", ("Allow", "GET, HEAD"))


class FileServer:
    """Answers the requests for the files of a table. *reload* looks a file up on
    disk again and updates the table (see :meth:`serve`); *autorefresh* is the
    option of the same name; *no_file* is what a request for no file gets (None:
    passed on to the app)."""

    __slots__ = ("reload", "autorefresh", "no_file")

    def __init__(
        self,
        reload: Callable[[str, File], File | None],
        autorefresh: bool,
        no_file: Answer | None,
    ) -> None:
        self.reload = reload
        self.autorefresh = autorefresh
        self.no_file = no_file

    def serve(
        self, environ: WSGIEnvironment, file: File, key: str, retry: bool
    ) -> Answer | None:
        """The response for *file*, found in the table at *key*; when it cannot be
        opened, it is looked up again and, with *retry*, served once more."""
        method = environ.get("REQUEST_METHOD")
        if method != "GET" and method != "HEAD":
            return NOT_ALLOWED
        ranged = method == "GET" and "HTTP_RANGE" in environ and file.identity.size > 0
        if ranged or not file.vary:
            variant = file.identity
        else:
            variant = file.choose(environ.get("HTTP_ACCEPT_ENCODING"))
        none_match = environ.get("HTTP_IF_NONE_MATCH")
        if none_match is not None:
            if _matches(none_match, variant.etag):
                return "304 Not Modified", variant.not_modified, []
        else:
            since = environ.get("HTTP_IF_MODIFIED_SINCE")
            if since is not None and _unmodified(since, variant):
                return "304 Not Modified", variant.not_modified, []
        if method == "HEAD":
            return "200 OK", variant.headers, []
        try:
            handle = open(variant.path, "rb")  # noqa: SIM115 (closed by the server)
        except OSError:
            # Gone or unreadable since the scan: look again, once.
            fresh = self.reload(key, file) if retry else None
            if fresh is None:
                return self.no_file
            return self.serve(environ, fresh, key, False)
        try:
            st = os.fstat(handle.fileno())
            if st.st_size != variant.size or st.st_mtime_ns != variant.mtime_ns:
                # Changed since the scan: send what is open, with its own headers.
                variant = file.reopened(variant, st)
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
