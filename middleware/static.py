"""Static files: :class:`StaticFiles` serves a directory under a URL prefix, fast and
strictly.

By default the directory is scanned once, at construction: for every file the
responses of each encoding variant (the identity file and its ``.br``, ``.zst`` and
``.gz`` siblings) and their 304s are built then, so a request is a dict lookup, an
``open()`` and an ``fstat()``; the body goes out through ``wsgi.file_wrapper``, which
servers such as gunicorn turn into ``sendfile()``. ``autorefresh=True`` looks each
request up on disk instead, for development.

HTTP, per RFC 9110:

- GET and HEAD (no file is opened for HEAD); any other method on a file is 405 with
  ``Allow: GET, HEAD``;
- every variant has its own strong ETag and its own Last-Modified;
  ``If-None-Match`` is a list compared weakly (``*`` included) and, when present,
  ``If-Modified-Since`` is ignored; a 304 keeps ETag, Cache-Control and Vary;
- one byte range (``bytes=0-0``, open ``500-`` and suffix ``-500`` ranges included)
  is a 206 with ``If-Range`` honoured; several are a ``multipart/byteranges`` 206
  (overlapping ones merged; more than :data:`MAX_RANGES` get the whole file); none
  satisfiable is 416 with ``Content-Range: bytes */size``; a malformed ``Range`` is
  ignored. Ranges are always cut from the identity file;
- the variant is chosen by the core's ``Accept-Encoding`` parser: the smallest file
  among the acceptable ones. ``Vary: Accept-Encoding`` goes on every response of a
  file that has variants.

Headers come from our own MIME table (never the platform's, which on Windows reads
the registry), with ``charset=utf-8`` on text, never a ``Content-Encoding`` guessed
from an extension (``.tar.gz`` stays a gzip download), ``X-Content-Type-Options:
nosniff``, and ``Cache-Control: max-age=N``, or one year and ``immutable`` for names
that carry a content hash.

Paths: ``PATH_INFO`` is decoded once (the server percent-decoded it; UTF-8 here) and
never again. A request path with NUL or control characters, a backslash, a colon,
an empty, ``.`` or ``..`` segment, a segment ending in a dot or a space, or a Windows
device name (``CON``, ``dir/NUL.txt``) is refused with 404 and never reaches the
disk or the app. The same rules decide which names a scan serves. A symlink is
served only when its target is inside the directory, unless ``follow_symlinks``;
devices, FIFOs and sockets never. Dotfiles are refused (403) except under
``/.well-known/``. Directories are never listed; a directory with an index file is
served at its URL with a slash, and redirected to it without one.
"""

from __future__ import annotations

import email.utils
import logging
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Literal
from urllib.parse import quote

from .http import TOKEN, accepted_encodings
from .proxy import Middleware
from .wsgi import Answer, Headers, WSGIEnvironment, status_page

__all__ = [
    "HASHED_NAME",
    "MAX_RANGES",
    "MIME_TYPES",
    "StaticFiles",
    "content_type",
    "parse_ranges",
]

log = logging.getLogger("middleware.static")

#: A Range header with more ranges than this (after merging) gets the whole file.
MAX_RANGES = 16
#: Range headers longer than this are ignored (the whole file is sent).
RANGE_LIMIT = 1024
#: Seconds in the Cache-Control of immutable files: one year.
IMMUTABLE_MAX_AGE = 31_536_000
#: Bytes read per chunk when the server has no ``wsgi.file_wrapper``, and per read
#: of a byte range.
BLOCK_SIZE = 65_536
#: How many request paths under the prefix that name no file, checked safe, are
#: remembered so the next request for one skips the check (scan mode only; the
#: memo is emptied when full, so hostile paths cost the check and nothing more).
MISS_MEMO_SIZE = 4096

_UTF8 = "; charset=utf-8"

