"""The coders: one response's compressor per coding (gzip, br, zstd), the libraries
found at import, their levels, and :data:`AVAILABLE`."""

from __future__ import annotations

import importlib
import secrets
import zlib
from collections.abc import Callable
from typing import Any

__all__ = [
    "AVAILABLE",
    "CODINGS",
    "BrotliCoder",
    "Coder",
    "GzipCoder",
    "PADDERS",
    "pad_gzip",
    "zstd_coder",
]


class Coder:
    """One response's compressor, made on first use.

    :meth:`chunk` compresses and flushes one chunk, so it decodes on arrival;
    :meth:`last` compresses the final chunk and ends the stream (a body that is one
    chunk is compressed in one call, with no compressor object); :meth:`end` ends
    it with no more data. Subclasses supply the four library calls.
    """

    __slots__ = ("level", "_compressor")

    def __init__(self, level: int) -> None:
        self.level = level
        self._compressor: Any = None

    def chunk(self, data: bytes) -> bytes:
        compressor = self._compressor
        if compressor is None:
            compressor = self._compressor = self.open()
        return self.flushed(compressor, data)

    def last(self, data: bytes) -> bytes:
        compressor = self._compressor
        if compressor is None:
            return self.whole(data)
        return self.ended(compressor, data)

    def end(self) -> bytes:
        return self.last(b"")

    def open(self) -> Any:
        """A streaming compressor at :attr:`level`."""
        raise NotImplementedError

    def flushed(self, compressor: Any, data: bytes) -> bytes:
        """*data* compressed and flushed, the stream left open."""
        raise NotImplementedError

    def ended(self, compressor: Any, data: bytes) -> bytes:
        """*data* compressed, and the stream ended."""
        raise NotImplementedError

    def whole(self, data: bytes) -> bytes:
        """*data* as one complete stream."""
        raise NotImplementedError


class GzipCoder(Coder):
    __slots__ = ()

    def open(self) -> Any:
        return zlib.compressobj(self.level, zlib.DEFLATED, 31)  # 31: gzip framing

    def flushed(self, compressor: Any, data: bytes) -> bytes:
        return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)  # type: ignore[no-any-return]

    def ended(self, compressor: Any, data: bytes) -> bytes:
        return compressor.compress(data) + compressor.flush()  # type: ignore[no-any-return]

    def whole(self, data: bytes) -> bytes:
        return zlib.compress(data, self.level, 31)


def _import(*names: str) -> Any:
    """The first of these modules that imports, or None."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:  # not installed: try the next, else the coding is off
            continue
    return None


_brotli = _import("brotli", "brotlicffi")


class BrotliCoder(Coder):
    __slots__ = ()

    def open(self) -> Any:
        return _brotli.Compressor(quality=self.level)

    def flushed(self, compressor: Any, data: bytes) -> bytes:
        return compressor.process(data) + compressor.flush()  # type: ignore[no-any-return]

    def ended(self, compressor: Any, data: bytes) -> bytes:
        return compressor.process(data) + compressor.finish()  # type: ignore[no-any-return]

    def whole(self, data: bytes) -> bytes:
        return _brotli.compress(data, quality=self.level)  # type: ignore[no-any-return]


def zstd_coder(module: Any) -> type[Coder] | None:
    """The zstd coder class for *module*: the stdlib's API (``compression.zstd``
    on 3.14+, or its ``backports.zstd``), or the ``zstandard`` package's."""
    if module is None:
        return None
    if hasattr(getattr(module, "ZstdCompressor", None), "FLUSH_BLOCK"):
        block = module.ZstdCompressor.FLUSH_BLOCK
        frame = module.ZstdCompressor.FLUSH_FRAME

        class _ZstdStd(Coder):
            __slots__ = ()

            def open(self) -> Any:
                return module.ZstdCompressor(level=self.level)

            def flushed(self, compressor: Any, data: bytes) -> bytes:
                return compressor.compress(data, block)  # type: ignore[no-any-return]

            def ended(self, compressor: Any, data: bytes) -> bytes:
                return compressor.compress(data, frame)  # type: ignore[no-any-return]

            def whole(self, data: bytes) -> bytes:
                return module.compress(data, level=self.level)  # type: ignore[no-any-return]

        return _ZstdStd
    flush_block = module.COMPRESSOBJ_FLUSH_BLOCK

    class _ZstdPackage(Coder):
        __slots__ = ()

        def open(self) -> Any:
            return module.ZstdCompressor(level=self.level).compressobj()

        def flushed(self, compressor: Any, data: bytes) -> bytes:
            return compressor.compress(data) + compressor.flush(flush_block)  # type: ignore[no-any-return]

        def ended(self, compressor: Any, data: bytes) -> bytes:
            return compressor.compress(data) + compressor.flush()  # type: ignore[no-any-return]

        def whole(self, data: bytes) -> bytes:
            return module.ZstdCompressor(level=self.level).compress(data)  # type: ignore[no-any-return]

    return _ZstdPackage


# The stdlib's module first (no extra dependency where it exists), then its
# backport, then the zstandard package.
_zstd = zstd_coder(_import("compression.zstd", "backports.zstd", "zstandard"))


#: name: (coder class or None when its library is missing, default level, levels,
#: the extra that installs the library). Level ranges: zlib's 1-9; brotli's 0-11;
#: zstd's 1-19 (20-22 need windows larger than the 8 MB browsers accept).
CODINGS: dict[str, tuple[type[Coder] | None, int, range, str]] = {
    "zstd": (_zstd, 3, range(1, 20), "zstd"),
    "br": (BrotliCoder if _brotli else None, 4, range(0, 12), "brotli"),
    "gzip": (GzipCoder, 6, range(1, 10), ""),
}

#: The codings whose library is importable here, in the default preference order.
AVAILABLE: tuple[str, ...] = tuple(
    name for name, (factory, *_) in CODINGS.items() if factory is not None
)


# -- random padding ("Heal The BREACH") ------------------------------------------------


def pad_gzip(most: int, data: bytes) -> bytes:
    """A gzip stream's first output with a file name of 0 to *most* bytes: the
    FNAME flag set in the 10-byte header zlib writes, and the zero-ended name after
    it (RFC 1952, section 2.3). Decoders skip the name."""
    name = b"x" * secrets.randbelow(most + 1)
    return b"%s%c%s%s\0%s" % (data[:3], data[3] | 0x08, data[4:10], name, data[10:])


#: The codings random padding can be added to, and how. Not br: its format has no
#: field a decoder skips. Not zstd: a skippable frame before the data is valid,
#: but decoders that read one frame (python-zstandard's ``decompressobj``, for
#: one) would then see an empty body.
PADDERS: dict[str, Callable[[int, bytes], bytes]] = {"gzip": pad_gzip}
