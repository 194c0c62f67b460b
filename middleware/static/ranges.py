"""Byte ranges (RFC 9110, section 14): the ``Range`` header parsed, ``If-Range``
honoured, the 206 (one range, or ``multipart/byteranges``) or 416 of a request, and
the body that sends ranges of an open file."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import IO

from ..wsgi import Answer, Headers, WSGIEnvironment
from .mimetypes import UTF8
from .variants import Variant

__all__ = [
    "BLOCK_SIZE",
    "MAX_RANGES",
    "RANGE_LIMIT",
    "Body",
    "parse_ranges",
    "range_answer",
]

#: A Range header with more ranges than this (after merging) gets the whole file.
MAX_RANGES = 16
#: Range headers longer than this are ignored (the whole file is sent).
RANGE_LIMIT = 1024
#: Bytes read per chunk when the server has no ``wsgi.file_wrapper``, and per read
#: of a byte range.
BLOCK_SIZE = 65_536

_RANGE_SPEC = re.compile(r"(\d*)-(\d*)")


def _if_range(header: str, variant: Variant) -> bool:
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


def range_answer(
    environ: WSGIEnvironment, variant: Variant, handle: IO[bytes], base: Headers
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
                ("Content-Type", "text/plain" + UTF8),
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
        return "206 Partial Content", headers, Body(handle, ranges)
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
    return "206 Partial Content", headers, Body(handle, ranges, parts, end)


class Body:
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