#: Extension (lower case, with the dot) to Content-Type. Text types carry
#: ``charset=utf-8``. Anything else is ``application/octet-stream``.
MIME_TYPES: Mapping[str, str] = {
    # text and code
    ".html": "text/html" + _UTF8,
    ".htm": "text/html" + _UTF8,
    ".css": "text/css" + _UTF8,
    ".js": "text/javascript" + _UTF8,
    ".mjs": "text/javascript" + _UTF8,
    ".cjs": "text/javascript" + _UTF8,
    ".map": "application/json" + _UTF8,
    ".json": "application/json" + _UTF8,
    ".jsonld": "application/ld+json" + _UTF8,
    ".webmanifest": "application/manifest+json" + _UTF8,
    ".xml": "application/xml" + _UTF8,
    ".xsl": "application/xml" + _UTF8,
    ".rss": "application/rss+xml" + _UTF8,
    ".atom": "application/atom+xml" + _UTF8,
    ".txt": "text/plain" + _UTF8,
    ".text": "text/plain" + _UTF8,
    ".md": "text/markdown" + _UTF8,
    ".csv": "text/csv" + _UTF8,
    ".tsv": "text/tab-separated-values" + _UTF8,
    ".ics": "text/calendar" + _UTF8,
    ".vtt": "text/vtt" + _UTF8,
    ".yaml": "application/yaml" + _UTF8,
    ".yml": "application/yaml" + _UTF8,
    ".wasm": "application/wasm",
    # images
    ".png": "image/png",
    ".apng": "image/apng",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".svg": "image/svg+xml" + _UTF8,
    ".ico": "image/vnd.microsoft.icon",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".jxl": "image/jxl",
    # fonts
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".eot": "application/vnd.ms-fontobject",
    # audio and video
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".oga": "audio/ogg",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".weba": "audio/webm",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".webm": "video/webm",
    ".ogv": "video/ogg",
    ".mov": "video/quicktime",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    # documents and archives: downloads, never a Content-Encoding
    ".pdf": "application/pdf",
    ".epub": "application/epub+zip",
    ".zip": "application/zip",
    ".gz": "application/gzip",
    ".tgz": "application/gzip",
    ".br": "application/x-brotli",
    ".zst": "application/zstd",
    ".bz2": "application/x-bzip2",
    ".xz": "application/x-xz",
    ".7z": "application/x-7z-compressed",
    ".tar": "application/x-tar",
    ".rar": "application/vnd.rar",
    ".doc": "application/msword",
    ".docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    ),
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pptx": (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    ),
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".rtf": "application/rtf",
    ".bin": "application/octet-stream",
}

#: Precompressed siblings looked for, as (content coding, file suffix).
VARIANTS = (("br", ".br"), ("zstd", ".zst"), ("gzip", ".gz"))

# Names Windows opens as devices, whatever the extension or trailing spaces.
_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"]
    + [f"{name}{n}" for name in ("COM", "LPT") for n in "123456789¹²³"]
)
# Characters never in a served name: controls, backslash, colon (drive letters,
# NTFS streams).
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\:]")
#: The default ``immutable`` test: a content hash of 8 to 64 hex digits, with at
#: least one letter and one digit, before the extension: ``app.3f9a1c2b.js``,
#: ``main-0a1b2c3d4e5f.css`` (Django's ManifestStaticFilesStorage, webpack).
HASHED_NAME = re.compile(
    r"[.-](?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{8,64}\.[A-Za-z0-9]+$"
)

# A quick test of a path (PATH_INFO: UTF-8 bytes as latin-1) that missed the table:
# when it finds nothing, the path is safe and holds no dotfile, so it simply names no
# file. When it finds something, the path is decoded and looked at segment by segment
# (_unsafe, _hidden), which decides.
_SUSPECT = re.compile(
    r"//|/\.|[. ](?:/|$)|[\x00-\x1f\x7f\\:]"
    r"|/(?:con|prn|aux|nul|conin\$|conout\$|clock\$"
    r"|(?:com|lpt)(?:[1-9]|\xc2[\xb2\xb3\xb9])) *(?:[./]|$)",
    re.IGNORECASE,
)
_RANGE_SPEC = re.compile(r"(\d*)-(\d*)")
_MEDIA_TYPE = re.compile(rf"{TOKEN}/{TOKEN}(?:\s*;[^\x00-\x1f\x7f]*)?")


