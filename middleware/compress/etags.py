"""Entity tags of compressed responses: one strong tag per coding (RFC 9110,
section 8.8.3), mapped back for the app on requests, and the 304's validators."""

from __future__ import annotations

import re

from ..wsgi import Headers, WSGIEnvironment, add_vary

__all__ = ["TAG_LIMIT", "Mapped", "coded_tag", "not_modified", "uncode", "vary_on"]

#: If-None-Match and If-Match values longer than this are passed on as they are:
#: their coded tags are not mapped back (a browser sends one tag).
TAG_LIMIT = 1024
# The tags of a list (RFC 9110, section 8.8.3): an optional W/ and a quoted opaque
# part, which may hold commas; or a bare token, which careless apps send.
_TAG = re.compile(r'(?:W/)?"[^"]*"|[^\s,]+')

#: What :func:`uncode` found in If-None-Match: the coding, and the app's tags it
#: mapped back to (``W/`` left off); None when it mapped none.
Mapped = tuple[str, frozenset[str]] | None


def coded_tag(tag: str, coding: str) -> str:
    """The entity tag of *coding*'s body: the coding added at the end of the tag's
    opaque part (``"abc"`` to ``"abc-gzip"``, ``W/"abc"`` to ``W/"abc-gzip"``; an
    unquoted tag, which some apps send, gets it at its end). Weak tags are coded
    too: a 304 can then tell which body the client holds, and carry its Vary."""
    if len(tag) >= 2 and tag[-1] == '"':
        return f'{tag[:-1]}-{coding}"'
    return f"{tag}-{coding}" if tag else tag


def vary_on(headers: Headers, vary: bool) -> None:
    """Add Accept-Encoding to the response's Vary (*vary*: it has one)."""
    if vary:
        add_vary(headers, "Accept-Encoding")
    else:
        headers.append(("Vary", "Accept-Encoding"))


def not_modified(
    headers: Headers,
    etag: int,
    vary: bool,
    mapped: Mapped,
    compressible: bool,
    validated: bool,
) -> None:
    """A 304 carries the validator and Vary the 200 would have (RFC 9110, section
    15.4.5). When the app matched a tag mapped back from a coded one (*mapped*: the
    coding and the app's tags, ``W/`` left off), the client holds the coded body:
    its coded tag goes back, with Vary. When the request's If-None-Match
    (*validated*) held only the app's own tags, the client holds the app's body:
    the tag stays, and Vary is added only if the 304 says its type is compressible
    (a 304 usually has no Content-Type, and a PNG's 200 has no Vary). With no
    If-None-Match (a date alone), nothing tells which body the client holds: Vary
    is added, as the 200 may have had it, and a Vary too many costs a cache a miss,
    not a wrong body."""
    if mapped is not None:
        coding, tags = mapped
        if etag >= 0:
            key, value = headers[etag]
            value = value.strip()
            if (value[2:] if value.startswith("W/") else value) in tags:
                headers[etag] = (key, coded_tag(value, coding))
                compressible = True
        else:
            compressible = True
    elif not validated:
        compressible = True
    if compressible:
        vary_on(headers, vary)


def uncode(
    environ: WSGIEnvironment, coding: str | None, offered: tuple[str, ...]
) -> Mapped:
    """Give the app its own entity tags: each tag of ``If-None-Match`` coded with
    *coding* (this client's: ``"abc-gzip"``; None when it gets identity), and each
    tag of ``If-Match`` coded with any of the *offered* codings (they all name the
    same state of the resource), is replaced in the environ by the app's
    (``"abc"``), as Apache's mod_deflate does, so an app that compares the whole
    header to its tag (Bottle) matches too. A header with nothing to map is left
    untouched, and so is one longer than :data:`TAG_LIMIT`. Returns, for the 304,
    the coding and the app's tags (``W/`` left off) mapped from If-None-Match;
    None when none was."""
    mapped = None
    ours = (coding,) if coding is not None else ()
    for key, codings in (("HTTP_IF_NONE_MATCH", ours), ("HTTP_IF_MATCH", offered)):
        value = environ.get(key)
        if not value or len(value) > TAG_LIMIT or "-" not in value:
            continue
        tags = _TAG.findall(value)
        found = set()
        for index, tag in enumerate(tags):
            mine = _app_tag(tag, codings)
            if mine is not None:
                tags[index] = mine
                found.add(mine[2:] if mine.startswith("W/") else mine)
        if found:
            environ[key] = ", ".join(tags)
            if coding is not None and key == "HTTP_IF_NONE_MATCH":
                mapped = (coding, frozenset(found))
    return mapped


def _app_tag(tag: str, codings: tuple[str, ...]) -> str | None:
    """The app's tag that :func:`coded_tag` made *tag* of, with one of *codings*;
    None when *tag* is not one."""
    for coding in codings:
        if tag.endswith(f'-{coding}"'):
            if len(tag) - tag.startswith("W/") * 2 > len(coding) + 3:  # not '"-gzip"'
                return tag[: -len(coding) - 2] + '"'
        elif (
            tag.endswith(f"-{coding}") and '"' not in tag and len(tag) > len(coding) + 1
        ):
            return tag[: -len(coding) - 1]
    return None
