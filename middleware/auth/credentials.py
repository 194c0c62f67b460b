"""Reading Basic credentials from an ``Authorization`` header, safely: a header
too long, of another scheme or malformed gives no credentials, never an error."""

from __future__ import annotations

import binascii

__all__ = ["HEADER_LIMIT", "parse_basic"]

#: Authorization headers longer than this are refused unread (a 401).
HEADER_LIMIT = 4096


def parse_basic(header: str) -> tuple[str, bytes] | None:
    """``(user, password)`` from an ``Authorization`` value, or None when it is not
    well-formed Basic credentials. The scheme is case-insensitive; user and
    password are read as UTF-8, else latin-1 (what some clients send), and the
    password is returned as UTF-8 bytes, the form hashes are made from."""
    if len(header) > HEADER_LIMIT:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        raw = binascii.a2b_base64(token.strip().encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):  # not base64: a 401
        return None
    user_raw, colon, password = raw.partition(b":")
    if not colon or not user_raw:
        return None
    try:
        user = user_raw.decode("utf-8")
    except UnicodeDecodeError:  # not UTF-8: latin-1, which decodes any bytes
        user = user_raw.decode("latin-1")
    try:
        password.decode("utf-8")
    except UnicodeDecodeError:  # latin-1 from the client: as UTF-8, like the hashes
        password = password.decode("latin-1").encode("utf-8")
    return user, password
