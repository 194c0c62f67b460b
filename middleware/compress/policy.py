"""What is compressed: :data:`DEFAULT_TYPES`, the media-type patterns, and the
environ key an app sets to opt out."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..wsgi import COMPRESS_KEY

__all__ = ["DEFAULT_TYPES", "ENVIRON_KEY", "types_pattern"]

#: Media types compressed by default. ``*`` matches within one part of the type;
#: ``text/event-stream`` is left out unless ``event_stream=True``. Images (except
#: SVG, BMP and icons), audio, video, archives and WOFF fonts are compressed already.
DEFAULT_TYPES: tuple[str, ...] = (
    "text/*",
    "application/json",
    "application/*+json",
    "application/javascript",
    "application/x-javascript",
    "application/ecmascript",
    "application/xml",
    "application/*+xml",
    "application/wasm",
    "application/x-ndjson",
    "application/graphql",
    "application/x-www-form-urlencoded",
    "application/rtf",
    "application/x-sh",
    "application/vnd.ms-fontobject",
    "font/ttf",
    "font/otf",
    "application/x-font-ttf",
    "image/svg+xml",
    "image/bmp",
    "image/x-icon",
    "image/vnd.microsoft.icon",
)

#: The environ key an app sets to False to keep its response uncompressed.
ENVIRON_KEY = COMPRESS_KEY


def types_pattern(types: Iterable[str]) -> re.Pattern[str]:
    """One pattern that fullmatches a lowercased media type listed in *types*
    (``*`` within a part); a ValueError names an entry that is not a media type."""
    parts = []
    for pattern in types:
        if not isinstance(pattern, str) or pattern.count("/") != 1:
            raise ValueError(
                f"types: each entry must be a media type such as 'text/*', "
                f"got {pattern!r}"
            )
        parts.append(re.escape(pattern.strip().lower()).replace(r"\*", "[^/]*"))
    return re.compile("|".join(parts) or "(?!)")
