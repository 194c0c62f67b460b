"""Content types: our own table of extensions (never the platform's, which on Windows
reads the registry), with ``charset=utf-8`` on text, and the lookup by file name."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from ..http import TOKEN

__all__ = ["MIME_TYPES", "UTF8", "content_type", "merged_types"]

#: The parameter every text type carries.
UTF8 = "; charset=utf-8"

#: Extension (lower case, with the dot) to Content-Type. Text types carry
#: ``charset=utf-8``. Anything else is ``application/octet-stream``.
MIME_TYPES: Mapping[str, str] = {
    # text and code
    ".html": "text/html" + UTF8,
    ".htm": "text/html" + UTF8,
    ".css": "text/css" + UTF8,
    ".js": "text/javascript" + UTF8,
    ".mjs": "text/javascript" + UTF8,
    ".cjs": "text/javascript" + UTF8,
    ".map": "application/json" + UTF8,
    ".json": "application/json" + UTF8,
    ".jsonld": "application/ld+json" + UTF8,
    ".webmanifest": "application/manifest+json" + UTF8,
    ".xml": "application/xml" + UTF8,
    ".xsl": "application/xml" + UTF8,
    ".rss": "application/rss+xml" + UTF8,
    ".atom": "application/atom+xml" + UTF8,
    ".txt": "text/plain" + UTF8,
    ".text": "text/plain" + UTF8,
    ".md": "text/markdown" + UTF8,
    ".csv": "text/csv" + UTF8,
    ".tsv": "text/tab-separated-values" + UTF8,
    ".ics": "text/calendar" + UTF8,
    ".vtt": "text/vtt" + UTF8,
    ".yaml": "application/yaml" + UTF8,
    ".yml": "application/yaml" + UTF8,
    ".wasm": "application/wasm",
    # images
    ".png": "image/png",
    ".apng": "image/apng",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".svg": "image/svg+xml" + UTF8,
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

_MEDIA_TYPE = re.compile(rf"{TOKEN}/{TOKEN}(?:\s*;[^\x00-\x1f\x7f]*)?")


def content_type(name: str, types: Mapping[str, str] = MIME_TYPES) -> str:
    """The Content-Type for a file name, by its last extension (case-insensitive);
    ``application/octet-stream`` when unknown."""
    extension = os.path.splitext(name)[1].lower()
    return types.get(extension, "application/octet-stream")


def merged_types(content_types: Mapping[str, str] | None) -> dict[str, str]:
    """:data:`MIME_TYPES` with the extra entries of *content_types* over it
    (extensions lower-cased), each checked.

    :raises ValueError: an entry is not ``{'.ext': 'type/subtype'}``.
    """
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
    return types
