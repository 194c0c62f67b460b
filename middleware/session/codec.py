"""Signed JSON: how a session payload becomes a cookie value or a store record and
back.

Signing is WebOb's :class:`~webob.cookies.SignedSerializer` (HMAC-SHA256 over the
payload, compared in constant time), one per secret: the current secret signs, the
fallbacks only verify. The payload is compact JSON, never pickle; a payload over
:data:`COMPRESS_OVER` bytes is zlib-compressed when that makes it smaller.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from webob.cookies import SignedSerializer

__all__ = ["COMPRESS_OVER", "Codec"]

#: JSON payloads longer than this are tried with zlib; the smaller form is kept.
COMPRESS_OVER = 200
# zlib output starts with 0x78; JSON objects start with "{". The marker removes doubt.
_ZLIB = b"z"
# A compressed payload may expand to at most this much: a signed payload is ours,
# but a bound costs nothing and keeps a leaked secret from being a memory bomb too.
_INFLATE_LIMIT = 1 << 20

_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_loads = json.JSONDecoder().decode


class _JSON:
    """The serializer WebOb's signer is given: JSON bytes, zlib when it helps."""

    @staticmethod
    def dumps(payload: Any) -> bytes:
        data = _dumps(payload).encode("utf-8")
        if len(data) > COMPRESS_OVER:
            packed = _ZLIB + zlib.compress(data, 6)
            if len(packed) < len(data):
                return packed
        return data

    @staticmethod
    def loads(data: bytes) -> Any:
        if data[:1] == _ZLIB:
            inflater = zlib.decompressobj()
            try:
                data = inflater.decompress(data[1:], _INFLATE_LIMIT)
            except zlib.error as exc:
                raise ValueError(f"bad zlib data: {exc}") from exc
            if inflater.unconsumed_tail:
                raise ValueError("compressed payload too large")
        return _loads(data.decode("utf-8"))


class _Signer(SignedSerializer):
    """WebOb's signer, handing :func:`hmac.new` the hash's *name*: the stdlib then
    takes OpenSSL's one-call HMAC instead of its pure-Python construction (WebOb
    passes a factory function). Same bytes, a third cheaper."""

    def __init__(self, secret: bytes, salt: str, serializer: _JSON) -> None:
        super().__init__(secret, salt, "sha256", serializer=serializer)
        self.digestmod = "sha256"


class Codec:
    """Signs payloads with *secret* and verifies them with it or any of
    *fallbacks*. *salt* separates uses of one secret (cookies from store records),
    so a value made for one is refused by the other."""

    __slots__ = ("_signers",)

    def __init__(self, secret: bytes, fallbacks: tuple[bytes, ...], salt: str) -> None:
        self._signers = tuple(
            _Signer(key, salt, _JSON()) for key in (secret, *fallbacks)
        )

    def dumps(self, payload: Any) -> str:
        """The signed, URL-safe form of *payload* (always signed with the current
        secret)."""
        return self._signers[0].dumps(payload).decode("ascii")

    def loads(self, value: str) -> tuple[Any, bool] | None:
        """``(payload, signed_with_current_secret)``, or None when *value* is not
        something we signed (tampered, truncated, another key, not base64)."""
        try:
            raw = value.encode("latin-1")  # WSGI environ strings are latin-1
        except UnicodeEncodeError:  # not a WSGI string, so not a cookie we set
            return None
        for index, signer in enumerate(self._signers):
            try:
                return signer.loads(raw), index == 0
            except (ValueError, TypeError, UnicodeError):  # not ours under this key
                continue
        return None