def content_type(name: str, types: Mapping[str, str] = MIME_TYPES) -> str:
    """The Content-Type for a file name, by its last extension (case-insensitive);
    ``application/octet-stream`` when unknown."""
    extension = os.path.splitext(name)[1].lower()
    return types.get(extension, "application/octet-stream")


def _unsafe(segment: str) -> bool:
    """Whether a path segment (a URL's or a file's name) must never be served."""
    if segment in ("", ".", ".."):
        return True
    if _BAD_CHARS.search(segment) or segment[-1] in ". ":
        return True  # Windows drops trailing dots and spaces: a.txt. is a.txt
    return segment.split(".", 1)[0].rstrip(" ").upper() in _DEVICES


class _Variant:
    """One file that answers a URL: the identity file or a precompressed sibling,
    with its 200 and 304 headers built in advance."""

    __slots__ = (
        "coding",
        "path",
        "size",
        "mtime_ns",
        "etag",
        "last_modified",
        "modified",
        "headers",
        "not_modified",
    )

    def __init__(
        self, coding: str, path: str, st: os.stat_result, base: Headers, vary: bool
    ) -> None:
        self.coding = coding
        self.path = path
        self.size = st.st_size
        self.mtime_ns = st.st_mtime_ns
        suffix = "" if coding == "identity" else f"-{coding}"
        self.etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}{suffix}"'
        self.modified = int(st.st_mtime)
        self.last_modified = email.utils.formatdate(self.modified, usegmt=True)
        validators = [("ETag", self.etag), ("Last-Modified", self.last_modified)]
        cache = [(k, v) for k, v in base if k == "Cache-Control"]
        vary_header = [("Vary", "Accept-Encoding")] if vary else []
        # RFC 9110, section 15.4.5: what a 200 would send of these, and no other
        # metadata (Last-Modified adds nothing beside an ETag).
        self.not_modified: Headers = [validators[0], *cache, *vary_header]
        self.headers: Headers = [
            base[0],  # Content-Type
            ("Content-Length", str(self.size)),
            *validators,
            *base[1:],
            *([("Content-Encoding", coding)] if coding != "identity" else []),
            *vary_header,
        ]


class _File:
    """A URL's file: its variants, smallest first, and the identity one."""

    __slots__ = ("identity", "variants", "codings", "base", "vary")

    def __init__(self, variants: list[_Variant], base: Headers) -> None:
        variants.sort(key=lambda v: (v.size, v.coding != "identity"))
        self.variants = tuple(variants)
        self.codings = tuple(v.coding for v in variants)
        self.identity = next(v for v in variants if v.coding == "identity")
        self.base = base
        self.vary = len(variants) > 1

    def choose(self, accept_encoding: str | None) -> _Variant:
        """The smallest variant the client accepts; identity if it accepts none."""
        accepted = accepted_encodings(accept_encoding, self.codings)
        for variant in self.variants:
            if variant.coding in accepted:
                return variant
        return self.identity

    def reopened(self, variant: _Variant, st: os.stat_result) -> _Variant:
        """*variant* as its file is now (after a change the scan did not see)."""
        return _Variant(variant.coding, variant.path, st, self.base, self.vary)


