"""Response compression: :class:`Compress` (zstd, br and gzip) and :class:`Gzip`.

Bodies are compressed as they stream: every chunk the app yields or writes goes
through one compressor object and is flushed (a sync flush) before it is passed on, so
server-sent events and token streams keep flowing and memory stays flat whatever the
body size. The coding is chosen from the request's parsed ``Accept-Encoding``
(:func:`middleware.core.accepted_encodings`), never by substring matching.

What is left alone, and why, is listed on :class:`Compress`; a response left alone
after a plain ``start_response`` is the app's own iterable, untouched, so
``wsgi.file_wrapper`` and sendfile keep working.
"""

from __future__ import annotations

import importlib
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from .core import (
    Middleware,
    Transformer,
    accepted_encodings,
    add_vary,
    get_header,
    status_code,
)

__all__ = ["AVAILABLE", "DEFAULT_TYPES", "Compress", "Gzip"]

#: A per-response coder: the function that compresses and flushes one chunk, and the
#: one that ends the stream.
Coder = tuple[Callable[[bytes], bytes], Callable[[], bytes]]


def _gzip(level: int) -> Coder:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip framing
    compress, flush = compressor.compress, compressor.flush

    def chunk(data: bytes) -> bytes:
        return compress(data) + flush(zlib.Z_SYNC_FLUSH)

    def end() -> bytes:
        return flush(zlib.Z_FINISH)

    return chunk, end


def _import(*names: str) -> Any:
    """The first of these modules that imports, or None."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


_brotli = _import("brotli", "brotlicffi")


def _br(level: int) -> Coder:
    compressor = _brotli.Compressor(quality=level)
    process, flush = compressor.process, compressor.flush

    def chunk(data: bytes) -> bytes:
        return process(data) + flush()  # type: ignore[no-any-return]

    return chunk, compressor.finish


def _zstd_factory(module: Any) -> Callable[[int], Coder] | None:
    """The zstd coder factory for *module*: the stdlib's API (``compression.zstd``
    on 3.14+, or its ``backports.zstd``), or the ``zstandard`` package's."""
    if module is None:
        return None
    if hasattr(getattr(module, "ZstdCompressor", None), "FLUSH_BLOCK"):

        def std_coder(level: int) -> Coder:
            compressor = module.ZstdCompressor(level=level)
            compress, flush = compressor.compress, compressor.flush
            block, frame = compressor.FLUSH_BLOCK, compressor.FLUSH_FRAME

            def chunk(data: bytes) -> bytes:
                return compress(data, block)  # type: ignore[no-any-return]

            def end() -> bytes:
                return flush(frame)  # type: ignore[no-any-return]

            return chunk, end

        return std_coder
    flush_block = module.COMPRESSOBJ_FLUSH_BLOCK

    def package_coder(level: int) -> Coder:
        obj = module.ZstdCompressor(level=level).compressobj()
        compress, flush = obj.compress, obj.flush

        def chunk(data: bytes) -> bytes:
            return compress(data) + flush(flush_block)  # type: ignore[no-any-return]

        return chunk, flush

    return package_coder


# The stdlib's module first (no extra dependency where it exists), then its
# backport, then the zstandard package.
_zstd = _zstd_factory(_import("compression.zstd", "backports.zstd", "zstandard"))


# name: (coder factory or None when its library is missing, default level, levels,
# the extra that installs the library). Level ranges: zlib's 1-9; brotli's 0-11;
# zstd's 1-19 (20-22 need windows larger than the 8 MB browsers accept).
_CODINGS: dict[str, tuple[Callable[[int], Coder] | None, int, range, str]] = {
    "zstd": (_zstd, 3, range(1, 20), "zstd"),
    "br": (_br if _brotli else None, 4, range(0, 12), "brotli"),
    "gzip": (_gzip, 6, range(1, 10), ""),
}

#: The codings whose library is importable here, in the default preference order.
AVAILABLE: tuple[str, ...] = tuple(
    name for name, (factory, *_) in _CODINGS.items() if factory is not None
)

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
ENVIRON_KEY = "middleware.compress"


