"""How many bytes a body the app returned will send, when that can be told before
it is iterated: a file wrapper's (:func:`file_size`) and a list's
(:func:`listed_size`)."""

from __future__ import annotations

import os

from ..wsgi import Headers, get_header


def file_size(result: object, headers: Headers | None) -> int | None:
    """How many bytes a file wrapper will send: its Content-Length, else what is
    left of its file; None when neither can be told (no fileno, so no sendfile)."""
    if headers is not None:
        length = get_header(headers, "Content-Length")
        if length is not None and length.isdigit():
            return int(length)
    # wsgiref and gunicorn call the file ``filelike``; waitress and Werkzeug ``file``.
    filelike = getattr(result, "filelike", None) or getattr(result, "file", None)
    try:
        fileno = filelike.fileno()  # type: ignore[union-attr]
        position = filelike.tell()  # type: ignore[union-attr]
        return max(os.fstat(fileno).st_size - int(position), 0)
    except (AttributeError, OSError, TypeError, ValueError):  # no real file: unknown
        return None


def listed_size(result: object) -> int | None:
    """The length of a body the app returned as a list or tuple of bytestrings (the
    classes themselves: a subclass may have ``close()``), else None. Such a body
    cannot raise while it is iterated and has nothing to close."""
    if result.__class__ is not list and result.__class__ is not tuple:
        return None
    size = 0
    for chunk in result:
        if chunk.__class__ is not bytes:
            return None
        size += len(chunk)
    return size
