"""Password hashes as Apache's ``htpasswd`` writes them: verification and creation.

Formats (recognised by their prefix):

- ``$2y$``, ``$2a$``, ``$2b$``: bcrypt, through the ``bcrypt`` package
  (``pip install 'wsgi-middleware-toolkit[bcrypt]'``). Passwords over 72 bytes are
  refused (bcrypt would raise, or silently cut them).
- ``$apr1$``: Apache's MD5-crypt; ``$5$`` and ``$6$``: SHA-256-crypt and
  SHA-512-crypt (``htpasswd -2`` / ``-5``); ``{SHA}``: unsalted SHA-1. These are
  implemented here with hashlib, following Apache's apr_md5.c and Ulrich Drepper's
  SHA-crypt specification, because the stdlib ``crypt`` module is gone in Python
  3.13 and passlib no longer imports with bcrypt 5.
- Plain text, only when the caller allows it.

Every comparison is constant-time on bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "BCRYPT_MAX_BYTES",
    "UnsupportedHash",
    "hash_cost",
    "hash_kind",
    "load_bcrypt",
    "make_bcrypt",
    "verify",
]

#: bcrypt only reads the first 72 bytes of a password; longer ones are refused.
BCRYPT_MAX_BYTES = 72
_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BCRYPT = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
_APR1 = re.compile(r"\$apr1\$([^$]{0,8})\$[./0-9A-Za-z]{22}")
_SHA_CRYPT = re.compile(
    r"\$([56])\$(?:rounds=(\d{1,9})\$)?([^$:\n]{0,16})"
    r"\$([./0-9A-Za-z]{43}|[./0-9A-Za-z]{86})"
)
_SHA1 = re.compile(r"\{SHA\}[A-Za-z0-9+/]{27}=")


class UnsupportedHash(ValueError):
    """A stored hash in no format we verify (DES crypt, a typo, plain text when
    plain text is not allowed)."""


def hash_kind(stored: str, allow_plaintext: bool = False) -> str:
    """The format of *stored*: ``bcrypt``, ``apr1``, ``sha256-crypt``,
    ``sha512-crypt``, ``sha1`` or ``plaintext``.

    :raises UnsupportedHash: the hash is malformed or of an unsupported format.
    """
    if stored.startswith("$2"):
        if _BCRYPT.fullmatch(stored):
            return "bcrypt"
        raise UnsupportedHash("a malformed bcrypt hash")
    if stored.startswith("$apr1$"):
        if _APR1.fullmatch(stored):
            return "apr1"
        raise UnsupportedHash("a malformed $apr1$ hash")
    if stored.startswith(("$5$", "$6$")):
        match = _SHA_CRYPT.fullmatch(stored)
        if match and len(match[4]) == (43 if match[1] == "5" else 86):
            return "sha256-crypt" if match[1] == "5" else "sha512-crypt"
        raise UnsupportedHash("a malformed SHA-crypt hash")
    if stored.startswith("{SHA}"):
        if _SHA1.fullmatch(stored):
            return "sha1"
        raise UnsupportedHash("a malformed {SHA} hash")
    if stored.startswith("$"):
        raise UnsupportedHash(f"an unsupported hash format ({stored.split('$')[1]!r})")
    if allow_plaintext:
        return "plaintext"
    if len(stored) == 13:
        raise UnsupportedHash(
            "DES crypt is not supported (8-character passwords); "
            "re-create the entry with htpasswd -B"
        )
    raise UnsupportedHash(
        "not a recognised hash; plain-text passwords need allow_plaintext=True"
    )


def hash_cost(stored: str, allow_plaintext: bool = False) -> float:
    """About how long checking a password against *stored* takes, in
    microseconds (measured here with the fixtures of tests/test_auth.py: bcrypt
    75 us x 2**cost; this module's pure-Python SHA-crypt, 0.53 and 0.7 us a
    round; $apr1$, 600 us). Only the order matters: an unknown user is checked
    against the costliest entry."""
    kind = hash_kind(stored, allow_plaintext)
    if kind == "bcrypt":
        return 75.0 * 2.0 ** int(stored[4:6])
    if kind in ("sha256-crypt", "sha512-crypt"):
        match = _SHA_CRYPT.fullmatch(stored)
        rounds = 5000 if match is None or match[2] is None else int(match[2])
        return (0.53 if kind == "sha256-crypt" else 0.7) * max(rounds, 1000)
    if kind == "apr1":
        return 600.0
    return 1.0


def verify(password: bytes, stored: str, allow_plaintext: bool = False) -> bool:
    """Whether *password* matches the *stored* hash (a known format: check it
    with :func:`hash_kind` first)."""
    kind = hash_kind(stored, allow_plaintext)
    expected = stored.encode("utf-8")
    if kind == "bcrypt":
        if len(password) > BCRYPT_MAX_BYTES:
            return False
        bcrypt = load_bcrypt()
        return bool(bcrypt.checkpw(password, expected))
    if kind == "apr1":
        computed = _apr1(password, stored.split("$")[2].encode("utf-8"))
    elif kind in ("sha256-crypt", "sha512-crypt"):
        computed = _sha_crypt(password, stored)
    elif kind == "sha1":
        computed = "{SHA}" + base64.b64encode(hashlib.sha1(password).digest()).decode()
    else:
        return hmac.compare_digest(password, expected)
    return hmac.compare_digest(computed.encode("utf-8"), expected)


def make_bcrypt(password: bytes, rounds: int = 12) -> str:
    """A new bcrypt hash (``$2b$``, which Apache 2.4 reads) of *password*."""
    if len(password) > BCRYPT_MAX_BYTES:
        raise ValueError(f"bcrypt passwords are at most {BCRYPT_MAX_BYTES} bytes")
    bcrypt = load_bcrypt()
    return str(bcrypt.hashpw(password, bcrypt.gensalt(rounds)).decode("ascii"))


def load_bcrypt() -> Any:
    try:
        import bcrypt
    except ImportError as exc:
        raise ImportError(
            "bcrypt hashes need the bcrypt package: "
            "pip install 'wsgi-middleware-toolkit[bcrypt]'"
        ) from exc
    return bcrypt


def _encode(
    data: bytes, groups: list[tuple[int, int, int]], tail: tuple[int, int]
) -> str:
    """crypt's base64: each group of three bytes (most significant first) as four
    characters, least significant six bits first; *tail* is (byte count, chars)."""
    out = []
    for group in groups:
        value = (data[group[0]] << 16) | (data[group[1]] << 8) | data[group[2]]
        for _ in range(4):
            out.append(_ITOA64[value & 0x3F])
            value >>= 6
    indexes, chars = tail
    value = 0
    for index in _TAILS[indexes]:
        value = (value << 8) | data[index]
    for _ in range(chars):
        out.append(_ITOA64[value & 0x3F])
        value >>= 6
    return "".join(out)


_TAILS = {
    0: (11,),  # apr1: byte 11, two characters
    1: (31, 30),  # SHA-256: bytes 31 and 30, three characters
    2: (63,),  # SHA-512: byte 63, two characters
}
_APR1_GROUPS = [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)]
_SHA256_GROUPS = [
    (0, 10, 20), (21, 1, 11), (12, 22, 2), (3, 13, 23), (24, 4, 14),
    (15, 25, 5), (6, 16, 26), (27, 7, 17), (18, 28, 8), (9, 19, 29),
]  # fmt: skip
_SHA512_GROUPS = [
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26),
    (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32),
    (12, 33, 54), (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16),
    (59, 17, 38), (18, 39, 60), (40, 61, 19), (62, 20, 41),
]  # fmt: skip


def _stretch(
    digest: Callable[[bytes], Any],
    rounds: int,
    result: bytes,
    password: bytes,
    salt: bytes,
) -> bytes:
    """The rounds MD5-crypt and SHA-crypt share: each hashes the last result and
    the password (alternating order), with the salt unless the round is a multiple
    of 3 and the password again unless it is a multiple of 7."""
    for round_ in range(rounds):
        step = digest(password if round_ & 1 else result)
        if round_ % 3:
            step.update(salt)
        if round_ % 7:
            step.update(password)
        step.update(result if round_ & 1 else password)
        result = step.digest()
    return result


def _apr1(password: bytes, salt: bytes) -> str:
    """Apache's ``$apr1$`` MD5-crypt of *password* with *salt* (at most 8 bytes)."""
    salt = salt[:8]
    final = hashlib.md5(password + salt + password).digest()
    context = hashlib.md5(password + b"$apr1$" + salt)
    for length in range(len(password), 0, -16):
        context.update(final[: min(16, length)])
    length = len(password)
    while length:
        context.update(b"\0" if length & 1 else password[:1])
        length >>= 1
    final = _stretch(hashlib.md5, 1000, context.digest(), password, salt)
    encoded = _encode(final, _APR1_GROUPS, (0, 2))
    return f"$apr1${salt.decode('utf-8')}${encoded}"


