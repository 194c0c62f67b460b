"""Response compression: :class:`Compress` (zstd, br and gzip) and :class:`Gzip`.

Bodies are compressed as they stream: every chunk the app yields or writes goes
through one compressor object and is flushed (a sync flush) before it is passed on, so
server-sent events and token streams keep flowing and memory stays flat whatever the
body size. The coding is chosen from the request's parsed ``Accept-Encoding``
(:func:`middleware.http.accepted_encodings`), never by substring matching.

What is left alone, and why, is listed on :class:`Compress`; a response left alone
after a plain ``start_response`` is the app's own iterable, untouched, so
``wsgi.file_wrapper`` and sendfile keep working.
"""

from __future__ import annotations

import importlib
import logging
import re
import zlib
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from .http import accepted_encodings
from .proxy import Middleware, Responder
from .wsgi import COMPRESS_KEY, Headers, WSGIEnvironment, add_vary, status_code

log = logging.getLogger("middleware.gzip")

__all__ = ["AVAILABLE", "DEFAULT_TYPES", "Compress", "Gzip"]


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


class _Gzip(Coder):
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


class _Brotli(Coder):
    __slots__ = ()

    def open(self) -> Any:
        return _brotli.Compressor(quality=self.level)

    def flushed(self, compressor: Any, data: bytes) -> bytes:
        return compressor.process(data) + compressor.flush()  # type: ignore[no-any-return]

    def ended(self, compressor: Any, data: bytes) -> bytes:
        return compressor.process(data) + compressor.finish()  # type: ignore[no-any-return]

    def whole(self, data: bytes) -> bytes:
        return _brotli.compress(data, quality=self.level)  # type: ignore[no-any-return]


def _zstd_coder(module: Any) -> type[Coder] | None:
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
_zstd = _zstd_coder(_import("compression.zstd", "backports.zstd", "zstandard"))


