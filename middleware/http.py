"""HTTP rules that more than one middleware needs: ``Accept-Encoding`` negotiation,
``Accept`` preference between HTML and JSON, the client's address, the RFC 9110
token grammar, and the escaping of request values for log lines.

This module depends on nothing else in the package.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from webob.acceptparse import AcceptValidHeader, create_accept_header

__all__ = [
    "UNSAFE",
    "ACCEPT_ENCODING_LIMIT",
    "ACCEPT_LIMIT",
    "MEMO_KEY_LIMIT",
    "TOKEN",
    "accepted_encodings",
    "escape",
    "prefers_json",
    "prefixes",
    "under",
]

#: RFC 9110, section 5.6.2: a token (header field names, cookie names, media types).
TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"

#: Accept-Encoding values longer than this are not parsed: the client gets identity.
ACCEPT_ENCODING_LIMIT = 1024
#: Header values longer than this are never kept in a memo (they are parsed each
#: time, up to their own limit), so no memo holds more than this many characters per
#: entry whatever clients send. Browsers send values of 20 to 150 characters.
MEMO_KEY_LIMIT = 256
#: Accept values longer than this are not parsed (WebOb takes about 0.1 ms per KB):
#: the client gets HTML, the default. Browsers send about 150 characters.
ACCEPT_LIMIT = 1024
# An identity the header does not name ranks below every coding it offers with
# q > 0 (the lowest qvalue a header can give is 0.001).
_FALLBACK = 0.0001
# RFC 9110, section 12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


def accepted_encodings(
    header: str | None, available: tuple[str, ...]
) -> tuple[str, ...]:
    """The content codings among *available* that an ``Accept-Encoding`` value
    accepts, best first: highest q-value, ties in the order of *available*.

    *available* may include ``"identity"`` (no coding). The rules, from RFC 9110,
    section 12.5.3:

    - a coding with ``q=0`` is never accepted; one the header does not name is
      accepted only through ``*`` (with ``*``'s q-value);
    - ``identity`` named in the header competes by its q-value; not named, it is
      the fallback, ranked below every coding accepted with q > 0 (as nginx, Apache
      and flask-compress rank it), and refused only by ``*;q=0``;
    - names and parameters are case-insensitive, spaces around them are ignored,
      ``x-gzip`` means ``gzip``; an entry with a malformed q-value is ignored;
    - no header, or one longer than :data:`ACCEPT_ENCODING_LIMIT`, accepts only
      ``identity``: a client that does not ask gets no coding.

    Results are remembered (512 of them, least recently used first out) for values
    up to :data:`MEMO_KEY_LIMIT` characters, so a server seeing the same few browser
    headers parses each once and no hostile value is kept.
    """
    if header is not None and len(header) <= MEMO_KEY_LIMIT:
        return _remembered(header, available)
    return _accepted(header, available)


def _accepted(header: str | None, available: tuple[str, ...]) -> tuple[str, ...]:
    """:func:`accepted_encodings`, not remembered."""
    qvalues: dict[str, float] = {}
    if header is not None and len(header) <= ACCEPT_ENCODING_LIMIT:
        for entry in header.split(","):
            name, _, params = entry.partition(";")
            name = name.strip().lower()
            if not name:
                continue
            q: float | None = 1.0
            for param in params.split(";") if params else ():
                key, _, value = param.partition("=")
                if key.strip().lower() == "q":
                    value = value.strip()
                    q = float(value) if _QVALUE.fullmatch(value) else None
            if q is None:
                continue
            if name == "x-gzip":
                name = "gzip"
                if name in qvalues:
                    continue  # an explicit gzip entry wins over its alias
            qvalues[name] = q
    star = qvalues.get("*")
    ranked: list[tuple[float, int, str]] = []
    for position, coding in enumerate(available):
        q = qvalues.get(coding)
        if q is None:
            if coding != "identity":
                q = star or 0.0
            elif star != 0:
                q = _FALLBACK
        if q:
            ranked.append((-q, position, coding))
    ranked.sort()
    return tuple(coding for _, _, coding in ranked)


_remembered = functools.lru_cache(maxsize=512)(_accepted)


def under(path: str, prefixes: tuple[str, ...]) -> bool:
    """Whether *path* lies under one of *prefixes* (each without its trailing
    ``/``, as :func:`prefixes` keeps them), by whole segments: ``/healthz`` holds
    ``/healthz`` and ``/healthz/db``, not ``/healthzX``. A path with a dot segment
    or an empty one is under none (``/healthz/../admin``), since servers differ in
    whether they resolve those. The exempt rule of BasicAuth, RateLimit and
    SecurityHeaders."""
    if not prefixes or "/." in path or "//" in path:
        return False
    return any(
        path == prefix or path.startswith(prefix + "/") or prefix == "/"
        for prefix in prefixes
    )


def prefixes(paths: Iterable[str]) -> tuple[str, ...]:
    """*paths* as :func:`under` takes them: without a trailing ``/`` (``/`` kept)."""
    return tuple(path.rstrip("/") or "/" for path in paths)


def prefers_json(accept: str | None) -> bool:
    """Whether an ``Accept`` value prefers ``application/json`` to ``text/html``:
    a higher q-value, or the same one from a more specific range. So ``*/*`` and
    browsers get HTML, and ``application/json, text/plain, */*`` (what axios
    sends) gets JSON. Parsed by WebOb; a malformed value, or one longer than
    :data:`ACCEPT_LIMIT`, gets HTML."""
    if not accept or len(accept) > ACCEPT_LIMIT:
        return False
    parsed = create_accept_header(accept)
    if not isinstance(parsed, AcceptValidHeader):
        return False
    return _match(parsed, "application/json") > _match(parsed, "text/html")


def _match(accept: AcceptValidHeader, offer: str) -> tuple[float, int]:
    """The q-value the most specific matching range gives *offer*, and how
    specific that range was (2 exact, 1 ``type/*``, 0 ``*/*``); (0, -1) if none."""
    kind = offer.split("/")[0]
    best = (-1, 0.0)
    for media_range, q, _params, _extensions in accept.parsed:
        media_range = media_range.lower()
        if media_range == offer:
            specificity = 2
        elif media_range == f"{kind}/*":
            specificity = 1
        elif media_range == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best[0]:
            best = (specificity, q)
    specificity, q = best
    return (q, specificity) if q > 0 else (0.0, -1)


#: Printable ASCII except the double quote and the backslash: everything else in a
#: logged value is written \xhh (\uhhhh above U+00FF). Public so the access log's
#: fast path can scan all of a line's request values at once before escaping.
UNSAFE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def _hex(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(value: str) -> str:
    """*value* with control characters, quotes, backslashes and non-ASCII written
    as ``\\xhh``: one request, one line, whatever the client sent. The one rule
    for every request value a log line of this package holds (the access log,
    error reports, failed logins)."""
    return UNSAFE.sub(_hex, value) if UNSAFE.search(value) else value