_NOT_ALLOWED = status_page("405 Method Not Allowed", ("Allow", "GET, HEAD"))
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
        if any(_unsafe(segment) for segment in prefix.split("/")[1:]):
            raise ValueError(f"prefix: expected a plain URL path, got {prefix!r}")
        if max_age is not None and (
            isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0
        ):
            raise ValueError(f"max_age: expected seconds >= 0 or None, got {max_age!r}")
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
            not isinstance(index, str) or "/" in index or _unsafe(index)
        ):
            raise ValueError(
                f"index: expected a plain file name or None, got {index!r}"
            )
        if dotfiles not in ("deny", "ignore", "allow"):
            raise ValueError(
                f"dotfiles: expected 'deny', 'ignore' or 'allow', got {dotfiles!r}"
            )
        for name, flag in (
            ("precompressed", precompressed),
            ("follow_symlinks", follow_symlinks),
            ("autorefresh", autorefresh),
            ("fallthrough", fallthrough),
        ):
            if not isinstance(flag, bool):
                raise ValueError(f"{name}: expected True or False, got {flag!r}")
        types = dict(MIME_TYPES)
        for extension, value in (content_types or {}).items():
            if not (
                isinstance(extension, str)
                and extension.startswith(".")
                and isinstance(value, str)
                and _MEDIA_TYPE.fullmatch(value)
            ):
                raise ValueError(
                    "content_types: expected {'.ext': 'type/subtype'}, got "
                    f"{extension!r}: {value!r}"
                )
            types[extension.lower()] = value
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
        self._root = os.path.realpath(root)
        self._under = prefix + "/"
        # PATH_INFO (as the server gives it: latin-1 text of the URL's bytes) to file.
        self._files: dict[str, _File] = {}
        # Directory URLs without their slash, which redirect to it.
        self._directories: set[str] = set()
        # Safe paths under the prefix known to name no file (see MISS_MEMO_SIZE).
        self._misses: set[str] = set()
        # What a request for no file gets: passed on to the app, or 404.
        self._no_file = None if fallthrough else _NOT_FOUND
        if not autorefresh:
            self._scan(self._root, [], set())
            log.debug("%r: %d URLs", self, len(self._files))

    @property
    def answers_under(self) -> str | None:
        """The prefix: the core passes requests outside it on without answer()."""
        return self.prefix or None

    # -- building ------------------------------------------------------------------

    def _contained(self, path: str) -> bool:
        """Whether *path*, symlinks resolved, is inside the directory (always, with
        ``follow_symlinks``)."""
        if self.follow_symlinks:
            return True
        real = os.path.realpath(path)
        return os.path.commonpath([self._root, real]) == self._root

    def _hidden(self, segments: list[str]) -> bool:
        """Whether the dotfile policy keeps these path segments from being served."""
        if self.dotfiles == "allow":
            return False
        return any(
            s.startswith(".") and not (i == 0 and s == ".well-known")
            for i, s in enumerate(segments)
        )

    def _scan(self, directory: str, segments: list[str], seen: set[str]) -> None:
        """Add every servable file under *directory* to the URL table."""
        seen.add(os.path.realpath(directory))
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            log.warning("%r: cannot list %s: %s", self, directory, exc.strerror)
            return
        names = {entry.name for entry in entries}
        for entry in entries:
            path = segments + [entry.name]
            if _unsafe(entry.name) or self._hidden(path):
                log.debug("%r: not served: %s", self, entry.path)
                continue
            try:
                if entry.is_symlink() and not self._contained(entry.path):
                    log.debug("%r: symlink out of the directory: %s", self, entry.path)
                    continue
                st = entry.stat()  # follows symlinks
            except OSError:
                continue  # a dangling symlink, or gone since the listing
            if stat.S_ISDIR(st.st_mode):
                if os.path.realpath(entry.path) not in seen:  # no symlink loops
                    self._scan(entry.path, path, seen)
            elif stat.S_ISREG(st.st_mode):
                file = self._build(entry.path, path, st, names)
                if file is not None:
                    self._files[self._url(path)] = file
        if self.index is not None and self.index in names:
            index = self._files.get(self._url(segments + [self.index]))
            if index is not None:
                self._files[self._url(segments + [""])] = index
                self._directories.add(self._url(segments))

    def _url(self, segments: list[str]) -> str:
        """The PATH_INFO a server gives for these segments (UTF-8 bytes as latin-1)."""
        path = "/".join(segments).encode("utf-8", "surrogateescape")
        return self._under + path.decode("latin-1") if segments else self.prefix

    def _build(
        self,
        path: str,
        segments: list[str],
        st: os.stat_result,
        siblings: set[str] | None,
    ) -> _File | None:
        """The responses of one file and its precompressed siblings (looked for
        among *siblings*, the names in its directory, or on disk when None)."""
        relative = "/".join(segments)
        try:
            relative.encode("utf-8")
        except UnicodeEncodeError:
            log.debug("%r: not a UTF-8 name: %r", self, path)
            return None
        immutable = self.immutable
        if immutable is None:
            forever = False
        elif isinstance(immutable, re.Pattern):
            forever = immutable.search(relative) is not None
        else:
            forever = bool(immutable(relative))
        base: Headers = [("Content-Type", content_type(segments[-1], self._types))]
        if forever:
            base.append(("Cache-Control", f"max-age={IMMUTABLE_MAX_AGE}, immutable"))
        elif self.max_age is not None:
            base.append(("Cache-Control", f"max-age={self.max_age}"))
        base += [("Accept-Ranges", "bytes"), ("X-Content-Type-Options", "nosniff")]
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
                if stat.S_ISREG(sibling_stat.st_mode) and self._contained(sibling):
                    found.append((coding, sibling, sibling_stat))
        vary = len(found) > 1
        return _File([_Variant(c, p, s, base, vary) for c, p, s in found], base)

    # -- per request ---------------------------------------------------------------

    def answer(self, environ: WSGIEnvironment) -> Answer | None:
        """The response for a request for a file; None to pass it on to the app."""
        path: str = environ.get("PATH_INFO", "")
        file = self._files.get(path)
        if file is not None:
            return self._serve(environ, file, path, True)
        if path in self._misses:
            return self._no_file
        if not path.startswith(self._under) and path != self.prefix:
            return None
        return self._miss(environ, path)

    def _serve(
        self, environ: WSGIEnvironment, file: _File, key: str, retry: bool
    ) -> Answer | None:
        method = environ.get("REQUEST_METHOD")
        if method != "GET" and method != "HEAD":
            return _NOT_ALLOWED
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
            fresh = self._reload(key, file) if retry else None
            if fresh is None:
                return self._missing(environ)
            return self._serve(environ, fresh, key, False)
        try:
            st = os.fstat(handle.fileno())
            if st.st_size != variant.size or st.st_mtime_ns != variant.mtime_ns:
                # Changed since the scan: send what is open, with its own headers.
                variant = file.reopened(variant, st)
                if not self.autorefresh:
                    self._reload(key, file)
            if ranged:
                answer = _ranges(environ, variant, handle, file.base)
                if answer is not None:
                    return answer
            wrapper = environ.get("wsgi.file_wrapper")
            body = (
                wrapper(handle, BLOCK_SIZE)
                if wrapper is not None
                else _Body(handle, ((0, variant.size),))
            )
        except BaseException:
            handle.close()
            raise
        return "200 OK", variant.headers, body

    def _reload(self, key: str, file: _File) -> _File | None:
        """*file* looked up on disk again, and the URL table updated (scan mode)."""
        path = file.identity.path
        try:
            st = os.stat(path)
        except OSError:
            st = None
        fresh = None
        if st is not None and stat.S_ISREG(st.st_mode) and self._contained(path):
            segments = key[len(self._under) :].split("/")
            if segments[-1] == "" and self.index is not None:
                segments[-1] = self.index
            fresh = self._build(path, _decode(segments), st, None)
        if fresh is None:
            self._files.pop(key, None)
        else:
            self._files[key] = fresh
        return fresh

    def _miss(self, environ: WSGIEnvironment, path: str) -> Answer | None:
        """A path under the prefix that the table does not hold."""
        if (
            self.autorefresh
            or path == self.prefix
            or _SUSPECT.search(path, len(self.prefix)) is not None
        ):
            return self._inspect(environ, path)
        if path in self._directories:
            return self._redirect(environ)
        # The table only loses entries after the scan, so this path stays a miss.
        misses = self._misses
        if len(misses) >= MISS_MEMO_SIZE:
            misses.clear()
        misses.add(path)
        return self._no_file

    def _inspect(self, environ: WSGIEnvironment, path: str) -> Answer | None:
        """A path to look at closely: refused, redirected, or looked up on disk."""
        if path == self.prefix:
            segments = [] if self.prefix else [""]
        else:
            try:
                segments = _decode(path[len(self._under) :].split("/"))
            except UnicodeDecodeError:  # not UTF-8: names no file
                return self._missing(environ)
        if segments and any(_unsafe(s) for s in segments[:-1] + [segments[-1] or "x"]):
            return _NOT_FOUND
        if self._hidden(segments):
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
        target = os.path.join(self._root, *segments)
        try:
            st = os.stat(target)
        except OSError:
            return self._missing(environ)
        if stat.S_ISDIR(st.st_mode) and self.index is not None:
            index = os.path.join(target, self.index)
            if not os.path.isfile(index) or not self._contained(index):
                return self._missing(environ)
            if not segments or segments[-1] != "":
                return self._redirect(environ)
            segments = segments[:-1] + [self.index]
            target, st = index, os.stat(index)
        elif not segments or segments[-1] == "":
            return self._missing(environ)
        if not stat.S_ISREG(st.st_mode) or not self._contained(target):
            return self._missing(environ)
        file = self._build(target, segments, st, None)
        if file is None:
            return self._missing(environ)
        return self._serve(environ, file, path, False)

    def _missing(self, environ: WSGIEnvironment) -> Answer | None:
        """No such file: on to the app, or 404."""
        return self._no_file

    def _redirect(self, environ: WSGIEnvironment) -> Answer:
        """301 to the directory's URL with a slash (method other than GET/HEAD: 405)."""
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _NOT_ALLOWED
        url = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "") + "/"
        location = quote(url.encode("latin-1"), safe="/!$&'()*+,;=:@-._~")
        if environ.get("QUERY_STRING"):
            location += "?" + quote(
                environ["QUERY_STRING"].encode("latin-1"), safe="/?=&;%+:@!$'()*,~"
            )
        return status_page("301 Moved Permanently", ("Location", location))


