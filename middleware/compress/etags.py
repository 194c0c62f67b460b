"""Entity tags of compressed responses: one strong tag per coding (RFC 9110,
section 8.8.3), mapped back for the app on requests, and the 304's validators."""

from __future__ import annotations

from ..wsgi import Headers, WSGIEnvironment, add_vary

__all__ = ["TAG_LIMIT", "coded_tag", "not_modified", "uncode", "vary_on"]

#: If-None-Match and If-Match values longer than this are passed on as they are:
#: their coded tags are not mapped back (a browser sends one tag).
TAG_LIMIT = 1024


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
    coded: dict[str, str] | None,
    compressible: bool,
) -> None:
    """A 304 carries the validator and Vary the 200 would have (RFC 9110, section
    15.4.5). When the app matched the tag mapped back from a coded one, the client
    holds the coded body: its tag goes back, with Vary. Otherwise the client holds
    the app's own body: the tag stays, and Vary is added only when the 304 says its
    type is compressible (a 304 usually has no Content-Type, and a PNG's 200 has no
    Vary)."""
    if coded:
        if etag >= 0:
            key, value = headers[etag]
            tag = coded.get(value.strip())
            if tag is not None:
                headers[etag] = (key, tag)
                compressible = True
        else:
            compressible = True
    if compressible:
        vary_on(headers, vary)


def uncode(environ: WSGIEnvironment, coding: str) -> dict[str, str] | None:
    """Give the app its own entity tags: each tag in ``If-None-Match`` and
    ``If-Match`` coded with *coding* (``"abc-gzip"``, this client's coding) is
    replaced in the environ by the app's (``"abc"``), as Apache's mod_deflate does,
    so an app that compares the whole header to its tag (Bottle) matches too.
    Returns the If-None-Match mapping, app's tag to coded tag, for the 304; None
    when nothing was mapped. Values longer than :data:`TAG_LIMIT` are left as
    they are."""
    quoted = f'-{coding}"'
    bare = quoted[:-1]
    coded = None
    for key in ("HTTP_IF_NONE_MATCH", "HTTP_IF_MATCH"):
        value = environ.get(key)
        if not value or bare not in value or len(value) > TAG_LIMIT:
            continue
        tags = []
        for tag in value.split(","):
            tag = tag.strip()
            if tag.endswith(quoted) and len(tag) > len(quoted):
                mine = tag[: -len(quoted)] + '"'
            elif tag.endswith(bare) and len(tag) > len(bare) and '"' not in tag:
                mine = tag[: -len(bare)]
            else:
                tags.append(tag)
                continue
            tags.append(mine)
            if key == "HTTP_IF_NONE_MATCH":
                if coded is None:
                    coded = {}
                coded[mine] = tag
        environ[key] = ", ".join(tags)
    return coded
