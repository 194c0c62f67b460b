"""The cookie policy of a :class:`~middleware.session.Session`: how a cookie value is
verified (signature, shape, lifetimes, the store), and how the ``Set-Cookie`` that
saves or deletes a session is written. Built once by the middleware from its checked
options; used by each request's :class:`~middleware.session.SessionData`."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from .codec import Codec
from .errors import SessionError
from .stores import Store

__all__ = ["INBOUND_LIMIT", "CookiePolicy", "valid_id", "valid_payload"]

log = logging.getLogger("middleware.session")

#: A request cookie longer than this is not even verified: a fresh session.
INBOUND_LIMIT = 4096
_PAST = "Thu, 01 Jan 1970 00:00:00 GMT"
# secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
_ID = re.compile(r"[A-Za-z0-9_-]{43}")
_check_json = json.JSONEncoder(allow_nan=False).encode


def valid_id(value: str) -> bool:
    """Whether *value* has the shape of a session id we issue (checked before any
    store lookup, so a hostile cookie never reaches the store)."""
    return _ID.fullmatch(value) is not None


def valid_payload(payload: Any) -> bool:
    """Whether a verified payload has the shape we sign (it always should)."""
    return (
        type(payload) is dict
        and type(payload.get("c")) is int
        and type(payload.get("t")) is int
        and type(payload.get("d")) is dict
    )


class CookiePolicy:
    """Verifies session cookies and writes ``Set-Cookie`` values, for one
    :class:`~middleware.session.Session` configuration (options already checked).

    :param attributes: the fixed cookie attributes, ``"; Path=/; HttpOnly; ..."``.
    :param secure: the ``Secure`` flag; None sets it on https requests.
    """

    def __init__(
        self,
        *,
        name: str,
        secret: bytes,
        fallback_secrets: tuple[bytes, ...],
        store: Store | None,
        max_age: int,
        idle_timeout: int | None,
        reissue_after: int | None,
        secure: bool | None,
        attributes: str,
    ) -> None:
        self.name = name
        self.store = store
        self.max_age = max_age
        self.idle_timeout = idle_timeout
        self.reissue_after = reissue_after
        self.secure = secure
        self.attributes = attributes
        self._cookie_codec = Codec(
            secret, fallback_secrets, "middleware.session.cookie"
        )
        self._record_codec = Codec(
            secret, fallback_secrets, "middleware.session.record"
        )

    def open(self, value: str, now: float) -> tuple[dict[str, Any], bool] | None:
        """Verify one cookie value: ``(payload, signed_with_current_secret)``, or
        None (logged at debug) for anything we would not have issued."""
        if len(value) > INBOUND_LIMIT:
            return _refused("an oversized cookie", len(value))
        store = self.store
        if store is None:
            opened = self._cookie_codec.loads(value)
        else:
            if not valid_id(value):
                return _refused("a session id of the wrong format", len(value))
            record = store.load(value)
            if record is None:
                return _refused("an id unknown to the store", len(value))
            opened = self._record_codec.loads(record)
        if opened is None:
            return _refused("a cookie with a bad signature", len(value))
        payload, current = opened
        if not valid_payload(payload):
            return _refused("a signed payload of the wrong shape", len(value))
        if store is not None and payload.get("s") != value:
            return _refused("a record stored under another id", len(value))
        if now - payload["c"] >= self.max_age:
            return _refused("an expired session", len(value))
        if self.idle_timeout is not None and now - payload["t"] >= self.idle_timeout:
            return _refused("an idle-expired session", len(value))
        return payload, current

    def dump_cookie(self, payload: dict[str, Any]) -> str:
        """A signed-cookie session's value: *payload* signed."""
        return _dump(self._cookie_codec, payload)

    def dump_record(self, payload: dict[str, Any]) -> str:
        """A store record: *payload* signed (a store never holds unsigned data)."""
        return _dump(self._record_codec, payload)

    def lifetime(self, created: int, now: int) -> int:
        """Seconds the cookie (and the store record) should live from *now*."""
        remaining = created + self.max_age - now
        if self.idle_timeout is not None:
            remaining = min(remaining, self.idle_timeout)
        return max(remaining, 1)

    def set_cookie(self, value: str, max_age: int, https: bool) -> str:
        """The ``Set-Cookie`` value that saves a session."""
        secure = "; Secure" if self._secure(https) else ""
        return f"{self.name}={value}; Max-Age={max_age}{self.attributes}{secure}"

    def deletion(self, https: bool) -> str:
        """The ``Set-Cookie`` value that deletes the cookie: empty, ``Max-Age=0``
        and a past ``Expires`` (for clients with skewed clocks), with the same Path,
        Domain, Secure and SameSite."""
        secure = "; Secure" if self._secure(https) else ""
        return f"{self.name}=; Max-Age=0; Expires={_PAST}{self.attributes}{secure}"

    def _secure(self, https: bool) -> bool:
        return https if self.secure is None else self.secure


def _refused(reason: str, size: int) -> tuple[dict[str, Any], bool] | None:
    log.debug(
        "session cookie refused, a fresh session instead: %s (%d bytes)", reason, size
    )
    return None


def _dump(codec: Codec, payload: dict[str, Any]) -> str:
    """*payload* signed by *codec*; a value that is not JSON (one changed in place
    since it was set) is an error naming its key."""
    try:
        return codec.dumps(payload)
    except (TypeError, ValueError):
        for key, value in payload["d"].items():
            try:
                _check_json(value)
            except (TypeError, ValueError) as exc:
                raise SessionError(
                    f"session[{key!r}] cannot be saved as JSON ({exc})"
                ) from None
        raise
