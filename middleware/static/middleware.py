"""The middleware: :class:`StaticFiles` checks its options, scans the directory into
its table, and routes each request under its prefix to a file, a redirect, a refusal
or the app."""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from ..options import Choice, Flag, Option, Seconds
from ..proxy import Middleware
from ..wsgi import Answer, WSGIEnvironment, status_page
from .files import NOT_ALLOWED, FileServer
from .mimetypes import merged_types
from .table import Table, decode, unsafe
from .variants import HASHED_NAME, Builder

__all__ = ["StaticFiles"]

log = logging.getLogger("middleware.static")

_NOT_FOUND = status_page("404 Not Found")
_FORBIDDEN = status_page("403 Forbidden")


class StaticFiles(Middleware):
    """Serve the files of *directory* under the URL *prefix*; pass everything else
    on to the app.

    :param directory: the directory served; it must exist (checked at construction).
    :param prefix: the URL path the files are under (``"/static"``), matched against
        ``PATH_INFO``; ``""`` or ``"/"`` serves them at the root.
    :param max_age: seconds for ``Cache-Control: max-age``; None sends no
        Cache-Control. No ``public``: behind authentication a shared cache must not
        keep the files.
    :param immutable: which files get ``max-age`` one year and ``immutable``: a regex
        (searched in the path relative to *directory*, ``/``-separated), a callable
        taking that path, or None. The default, :data:`HASHED_NAME`, matches names
        with a content hash such as ``app.3f9a1c2b.js``.
    :param index: the file served for a directory's URL (ending in ``/``); None
        serves none. A directory URL without the slash is redirected (301) when the
        index exists.
    :param precompressed: serve ``.br``, ``.zst`` and ``.gz`` siblings to clients
        that accept them.
    :param dotfiles: ``"deny"`` answers 403 to any path with a segment starting with
        a dot (except a first segment ``.well-known``), without looking at the disk;
        ``"ignore"`` treats such paths as missing; ``"allow"`` serves them.
    :param follow_symlinks: serve symlinks whose target is outside *directory*.
        Symlinks inside it are always served.
    :param autorefresh: look files up on disk per request (for development): files
        added later are served, at the cost of a few ``stat()`` calls per request.
    :param fallthrough: pass a request under *prefix* that matches no file on to the
        app; False answers 404 instead.
    :param content_types: extra extension-to-Content-Type entries
        (``{".gltf": "model/gltf+json"}``), over :data:`MIME_TYPES`.

    A path under *prefix* that is unsafe (see the module docs) is answered 404,
    never passed to the app.
    """

    #: The declarations the plain options are checked (and read from ini files) by;
    #: ``directory``, ``prefix``, ``immutable``, ``index`` and ``content_types`` have
    #: rules of their own.
    options: ClassVar[dict[str, Option[Any]]] = {
        "max_age": Seconds(positive=False, none=True),
        "dotfiles": Choice("deny", "ignore", "allow"),
        "precompressed": Flag(),
        "follow_symlinks": Flag(),
        "autorefresh": Flag(),
        "fallthrough": Flag(),
    }

    def __init__(
        self,
        directory: str | os.PathLike[str],
        prefix: str = "/static",
        max_age: int | None = 3600,
        immutable: re.Pattern[str] | str | Callable[[str], bool] | None = HASHED_NAME,
        index: str | None = "index.html",
        precompressed: bool = True,
        dotfiles: Literal["deny", "ignore", "allow"] = "deny",
        follow_symlinks: bool = False,
        autorefresh: bool = False,
        fallthrough: bool = True,
        content_types: Mapping[str, str] | None = None,
    ) -> None:
        try:
            root = os.fsdecode(directory)
        except TypeError:
            raise TypeError(f"directory: expected a path, got {directory!r}") from None
        if not os.path.isdir(root):
            raise ValueError(f"directory: {root!r} is not an existing directory")
        if not isinstance(prefix, str) or (prefix and not prefix.startswith("/")):
            raise ValueError(
                f"prefix: expected a path starting with '/', got {prefix!r}"
            )
        prefix = prefix.rstrip("/")
        if any(unsafe(segment) for segment in prefix.split("/")[1:]):
            raise ValueError(f"prefix: expected a plain URL path, got {prefix!r}")
        options = self.options
        max_age = options["max_age"].check("max_age", max_age)
        if isinstance(immutable, str):
            try:
                immutable = re.compile(immutable)
            except re.error as exc:
                raise ValueError(
                    f"immutable: not a valid regex {immutable!r}: {exc}"
                ) from None
        if immutable is not None and not (
            isinstance(immutable, re.Pattern) or callable(immutable)
        ):
            raise ValueError(
                f"immutable: expected a regex, a callable or None, got {immutable!r}"
            )
        if index is not None and (
            not isinstance(index, str) or "/" in index or unsafe(index)
        ):
            raise ValueError(
                f"index: expected a plain file name or None, got {index!r}"
            )
        dotfiles = options["dotfiles"].check("dotfiles", dotfiles)
        for name, flag in (
            ("precompressed", precompressed),
            ("follow_symlinks", follow_symlinks),
            ("autorefresh", autorefresh),
            ("fallthrough", fallthrough),
        ):
            options[name].check(name, flag)
        types = merged_types(content_types)
        self.directory = root
        self.prefix = prefix
        self.max_age = max_age
        self.immutable = immutable
        self.index = index
        self.precompressed = precompressed
        self.dotfiles = dotfiles
        self.follow_symlinks = follow_symlinks
        self.autorefresh = autorefresh
        self.fallthrough = fallthrough
        self._types = types
        self._under = prefix + "/"
        table = Table(
            self,
            os.path.realpath(root),
            prefix,
            index,
            dotfiles,
            follow_symlinks,
            precompressed,
            Builder(types, immutable, max_age),
        )
        self._table = table
        # The table's own dict and sets, which answer() reads.
        self._files = table.files
        self._directories = table.directories
        self._misses = table.misses
        # What a request for no file gets: passed on to the app, or 404.
        self._no_file = None if fallthrough else _NOT_FOUND
        self._server = FileServer(
            table.reload, table.inside, autorefresh, self._no_file
        )
        if not autorefresh:
            table.scan()
            log.debug("%r: %d URLs", self, len(self._files))

    @property
    def answers_under(self) -> str | None:
        """The prefix: the core passes requests outside it on without answer()."""
        return self.prefix or None

    # -- per request ---------------------------------------------------------------

    def answer(self, environ: WSGIEnvironment) -> Answer | None:
        """The response for a request for a file; None to pass it on to the app."""
        path: str = environ.get("PATH_INFO", "")
        file = self._files.get(path)
        if file is not None:
            return self._server.serve(environ, file, path, True)
        if path in self._misses:
            return self._no_file
        if not path.startswith(self._under) and path != self.prefix:
            return None
        return self._miss(environ, path)

    def _miss(self, environ: WSGIEnvironment, path: str) -> Answer | None:
        """A path under the prefix that the table does not hold."""
        gone = self._table.vanished.get(path)
        if gone is not None:  # a file of the scan, deleted since: back yet?
            fresh = self._table.reload(path, gone)
            if fresh is None:
                return self._no_file
            return self._server.serve(environ, fresh, path, False)
        if self.autorefresh or path == self.prefix or self._table.suspect(path):
            return self._inspect(environ, path)
        if path in self._directories:
            return self._redirect(environ)
        # The table only loses entries after the scan, so this path stays a miss.
        self._table.remember(path)
        return self._no_file

    def _inspect(self, environ: WSGIEnvironment, path: str) -> Answer | None:
        """A path to look at closely: refused, redirected, or looked up on disk."""
        if path == self.prefix:
            segments = [] if self.prefix else [""]
        else:
            try:
                segments = decode(path[len(self._under) :].split("/"))
            except UnicodeDecodeError:  # not UTF-8: names no file
                return self._missing(environ)
        if segments and any(unsafe(s) for s in segments[:-1] + [segments[-1] or "x"]):
            return _NOT_FOUND
        if self._table.hidden(segments):
            if self.dotfiles == "deny":
                return _FORBIDDEN
            return self._missing(environ)
        if path in self._directories:
            return self._redirect(environ)
        if self.autorefresh:
            return self._from_disk(environ, path, segments)
        return self._missing(environ)

    def _from_disk(
        self, environ: WSGIEnvironment, path: str, segments: list[str]
    ) -> Answer | None:
        """autorefresh: the file (or the directory's index) as it is on disk now."""
        target = os.path.join(self._table.root, *segments)
        try:
            st = os.stat(target)
        except OSError:
            return self._missing(environ)
        if stat.S_ISDIR(st.st_mode) and self.index is not None:
            index = os.path.join(target, self.index)
            if not os.path.isfile(index) or not self._table.contained(index):
                return self._missing(environ)
            if not segments or segments[-1] != "":
                return self._redirect(environ)
            segments = segments[:-1] + [self.index]
            try:
                target, st = index, os.stat(index)
            except OSError:  # gone since
                return self._missing(environ)
        elif not segments or segments[-1] == "":
            return self._missing(environ)
        if not stat.S_ISREG(st.st_mode) or not self._table.contained(target):
            return self._missing(environ)
        file = self._table.build(target, segments, st, None)
        if file is None:
            return self._missing(environ)
        return self._server.serve(environ, file, path, False)

    def _missing(self, environ: WSGIEnvironment) -> Answer | None:
        """No such file: on to the app, or 404."""
        return self._no_file

    def _redirect(self, environ: WSGIEnvironment) -> Answer:
        """301 to the directory's URL with a slash (method other than GET/HEAD: 405)."""
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return NOT_ALLOWED
        url = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "") + "/"
        location = quote(url.encode("latin-1"), safe="/!$&'()*+,;=:@-._~")
        if environ.get("QUERY_STRING"):
            location += "?" + quote(
                environ["QUERY_STRING"].encode("latin-1"), safe="/?=&;%+:@!$'()*,~"
            )
        return status_page("301 Moved Permanently", ("Location", location))
