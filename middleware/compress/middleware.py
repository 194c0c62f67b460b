"""The middleware: :class:`Compress` and :class:`Gzip`, which decide per response at
``start_response``, and the body filter that streams a compressed body."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from ..http import MEMO_KEY_LIMIT, accepted_encodings
from ..options import Count, Flag, Names, Option
from ..proxy import Middleware, Responder
from ..wsgi import Headers, WSGIEnvironment, status_code
from .coders import AVAILABLE, CODINGS, PADDERS, Coder, GzipCoder
from .coding import Coding
from .etags import Mapped, coded_tag, not_modified, uncode, vary_on
from .policy import DEFAULT_TYPES, ENVIRON_KEY, types_pattern

log = logging.getLogger("middleware.gzip")

__all__ = ["Compress", "Gzip"]


# What an Accept-Encoding value gets; see Compress._negotiate.
_Choice = tuple[str, type[Coder] | None, int, bool]

# How many values each memo of a Compress keeps before it is emptied.
_MEMO_SIZE = 512


class _Compressing(Responder["Compress"]):
    """The per-request responder: maps the request's coded entity tags back to the
    app's, and decides at ``start_response``."""

    filters = True
    #: What :meth:`Compress.uncode` mapped back in If-None-Match, for the 304.
    mapped: Mapped = None

    def on_request(self) -> None:
        environ = self.environ
        if "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MATCH" in environ:
            self.mapped = self.middleware.uncode(environ)

    def on_start(self, status: str, headers: Headers) -> Coding | None:
        return self.middleware.start(
            self.environ, status, headers, self.filterable, self.mapped
        )


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
    :param random_padding: add up to this many random bytes to each compressed
        response (0, the default: none). The "Heal The BREACH" mitigation Django
        4.2 uses: the varying length hides from an attacker who measures response
        sizes whether a guess matched a secret in the page (a CSRF token beside
        reflected input). Only gzip can carry it (as a file name in its header):
        with padding on, br and zstd are not offered by default, and naming them
        is an error. See docs/compression.rst.

    A response is left uncompressed when the request is HEAD or has a ``Range``
    header; the status is 1xx, 204, 206 or 304; it has a ``Content-Encoding``
    already or ``Cache-Control: no-transform``; its type is not listed; its known
    length is under *min_size*; or the app set ``environ["middleware.compress"] =
    False``. Every response that could be compressed for some client gets ``Vary:
    Accept-Encoding``. A compressed one gets an exact ``Content-Length`` when its
    whole body is known before the first byte goes out (a list, or the app's
    length reached), and is streamed otherwise. Its strong ``ETag`` gets the
    coding (``"abc"`` becomes ``"abc-gzip"``: one validator per coding, RFC 9110
    section 8.8.3), and a coded tag in a request's ``If-None-Match`` or
    ``If-Match`` is given to the app as its own tag too, so an app that compares
    tags strongly still answers 304; its 304 then carries the coded tag again.
    """

    responder = _Compressing
    #: The declarations the plain options are checked (and read from ini files) by;
    #: ``encodings`` and ``level`` depend on each other and are checked together.
    options: ClassVar[dict[str, Option[Any]]] = {
        "min_size": Count(),
        "types": Names(expects="a list of media types"),
        "event_stream": Flag(),
        "random_padding": Count(maximum=65_535),
    }
    #: The codings this class may offer (:class:`Gzip` narrows it).
    codings: ClassVar[tuple[str, ...]] = tuple(CODINGS)

    def __init__(
        self,
        encodings: Iterable[str] | None = None,
        level: int | Mapping[str, int] | None = None,
        min_size: int = 500,
        types: Iterable[str] = DEFAULT_TYPES,
        event_stream: bool = False,
        random_padding: int = 0,
    ) -> None:
        options = self.options
        padding: int = options["random_padding"].check("random_padding", random_padding)
        self.encodings = self._check_encodings(encodings, padding)
        self.level = self._check_levels(level)
        self.min_size: int = options["min_size"].check("min_size", min_size)
        self.types: tuple[str, ...] = options["types"].check("types", types)
        self._types = types_pattern(self.types)
        self.event_stream: bool = options["event_stream"].check(
            "event_stream", event_stream
        )
        self.random_padding = padding
        self._offer = (*self.encodings, "identity")
        # Per-middleware memos of decisions on header values seen before: values up
        # to MEMO_KEY_LIMIT characters, _MEMO_SIZE of them, emptied when full.
        self._known_types: dict[str, bool] = {}
        self._negotiated: dict[str | None, _Choice] = {}
        self._pads: dict[str, Callable[[bytes], bytes] | None] = {
            name: (functools.partial(PADDERS[name], padding) if padding else None)
            for name in self.encodings
        }
        self._coders: dict[str, tuple[type[Coder], int]] = {
            name: (CODINGS[name][0] or GzipCoder, self.level[name])
            for name in self.encodings  # each one's library was checked above
        }

    def _check_encodings(
        self, encodings: Iterable[str] | None, padding: int
    ) -> tuple[str, ...]:
        padded = padding > 0
        if encodings is None:
            return tuple(
                name
                for name in AVAILABLE
                if name in self.codings and not (padded and name not in PADDERS)
            )
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
            if padded and name not in PADDERS:
                raise ValueError(
                    f"encodings: {name!r} has no field to carry random_padding "
                    f"({padding!r}); offer {', '.join(PADDERS)} only, "
                    "or set random_padding=0"
                )
            if CODINGS[name][0] is None:
                extra = CODINGS[name][3]
                raise ValueError(
                    f"encodings: {name!r} needs a library that is not installed "
                    f"(pip install 'wsgi-middleware-toolkit[{extra}]')"
                )
        return chosen

    def _check_levels(self, level: int | Mapping[str, int] | None) -> dict[str, int]:
        levels = {name: CODINGS[name][1] for name in self.encodings}
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
            allowed = CODINGS[name][2]
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
        if len(content_type) <= MEMO_KEY_LIMIT:  # apps use a few; bounded all the same
            memo = self._known_types
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            memo[content_type] = answer
        return answer

    def start(
        self,
        environ: WSGIEnvironment,
        status: str,
        headers: Headers,
        filterable: bool = True,
        mapped: Mapped = None,
    ) -> Coding | None:
        """Decide for one response at its ``start_response``: adjust its *headers*
        in place and return the body filter, or None to leave the body alone.
        *filterable* is False when the body cannot be changed (HEAD, or a body the
        server already has as it was): the headers still get ``Vary``. *mapped* is
        what :meth:`uncode` returned for the request."""
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
        if code == 304:
            not_modified(
                headers,
                etag,
                vary,
                mapped,
                self.compressible(content_type),
                "HTTP_IF_NONE_MATCH" in environ,
            )
            return None
        if not self.compressible(content_type):
            return None
        # Eligible: the body would differ by Accept-Encoding for some client.
        vary_on(headers, vary)
        accept = environ.get("HTTP_ACCEPT_ENCODING")
        choice = self._negotiated.get(accept)
        if choice is None:
            choice = self._negotiate(accept)
        coding, coder, level, identity_ok = choice
        if coder is None:
            return None  # identity is this client's best (or only) choice
        if not filterable or "HTTP_RANGE" in environ:
            return None  # HEAD; a range of the identity body
        size = int(length) if length is not None and length.isdigit() else -1
        if 0 <= size < self.min_size and identity_ok:
            return None
        headers.append(("Content-Encoding", coding))
        if etag >= 0:
            key, value = headers[etag]
            headers[etag] = (key, coded_tag(value.strip(), coding))
        return Coding(coder(level), size, self._pads[coding])

    def uncode(self, environ: WSGIEnvironment) -> Mapped:
        """Give the app its own entity tags where the request has the coded ones
        this middleware made of them (:func:`~middleware.compress.etags.uncode`);
        what was mapped back in If-None-Match, for the 304."""
        accept = environ.get("HTTP_ACCEPT_ENCODING")
        choice = self._negotiated.get(accept) or self._negotiate(accept)
        coding = choice[0] if choice[1] is not None else None  # None: identity
        return uncode(environ, coding, self.encodings)

    def _negotiate(self, accept: str | None) -> _Choice:
        """What an Accept-Encoding value gets: the coding, its coder class and
        level (None, 0 for identity), and whether identity is acceptable too.
        Remembered per value: browsers send a handful."""
        accepted = accepted_encodings(accept, self._offer)
        coding = accepted[0] if accepted else "identity"
        choice: _Choice = (coding, None, 0, True)
        if coding != "identity":
            coder, level = self._coders[coding]
            choice = (coding, coder, level, "identity" in accepted)
        if accept is None or len(accept) <= MEMO_KEY_LIMIT:
            negotiated = self._negotiated
            if len(negotiated) >= _MEMO_SIZE:
                negotiated.clear()
            negotiated[accept] = choice
        return choice


class Gzip(Compress):
    """:class:`Compress` limited to gzip: the stdlib's zlib, no extra dependency.

    ``Gzip(level=6, min_size=500, types=..., event_stream=False,
    random_padding=0)``; the options are
    :class:`Compress`'s.
    """

    codings: ClassVar[tuple[str, ...]] = ("gzip",)

    def __init__(
        self,
        level: int = 6,
        min_size: int = 500,
        types: Iterable[str] = DEFAULT_TYPES,
        event_stream: bool = False,
        random_padding: int = 0,
    ) -> None:
        super().__init__(
            encodings=("gzip",),
            level=level,
            min_size=min_size,
            types=types,
            event_stream=event_stream,
            random_padding=random_padding,
        )
