"""Undo a response's Content-Encoding, for checking a middleware the kit knows
nothing of: gzip and deflate always, br and zstd when a decoder is installed."""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable
from typing import Any

from .server import CheckFailed

Decoder = Callable[[bytes], bytes]


def _gunzip(body: bytes) -> bytes:
    # A stream, so that a body cut short (a server that stopped reading) gives
    # what it holds; members one after another are read too.
    out, data = [], body
    while data:
        stream = zlib.decompressobj(wbits=31)
        out.append(stream.decompress(data))
        data = stream.unused_data
    return b"".join(out)


def _inflate(body: bytes) -> bytes:
    # "deflate" is zlib-wrapped by RFC 9110; some servers send raw deflate.
    try:
        return zlib.decompressobj().decompress(body)
    except zlib.error:
        return zlib.decompressobj(-zlib.MAX_WBITS).decompress(body)


def _first(*names: str) -> Any:
    """The first of the modules *names* that imports, or None."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _brotli() -> Decoder | None:
    module = _first("brotli", "brotlicffi")
    if module is None:
        return None

    def decompress(body: bytes) -> bytes:
        data: bytes = module.Decompressor().process(body)
        return data

    return decompress


def _zstd() -> Decoder | None:
    module = _first("compression.zstd", "backports.zstd")
    if module is not None:

        def frames(body: bytes) -> bytes:
            out, data = [], body
            while data:
                stream = module.ZstdDecompressor()
                out.append(stream.decompress(data))
                data = stream.unused_data
            return b"".join(out)

        return frames
    zstandard = _first("zstandard")
    if zstandard is None:
        return None

    def stream(body: bytes) -> bytes:
        reader = zstandard.ZstdDecompressor().stream_reader(
            body, read_across_frames=True
        )
        out = []
        try:
            while chunk := reader.read(65536):
                out.append(chunk)
        except zstandard.ZstdError:
            if not out:
                raise
        return b"".join(out)

    return stream


def decoders() -> dict[str, Decoder]:
    """The codings this process can undo, by name."""
    found: dict[str, Decoder] = {"gzip": _gunzip, "x-gzip": _gunzip}
    found["deflate"] = _inflate
    for name, make in (("br", _brotli), ("zstd", _zstd)):
        decoder = make()
        if decoder is not None:
            found[name] = decoder
    return found


def accept_encoding() -> str:
    """An Accept-Encoding a browser would send, limited to what can be undone."""
    return ", ".join(
        name for name in ("gzip", "deflate", "br", "zstd") if name in decoders()
    )


def decode_content(coding: str | None, body: bytes) -> bytes:
    """*body* with *coding* (a Content-Encoding value, codings in the order they
    were applied) undone; a coding that cannot be undone fails the "body" check."""
    if coding is None:
        return body
    known = decoders()
    for name in reversed([part.strip().lower() for part in coding.split(",")]):
        if name in ("", "identity"):
            continue
        if name not in known:
            raise CheckFailed(f"cannot decode Content-Encoding {coding!r}", "body")
        try:
            body = known[name](body)
        except Exception as exc:  # a corrupt body is what the check reports
            raise CheckFailed(f"{name} body does not decode: {exc}", "body") from exc
    return body
