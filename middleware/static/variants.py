"""What is built for a file in advance: each encoding variant (the identity file and
its precompressed siblings), with its strong ETag, its Last-Modified and the headers
of its 200 and its 304, and the choice among them by ``Accept-Encoding``."""

from __future__ import annotations

import email.utils
import os
import re
from collections.abc import Callable, Mapping

from ..http import accepted_encodings
from ..wsgi import Headers
from .mimetypes import content_type

__all__ = [
    "HASHED_NAME",
    "IMMUTABLE_MAX_AGE",
    "VARIANTS",
    "Builder",
    "File",
    "Variant",
]

#: Seconds in the Cache-Control of immutable files: one year.
IMMUTABLE_MAX_AGE = 31_536_000

#: Precompressed siblings looked for, as (content coding, file suffix).
VARIANTS = (("br", ".br"), ("zstd", ".zst"), ("gzip", ".gz"))
_SUFFIXES = dict(VARIANTS)

#: The default ``immutable`` test: a content hash of 8 to 64 hex digits, with at
#: least one letter and one digit, before the extension: ``app.3f9a1c2b.js``,
#: ``main-0a1b2c3d4e5f.css`` (Django's ManifestStaticFilesStorage, webpack).
HASHED_NAME = re.compile(
    r"[.-](?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{8,64}\.[A-Za-z0-9]+$"
)


class Variant:
    """One file that answers a URL: the identity file or a precompressed sibling,
    with its 200 and 304 headers built in advance."""

    __slots__ = (
        "coding",
        "path",
        "size",
        "mtime_ns",
        "device",
        "inode",
        "ctime_ns",
        "verified",
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
        # The file that was checked (regular, inside the directory): what is opened
        # later is served only if it is this file, or checked again. An inode number
        # is reused once its file is deleted; the change time is set by the kernel
        # at every change, creation included, so the three together are this file.
        self.device = st.st_dev
        self.inode = st.st_ino
        self.ctime_ns = st.st_ctime_ns
        # Whether this file was opened and found inside the directory (FileServer).
        self.verified = False
        # A variant's tag names its file's suffix (".gz"), not its coding: a tag
        # ending "-gzip" is what Compress makes of an app's tag, and maps back.
        suffix = "" if coding == "identity" else _SUFFIXES[coding]
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


class File:
    """A URL's file: its variants, smallest first, and the identity one."""

    __slots__ = ("identity", "variants", "codings", "base", "vary")

    def __init__(self, variants: list[Variant], base: Headers) -> None:
        variants.sort(key=lambda v: (v.size, v.coding != "identity"))
        self.variants = tuple(variants)
        self.codings = tuple(v.coding for v in variants)
        self.identity = next(v for v in variants if v.coding == "identity")
        self.base = base
        self.vary = len(variants) > 1

    def choose(self, accept_encoding: str | None) -> Variant:
        """The smallest variant the client accepts; identity if it accepts none."""
        accepted = accepted_encodings(accept_encoding, self.codings)
        for variant in self.variants:
            if variant.coding in accepted:
                return variant
        return self.identity

    def reopened(self, variant: Variant, st: os.stat_result) -> Variant:
        """*variant* as its file is now (after a change the scan did not see)."""
        return Variant(variant.coding, variant.path, st, self.base, self.vary)


class Builder:
    """Builds a :class:`File` with the headers the options give it: Content-Type
    from *types*, Cache-Control from *immutable* and *max_age* (those of
    :class:`~middleware.static.StaticFiles`), ``Accept-Ranges`` and
    ``X-Content-Type-Options``."""

    __slots__ = ("types", "immutable", "max_age")

    def __init__(
        self,
        types: Mapping[str, str],
        immutable: re.Pattern[str] | Callable[[str], bool] | None,
        max_age: int | None,
    ) -> None:
        self.types = types
        self.immutable = immutable
        self.max_age = max_age

    def base(self, relative: str, name: str) -> Headers:
        """The headers every variant of a file shares, Content-Type first:
        *relative* is its path in the directory (``/``-separated), *name* its file
        name."""
        immutable = self.immutable
        if immutable is None:
            forever = False
        elif isinstance(immutable, re.Pattern):
            forever = immutable.search(relative) is not None
        else:
            forever = bool(immutable(relative))
        base: Headers = [("Content-Type", content_type(name, self.types))]
        if forever:
            base.append(("Cache-Control", f"max-age={IMMUTABLE_MAX_AGE}, immutable"))
        elif self.max_age is not None:
            base.append(("Cache-Control", f"max-age={self.max_age}"))
        base += [("Accept-Ranges", "bytes"), ("X-Content-Type-Options", "nosniff")]
        return base

    @staticmethod
    def build(base: Headers, found: list[tuple[str, str, os.stat_result]]) -> File:
        """The responses of one file, from its :meth:`base` headers and its variants
        as (content coding, path, stat), the identity file first."""
        vary = len(found) > 1
        return File([Variant(c, p, s, base, vary) for c, p, s in found], base)