def _decode(segments: list[str]) -> list[str]:
    """PATH_INFO segments (latin-1 text of URL bytes) as the UTF-8 they are.

    :raises UnicodeDecodeError: not UTF-8.
    """
    return [s.encode("latin-1").decode("utf-8") for s in segments]


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


def _unmodified(header: str, variant: _Variant) -> bool:
    """If-Modified-Since: whether the file is no newer than the date. A malformed
    date, or one in the future, is ignored (RFC 9110, section 13.1.3)."""
    if header == variant.last_modified:
        return True
    since = _timestamp(header)
    return since is not None and variant.modified <= since <= time.time()


def _if_range(header: str, variant: _Variant) -> bool:
    """If-Range: whether the ranges may be served (strong comparison of the ETag, or
    the exact Last-Modified date)."""
    header = header.strip()
    return header == variant.etag or header == variant.last_modified


def parse_ranges(header: str, size: int) -> list[tuple[int, int]] | None:
    """The byte ranges of a Range header as ``(start, stop)`` pairs, sorted and
    merged where they overlap or touch; ``[]`` when none is satisfiable; None when
    the header is to be ignored (not ``bytes``, malformed, too long, or more than
    :data:`MAX_RANGES` ranges)."""
    if len(header) > RANGE_LIMIT:
        return None
    unit, sep, specs = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    ranges: list[tuple[int, int]] = []
    listed = 0
    for spec in specs.split(","):
        spec = spec.strip()
        if not spec:
            continue  # an empty list element is allowed
        listed += 1
        match = _RANGE_SPEC.fullmatch(spec)
        if match is None:
            return None
        first, last = match.groups()
        if first:
            start = int(first)
            if last and int(last) < start:
                return None  # an invalid range-spec: the header is ignored
            stop = min(int(last) + 1, size) if last else size
        elif last:
            start, stop = max(size - int(last), 0), size
            if int(last) == 0:
                continue  # a zero-length suffix: unsatisfiable
        else:
            return None
        if start < size:
            ranges.append((start, stop))
    if not listed:
        return None
    ranges.sort()
    merged: list[tuple[int, int]] = []
    for start, stop in ranges:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(stop, merged[-1][1]))
        else:
            merged.append((start, stop))
    if len(merged) > MAX_RANGES:
        return None
    return merged