def _sha_crypt(password: bytes, stored: str) -> str:
    """SHA-256-crypt or SHA-512-crypt of *password* with the parameters of
    *stored* (Drepper's specification; 5000 rounds unless given)."""
    match = _SHA_CRYPT.fullmatch(stored)
    if match is None:
        raise UnsupportedHash("a malformed SHA-crypt hash")
    variant, rounds_text, salt_text = match[1], match[2], match[3]
    digest = hashlib.sha256 if variant == "5" else hashlib.sha512
    size = 32 if variant == "5" else 64
    rounds = 5000 if rounds_text is None else max(int(rounds_text), 1000)
    salt = salt_text.encode("utf-8")[:16]

    alternate = digest(password + salt + password).digest()
    context = digest(password + salt)
    length = len(password)
    context.update(alternate * (length // size) + alternate[: length % size])
    while length:
        context.update(alternate if length & 1 else password)
        length >>= 1
    a = context.digest()
    dp = digest(password * len(password)).digest()
    p = dp * (len(password) // size) + dp[: len(password) % size]
    ds = digest(salt * (16 + a[0])).digest()
    s = ds * (len(salt) // size) + ds[: len(salt) % size]
    c = _stretch(digest, rounds, a, p, s)
    if variant == "5":
        encoded = _encode(c, _SHA256_GROUPS, (1, 3))
    else:
        encoded = _encode(c, _SHA512_GROUPS, (2, 2))
    prefix = f"${variant}$" + ("" if rounds_text is None else f"rounds={rounds_text}$")
    return f"{prefix}{salt_text}${encoded}"