# name: (coder class or None when its library is missing, default level, levels,
# the extra that installs the library). Level ranges: zlib's 1-9; brotli's 0-11;
# zstd's 1-19 (20-22 need windows larger than the 8 MB browsers accept).
_CODINGS: dict[str, tuple[type[Coder] | None, int, range, str]] = {
    "zstd": (_zstd, 3, range(1, 20), "zstd"),
    "br": (_Brotli if _brotli else None, 4, range(0, 12), "brotli"),
    "gzip": (_Gzip, 6, range(1, 10), ""),
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
ENVIRON_KEY = COMPRESS_KEY


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


# What an Accept-Encoding value gets; see Compress._negotiate.
_Choice = tuple[str, type[Coder] | None, int, bool]


class _Coding:
    """The body filter of one compressed response: each chunk through the coder,
    flushed, so it decodes on arrival."""

    __slots__ = ("_coder", "_left", "_ended")

    def __init__(self, coder: Coder, length: int) -> None:
        self._coder = coder
        # Bytes of the app's Content-Length still to come (-1: no length given). The
        # chunk that completes it ends the stream at once: no flush, then no trailer.
        self._left = length
        self._ended = False

    def feed(self, data: bytes) -> bytes:
        # An empty chunk stays empty: flushing nothing would still cost bytes.
        if not data:
            return data
        left = self._left
        if left < 0:
            return self._coder.chunk(data)
        if self._ended:  # the declared length was reached: nothing more is sent
            log.warning("dropped %d bytes past the Content-Length", len(data))
            return b""
        left -= len(data)
        self._left = left
        if left > 0:
            return self._coder.chunk(data)
        self._ended = True
        if left < 0:
            # What a server does with bytes past Content-Length: drop them.
            log.warning("dropped %d bytes past the Content-Length", -left)
            data = data[:left]
            self._left = 0
        return self._coder.last(data)

    def finish(self) -> bytes:
        return b"" if self._ended else self._coder.end()


class _Compressing(Responder["Compress"]):
    """The per-request responder: decides at ``start_response``."""

    filters = True

    def on_start(self, status: str, headers: Headers) -> _Coding | None:
        return self.middleware.start(self.environ, status, headers, self.filterable)


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

    responder = _Compressing
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
        # Per-middleware caches of decisions on header values seen before.
        self._known_types: dict[str, bool] = {}
        self._negotiated: dict[str | None, _Choice] = {}
        self._coders: dict[str, tuple[type[Coder], int]] = {
            name: (_CODINGS[name][0] or _Gzip, self.level[name])
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
        known = self._known_types.get(content_type)
        if known is not None:
            return known
        media = content_type.partition(";")[0].strip().lower()
        if media == "text/event-stream" and not self.event_stream:
            answer = False
        else:
            answer = self._types.fullmatch(media) is not None
        if len(self._known_types) < 512:  # apps use a few; bound it all the same
            self._known_types[content_type] = answer
        return answer

    def start(
        self,
        environ: WSGIEnvironment,
        status: str,
        headers: Headers,
        filterable: bool = True,
    ) -> _Coding | None:
        """Decide for one response at its ``start_response``: adjust its *headers*
        in place and return the body filter, or None to leave the body alone.
        *filterable* is False when the body cannot be changed (HEAD, or a body the
        server already has as it was): the headers still get ``Vary``."""
        if environ.get(ENVIRON_KEY, True) is False:
            return None
        code = status_code(status)
        if code < 200 or code == 204 or code == 206:
            return None
        # One pass over the headers for everything the decision reads.
        content_type = cache_control = length = None
        etag = -1
        vary = False
        for index, (key, value) in enumerate(headers):
            name = key.lower()
            if name == "content-type":
                content_type = value
            elif name == "content-length":
                length = value
            elif name == "content-encoding":
                return None
            elif name == "cache-control":
                cache_control = value
            elif name == "etag":
                etag = index
            elif name == "vary":
                vary = True
        if cache_control is not None and "no-transform" in cache_control.lower():
            return None
        if content_type is None:
            if code != 304:
                return None
        elif not self.compressible(content_type):
            return None
        # Eligible: the body would differ by Accept-Encoding for some client.
        if vary:
            add_vary(headers, "Accept-Encoding")
        else:
            headers.append(("Vary", "Accept-Encoding"))
        accept = environ.get("HTTP_ACCEPT_ENCODING")
        choice = self._negotiated.get(accept)
        if choice is None:
            choice = self._negotiate(accept)
        coding, coder, level, identity_ok = choice
        if coder is None:
            return None  # identity is this client's best (or only) choice
        if code == 304:
            if etag >= 0:  # the validator of the body this client would get
                _weaken(headers, etag)
            return None
        if not filterable or "HTTP_RANGE" in environ:
            return None  # HEAD; a range of the identity body
        size = int(length) if length is not None and length.isdigit() else -1
        if 0 <= size < self.min_size and identity_ok:
            return None
        headers.append(("Content-Encoding", coding))
        if etag >= 0:
            _weaken(headers, etag)
        return _Coding(coder(level), size)

    def _negotiate(self, accept: str | None) -> _Choice:
        """What an Accept-Encoding value gets: the coding, its coder class and
        level (None, 0 for identity), and whether identity is acceptable too.
        Cached per value: browsers send a handful."""
        accepted = accepted_encodings(accept, self._offer)
        coding = accepted[0] if accepted else "identity"
        choice: _Choice = (coding, None, 0, True)
        if coding != "identity":
            coder, level = self._coders[coding]
            choice = (coding, coder, level, "identity" in accepted)
        if len(self._negotiated) < 512:
            self._negotiated[accept] = choice
        return choice


def _weaken(headers: list[tuple[str, str]], index: int) -> None:
    """Make the ETag at *index* weak: the coded body's bytes differ."""
    key, value = headers[index]
    value = value.strip()
    if not value.startswith("W/"):
        headers[index] = (key, "W/" + value)


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