def _ranges(
    environ: WSGIEnvironment, variant: _Variant, handle: IO[bytes], base: Headers
) -> Answer | None:
    """The 206 or 416 for a Range request on the identity file; None to send the
    whole file (If-Range failed, the header is ignored)."""
    if_range = environ.get("HTTP_IF_RANGE")
    if if_range is not None and not _if_range(if_range, variant):
        return None
    size = variant.size
    ranges = parse_ranges(environ["HTTP_RANGE"], size)
    if ranges is None:
        return None
    vary = [h for h in variant.not_modified if h[0] == "Vary"]
    if not ranges:
        handle.close()
        return (
            "416 Range Not Satisfiable",
            [
                ("Content-Range", f"bytes */{size}"),
                ("Content-Type", "text/plain" + _UTF8),
                ("Content-Length", "0"),
                *vary,
            ],
            [],
        )
    common = [
        ("ETag", variant.etag),
        ("Last-Modified", variant.last_modified),
        *base[1:],
        *vary,
    ]
    if len(ranges) == 1:
        start, stop = ranges[0]
        headers = [
            base[0],
            ("Content-Length", str(stop - start)),
            ("Content-Range", f"bytes {start}-{stop - 1}/{size}"),
            *common,
        ]
        return "206 Partial Content", headers, _Body(handle, ranges)
    boundary = secrets.token_hex(16)
    parts = [
        (
            f"--{boundary}\r\n{base[0][0]}: {base[0][1]}\r\n"
            f"Content-Range: bytes {start}-{stop - 1}/{size}\r\n\r\n"
        ).encode("latin-1")
        for start, stop in ranges
    ]
    end = f"--{boundary}--\r\n".encode("latin-1")
    length = sum(
        len(p) + stop - start + 2
        for p, (start, stop) in zip(parts, ranges, strict=True)
    )
    headers = [
        ("Content-Type", f"multipart/byteranges; boundary={boundary}"),
        ("Content-Length", str(length + len(end))),
        *common,
    ]
    return "206 Partial Content", headers, _Body(handle, ranges, parts, end)


class _Body:
    """Byte ranges of an open file as a WSGI iterable that closes the file:
    exactly the bytes of each range (never past it), with multipart heads."""

    def __init__(
        self,
        handle: IO[bytes],
        ranges: list[tuple[int, int]] | tuple[tuple[int, int], ...],
        heads: list[bytes] | None = None,
        end: bytes = b"",
    ) -> None:
        self._handle = handle
        self._ranges = ranges
        self._heads = heads
        self._end = end

    def __iter__(self) -> Iterator[bytes]:
        handle = self._handle
        for number, (start, stop) in enumerate(self._ranges):
            if self._heads is not None:
                yield self._heads[number]
            handle.seek(start)
            left = stop - start
            while left > 0:
                data = handle.read(min(left, BLOCK_SIZE))
                if not data:  # the file shrank while being sent: stop short
                    raise OSError(f"{handle.name}: ended {left} bytes early")
                left -= len(data)
                yield data
            if self._heads is not None:
                yield b"\r\n"
        if self._end:
            yield self._end

    def close(self) -> None:
        self._handle.close()
