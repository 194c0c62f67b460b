"""Signed JSON: how a session payload becomes a cookie value or a store record and
back.

Signing is HMAC-SHA256 over the payload, compared in constant time, in the format of
WebOb's :class:`~webob.cookies.SignedSerializer` (:class:`Signer`), one per secret:
the current secret signs, the fallbacks only verify. The payload is compact JSON,
never pickle; a payload over :data:`COMPRESS_OVER` bytes is zlib-compressed when
that makes it smaller.

A value that verified is remembered (at most :data:`VERIFIED_SIZE` per codec, each
at most :data:`VERIFIED_LENGTH` characters, the memo emptied when full) with the
payload bytes it carries, so the next request with
the same cookie skips base64 and the HMAC; its JSON is decoded afresh every time, so
no request can change another's data. Only values that verified are kept: a forged
value costs the full check every time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import zlib
from collections.abc import Callable
from typing import Any

__all__ = ["COMPRESS_OVER", "VERIFIED_LENGTH", "VERIFIED_SIZE", "Codec"]

#: JSON payloads longer than this are tried with zlib; the smaller form is kept.
COMPRESS_OVER = 200
# zlib output starts with 0x78; JSON objects start with "{". The marker removes doubt.
_ZLIB = b"z"
# A compressed payload may expand to at most this much: a signed payload is ours,
# but a bound costs nothing and keeps a leaked secret from being a memory bomb too.
_INFLATE_LIMIT = 1 << 20
#: Verified values remembered per codec, and the longest one remembered (a cookie's
#: limit: larger store records are verified every time). At most about 7 MB.
VERIFIED_SIZE = 1024
VERIFIED_LENGTH = 4096

_SIGNATURE = 32  # bytes of an HMAC-SHA256
# What Signer.dumps makes: the URL-safe alphabet, no padding, no other character.
_CANONICAL = re.compile(rb"[A-Za-z0-9_-]+")
_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
# The decoder's own C scanner: no whitespace passes, no Python frames. (typeshed
# does not declare the attribute.)
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _loads(text: str) -> Any:
    """One JSON value that is the whole of *text* (payloads carry no whitespace)."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        raise ValueError("not JSON") from None
    if end != len(text):
        raise ValueError("not JSON: extra data")
    return value


class _JSON:
    """Compact JSON bytes, zlib-compressed when that helps: the payload format."""

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


class Signer:
    """HMAC-SHA256 signing in WebOb's :class:`~webob.cookies.SignedSerializer`
    format: URL-safe base64, unpadded, of the 32-byte signature followed by the
    payload, keyed with ``salt + secret``. A value either makes, the other verifies
    (a test proves it).

    Written here rather than used from WebOb because WebOb's public API hands
    :func:`hmac.new` a hash *factory*, which makes the stdlib build the HMAC in
    Python; :func:`hmac.digest` with the hash's name is OpenSSL's one call. Measured
    by ``benchmarks/bench_codec.py``: see the sessions page for the figure.
    """

    __slots__ = ("_key",)

    def __init__(self, secret: bytes, salt: str) -> None:
        self._key = salt.encode("utf-8") + secret

    def dumps(self, data: bytes) -> bytes:
        signature = hmac.digest(self._key, data, "sha256")
        return base64.urlsafe_b64encode(signature + data).rstrip(b"=")

    def loads(self, value: bytes) -> bytes:
        """The payload *value* carries; ValueError when it is not base64 or this
        key did not sign it (compared in constant time)."""
        if not _CANONICAL.fullmatch(value):
            # Only the exact bytes issued verify: the decoder would skip other
            # characters, and bits past the last whole byte, so junk inserted in a
            # cookie verified as the same session.
            raise ValueError("not unpadded URL-safe base64 as issued")
        try:
            raw = base64.urlsafe_b64decode(value + b"=" * (-len(value) % 4))
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"badly formed base64 data: {exc}") from None
        if base64.urlsafe_b64encode(raw).rstrip(b"=") != value:
            raise ValueError("not the canonical base64 of its bytes")
        if len(raw) < _SIGNATURE:
            raise ValueError("too short to carry a signature")
        data = raw[_SIGNATURE:]
        expected = hmac.digest(self._key, data, "sha256")
        if not hmac.compare_digest(raw[:_SIGNATURE], expected):
            raise ValueError("invalid signature")
        return data


class Codec:
    """Signs payloads with *secret* and verifies them with it or any of
    *fallbacks*. *salt* separates uses of one secret (cookies from store records),
    so a value made for one is refused by the other."""

    __slots__ = ("_signers", "_verified")

    def __init__(self, secret: bytes, fallbacks: tuple[bytes, ...], salt: str) -> None:
        self._signers = tuple(Signer(key, salt) for key in (secret, *fallbacks))
        # Value -> (its payload bytes, signed with the current secret); see above.
        self._verified: dict[str, tuple[bytes, bool]] = {}

    def dumps(self, payload: Any) -> str:
        """The signed, URL-safe form of *payload* (always signed with the current
        secret)."""
        return self._signers[0].dumps(_JSON.dumps(payload)).decode("ascii")

    def loads(self, value: str) -> tuple[Any, bool] | None:
        """``(payload, signed_with_current_secret)``, or None when *value* is not
        something we signed (tampered, truncated, another key, not base64)."""
        verified = self._verified.get(value)
        if verified is None:
            verified = self._verify(value)
            if verified is None:
                return None
        data, current = verified
        try:
            return _JSON.loads(data), current
        except (ValueError, UnicodeError):  # signed by us, yet not our format
            return None

    def _verify(self, value: str) -> tuple[bytes, bool] | None:
        """The payload bytes *value* carries and whether the current secret signed
        it, remembered; None if no secret did."""
        try:
            raw = value.encode("latin-1")  # WSGI environ strings are latin-1
        except UnicodeEncodeError:  # not a WSGI string, so not a cookie we set
            return None
        for index, signer in enumerate(self._signers):
            try:
                data: bytes = signer.loads(raw)
            except (ValueError, TypeError):  # not ours under this key
                continue
            result = (data, index == 0)
            if len(value) <= VERIFIED_LENGTH:
                verified = self._verified
                if len(verified) >= VERIFIED_SIZE:
                    verified.clear()
                verified[value] = result
            return result
        return None
