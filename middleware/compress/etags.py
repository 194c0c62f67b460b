"""Entity tags of compressed responses: one strong tag per coding (RFC 9110,
section 8.8.3), mapped back for the app on requests, and the 304's validators."""

from __future__ import annotations

from ..wsgi import Headers, WSGIEnvironment, add_vary

__all__ = ["TAG_LIMIT", "coded_tag", "not_modified", "uncode", "vary_on"]

#: If-None-Match and If-Match values longer than this are passed on as they are:
#: their coded tags are not mapped back (a browser sends one tag).
TAG_LIMIT = 1024


def coded_tag(tag: str, coding: str) -> str:
    """The entity tag of *coding*'s body: a strong tag with the coding added inside
    its quotes (``"abc"`` to ``"abc-gzip"``). Weak tags stay as they are (a weak
    validator may be shared by equivalent bodies), malformed ones too."""
    if len(tag) >= 2 and tag[0] == '"' and tag[-1] == '"':
        return f'{tag[:-1]}-{coding}"'
    return tag


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
    """Give the app its own entity tags beside the coded ones: each strong tag in
    ``If-None-Match`` and ``If-Match`` that carries *coding* (``"abc-gzip"``) is
    followed by the app's (``"abc"``) in the environ. The tags the client sent stay
    (an app's own tags may end the same way). Returns the If-None-Match mapping,
    app's tag to coded tag, for the 304; None when nothing was mapped. Values
    longer than :data:`TAG_LIMIT` are left as they are."""
    suffix = f'-{coding}"'
    coded = None
    for key in ("HTTP_IF_NONE_MATCH", "HTTP_IF_MATCH"):
        value = environ.get(key)
        if not value or suffix not in value or len(value) > TAG_LIMIT:
            continue
        tags = [tag.strip() for tag in value.split(",")]
        added = []
        for tag in tags:
            if tag.startswith('"') and tag.endswith(suffix):
                app_tag = tag[: -len(suffix)] + '"'
                if app_tag not in tags and app_tag not in added:
                    added.append(app_tag)
                if key == "HTTP_IF_NONE_MATCH":
                    if coded is None:
                        coded = {}
                    coded[app_tag] = tag
        if added:
            environ[key] = ", ".join([value, *added])
    return coded
