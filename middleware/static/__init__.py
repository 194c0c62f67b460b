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

from collections.abc import Mapping

from . import mimetypes, ranges, table, variants
from .middleware import StaticFiles
from .mimetypes import content_type
from .ranges import parse_ranges

__all__ = [
    "HASHED_NAME",
    "MAX_RANGES",
    "MIME_TYPES",
    "StaticFiles",
    "content_type",
    "parse_ranges",
]

# The constants of the submodules that the docs show as this module's, with their
# doc comments here, where autodoc reads them. The submodules use their own.

#: The default ``immutable`` test: a content hash of 8 to 64 hex digits, with at
#: least one letter and one digit, before the extension: ``app.3f9a1c2b.js``,
#: ``main-0a1b2c3d4e5f.css`` (Django's ManifestStaticFilesStorage, webpack).
HASHED_NAME = variants.HASHED_NAME
#: A Range header with more ranges than this (after merging) gets the whole file.
MAX_RANGES = ranges.MAX_RANGES
#: Extension (lower case, with the dot) to Content-Type. Text types carry
#: ``charset=utf-8``. Anything else is ``application/octet-stream``.
MIME_TYPES: Mapping[str, str] = mimetypes.MIME_TYPES
#: Range headers longer than this are ignored (the whole file is sent).
RANGE_LIMIT = ranges.RANGE_LIMIT
#: Seconds in the Cache-Control of immutable files: one year.
IMMUTABLE_MAX_AGE = variants.IMMUTABLE_MAX_AGE
#: Bytes read per chunk when the server has no ``wsgi.file_wrapper``, and per read
#: of a byte range.
BLOCK_SIZE = ranges.BLOCK_SIZE
#: How many request paths under the prefix that name no file, checked safe, are
#: remembered so the next request for one skips the check (scan mode only; the
#: memo is emptied when full, so hostile paths cost the check and nothing more).
MISS_MEMO_SIZE = table.MISS_MEMO_SIZE
#: Precompressed siblings looked for, as (content coding, file suffix).
VARIANTS = variants.VARIANTS