def _types_pattern(types: Iterable[str]) -> re.Pattern[str]:
    parts = []
    for pattern in types:
        if not isinstance(pattern, str) or pattern.count("/") != 1:
            raise ValueError(
                f"types: each entry must be a media type such as 'text/*', "
                f"got {pattern!r}"
            )
        parts.append(re.escape(pattern.strip().lower()).replace(r"\*", "[^/]*"))
    return re.compile("|".join(parts) or "(?!)")


class _Compressing(Transformer):
    """The per-request proxy: decides at ``start_response``, then compresses."""

    _chunk: Callable[[bytes], bytes]
    _end: Callable[[], bytes]

    def on_start(self) -> None:
        coder = self.middleware.start(self)
        if coder is None:
            self.transforming = False
        else:
            self._chunk, self._end = coder

    def transform(self, data: bytes) -> bytes:
        # An empty chunk stays empty: flushing nothing would still cost bytes.
        return self._chunk(data) if data else data

    def finish(self) -> bytes:
        return self._end()


class Compress(Middleware):
    """Compress response bodies with the best coding the client accepts.

    :param encodings: the codings to offer, in the server's order of preference for
        ties in the client's q-values. Default: every coding whose library is
        installed, ``("zstd", "br", "gzip")`` (zstd needs the ``zstandard`` package
        or Python 3.14, br the ``brotli`` package: extras ``[zstd]`` and
        ``[brotli]``). Naming one whose library is missing is an error.
    :param level: a mapping of coding to level, merged over the defaults (gzip 6,
        br 4, zstd 3: on-the-fly levels; higher ones cost far more CPU for a few
        percent). A plain int is accepted when only one coding is offered.
    :param min_size: bodies whose ``Content-Length`` is below this many bytes are
        sent as they are, unless the client refuses identity.
    :param types: the media types to compress (patterns, ``*`` within a part);
        default :data:`DEFAULT_TYPES`.
    :param event_stream: also compress ``text/event-stream``. Off by default: some
        proxies and clients mishandle compressed event streams. Each event is
        flushed as it comes when on.

    A response is left uncompressed when the request is HEAD or has a ``Range``
    header; the status is 1xx, 204, 206 or 304; it has a ``Content-Encoding``
    already or ``Cache-Control: no-transform``; its type is not listed; its known
    length is under *min_size*; or the app set ``environ["middleware.compress"] =
    False``. Every response that could be compressed for some client gets ``Vary:
    Accept-Encoding``; a compressed one loses ``Content-Length`` (it is streamed) and
    has a strong ``ETag`` made weak, as its bytes differ from the identity body's.
    """

    observer = _Compressing
    #: The codings this class may offer (:class:`Gzip` narrows it).
    codings: ClassVar[tuple[str, ...]] = tuple(_CODINGS)

    def __init__(
        self,
        encodings: Iterable[str] | None = None,
        level: int | Mapping[str, int] | None = None,
        min_size: int = 500,
        types: Iterable[str] = DEFAULT_TYPES,
        event_stream: bool = False,
    ) -> None:
        self.encodings = self._check_encodings(encodings)
        self.level = self._check_levels(level)
        if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0:
            raise ValueError(f"min_size: expected an int >= 0, got {min_size!r}")
        self.min_size = min_size
        if isinstance(types, str):
            raise ValueError(f"types: expected a list of media types, got {types!r}")
        self.types = tuple(types)
        self._types = _types_pattern(self.types)
        if not isinstance(event_stream, bool):
            raise ValueError(
                f"event_stream: expected True or False, got {event_stream!r}"
            )
        self.event_stream = event_stream
        self._offer = (*self.encodings, "identity")
        self._coders: dict[str, tuple[Callable[[int], Coder], int]] = {
            name: (_CODINGS[name][0] or _gzip, self.level[name])
            for name in self.encodings  # each one's library was checked above
        }

    def _check_encodings(self, encodings: Iterable[str] | None) -> tuple[str, ...]:
        if encodings is None:
            return tuple(name for name in AVAILABLE if name in self.codings)
        if isinstance(encodings, str):
            raise ValueError(
                f"encodings: expected a list of names such as ['gzip'], "
                f"got {encodings!r}"
            )
        chosen = tuple(encodings)
        if not chosen or len(set(chosen)) != len(chosen):
            raise ValueError(
                f"encodings: expected one or more distinct names, got {chosen!r}"
            )
        for name in chosen:
            if name not in self.codings:
                raise ValueError(
                    f"encodings: {name!r} is not one of {', '.join(self.codings)}"
                )
            if _CODINGS[name][0] is None:
                extra = _CODINGS[name][3]
                raise ValueError(
                    f"encodings: {name!r} needs a library that is not installed "
                    f"(pip install 'wsgi-middleware-toolkit[{extra}]')"
                )
        return chosen

    def _check_levels(self, level: int | Mapping[str, int] | None) -> dict[str, int]:
        levels = {name: _CODINGS[name][1] for name in self.encodings}
        if level is None:
            return levels
        if isinstance(level, int) and not isinstance(level, bool):
            if len(self.encodings) != 1:
                raise ValueError(
                    f"level: an int is ambiguous with several encodings "
                    f"{self.encodings!r}; give a mapping such as {{'gzip': 6}}, "
                    f"got {level!r}"
                )
            given: Mapping[str, int] = {self.encodings[0]: level}
        elif isinstance(level, Mapping):
            given = level
        else:
            raise ValueError(f"level: expected an int or a mapping, got {level!r}")
        for name, value in given.items():
            if name not in levels:
                raise ValueError(
                    f"level: {name!r} is not one of the encodings {self.encodings!r}"
                )
            allowed = _CODINGS[name][2]
            if isinstance(value, bool) or value not in allowed:
                raise ValueError(
                    f"level: {name} takes {allowed.start}..{allowed.stop - 1}, "
                    f"got {value!r}"
                )
            levels[name] = value
        return levels

    def compressible(self, content_type: str | None) -> bool:
        """Whether a response of this ``Content-Type`` is worth compressing."""
        if not content_type:
            return False
        media = content_type.partition(";")[0].strip().lower()
        if media == "text/event-stream" and not self.event_stream:
            return False
        return self._types.fullmatch(media) is not None

    def start(self, response: _Compressing) -> Coder | None:
        """Decide for one response at its ``start_response``: adjust its headers
        and return the coder to use, or None to leave the body alone."""
        environ = response.environ
        headers = response.headers
        if headers is None or environ.get(ENVIRON_KEY, True) is False:
            return None
        code = status_code(response.status or "")
        if code < 200 or code in (204, 206):
            return None
        if get_header(headers, "Content-Encoding") is not None:
            return None
        if "no-transform" in (get_header(headers, "Cache-Control") or "").lower():
            return None
        content_type = get_header(headers, "Content-Type")
        if not (code == 304 and content_type is None) and not self.compressible(
            content_type
        ):
            return None
        # Eligible: the body would differ by Accept-Encoding for some client.
        add_vary(headers, "Accept-Encoding")
        accepted = accepted_encodings(environ.get("HTTP_ACCEPT_ENCODING"), self._offer)
        coding = accepted[0] if accepted else "identity"
        if coding == "identity":
            return None
        if code == 304:
            # A 304 carries the validator of the body this client would get.
            _weaken_etag(headers)
            return None
        if not response.transforming or "HTTP_RANGE" in environ:
            return None  # HEAD; a range of the identity body
        length = get_header(headers, "Content-Length")
        if (
            length is not None
            and length.isdigit()
            and int(length) < self.min_size
            and "identity" in accepted
        ):
            return None
        factory, level = self._coders[coding]
        headers.append(("Content-Encoding", coding))
        _weaken_etag(headers)
        return factory(level)


def _weaken_etag(headers: list[tuple[str, str]]) -> None:
    for index, (key, value) in enumerate(headers):
        if key.lower() == "etag" and not value.lstrip().startswith("W/"):
            headers[index] = (key, "W/" + value.lstrip())


class Gzip(Compress):
    """:class:`Compress` limited to gzip: the stdlib's zlib, no extra dependency.

    ``Gzip(level=6, min_size=500, types=..., event_stream=False)``; the options are
    :class:`Compress`'s.
    """

    codings: ClassVar[tuple[str, ...]] = ("gzip",)

    def __init__(
        self,
        level: int = 6,
        min_size: int = 500,
        types: Iterable[str] = DEFAULT_TYPES,
        event_stream: bool = False,
    ) -> None:
        super().__init__(
            encodings=("gzip",),
            level=level,
            min_size=min_size,
            types=types,
            event_stream=event_stream,
        )
