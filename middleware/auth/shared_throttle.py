"""The throttle of failed logins in Redis: :class:`RedisFailures`, the same
interface as :class:`~middleware.auth.throttle.Failures`, shared by every worker
and machine using that Redis.

Each key is one Redis counter expiring with its window (Redis's clock, so the
workers' clocks need not agree). Every check-and-count is one Lua script, atomic in
Redis: concurrent attempts from eight processes cannot all pass a check made
before any of them counted.
"""

from __future__ import annotations

import logging
import math
from typing import Any

__all__ = ["ThrottleUnavailable", "RedisFailures"]

log = logging.getLogger("middleware.auth")

#: Seconds to connect and for each reply, as the session and rate-limit stores.
TIMEOUT = 0.5

# KEYS: the throttle keys; ARGV: maximum, window (ms). 0 when the attempt may
# run (then counted against every key), else the milliseconds left to wait.
_ATTEMPT = """
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[1]) then
    local left = redis.call('PTTL', key)
    if left > 0 then return left end
  end
end
for i, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, ARGV[2]) end
end
return 0
"""
_FORGIVE = """
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('DECR', KEYS[1]) <= 0 then
  redis.call('DEL', KEYS[1])
end
return 0
"""
_ADD = """
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 0
"""
_RETRY = """
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then return 0 end
local left = redis.call('PTTL', KEYS[1])
if left > 0 then return left end
return 0
"""


class ThrottleUnavailable(Exception):
    """The shared throttle could not be asked (``on_store_error="deny"``)."""


class RedisFailures:
    """Failed attempts per key in Redis, in fixed windows of *window* seconds.

    :param store: a ``redis://`` URL (timeouts of 0.5 s) or a ``redis.Redis``.
    :param deny: when Redis fails, raise :class:`ThrottleUnavailable` from the
        checks (the request gets a 503); else let the attempt be checked unthrottled.
    """

    #: Anyone may be throttled: the counts live elsewhere, so no shortcut.
    anyone = True

    def __init__(
        self, window: float, store: Any, deny: bool, prefix: str = "middleware.auth:"
    ) -> None:
        import redis

        self.window = window
        self._window_ms = max(int(window * 1000), 1)
        self.client = (
            redis.Redis.from_url(
                store, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
            )
            if isinstance(store, str)
            else store
        )
        self.deny = deny
        self.prefix = prefix
        self._attempt = self.client.register_script(_ATTEMPT)
        self._forgive = self.client.register_script(_FORGIVE)
        self._add = self.client.register_script(_ADD)
        self._retry = self.client.register_script(_RETRY)
        self._name = (
            store.split("@")[-1] if isinstance(store, str) else "a redis client"
        )

    def _run(self, script: Any, keys: list[str], args: list[Any], refuse: bool) -> int:
        try:
            return int(script(keys=[self.prefix + key for key in keys], args=args))
        except Exception as exc:  # redis-py's errors, a timeout, a refused script
            log.error(
                "BasicAuth: the throttle store %s failed (%s: %s); %s",
                self._name,
                type(exc).__name__,
                exc,
                "answered 503" if self.deny and refuse else "not throttled",
            )
            if self.deny and refuse:
                raise ThrottleUnavailable(str(exc)) from exc
            return 0

    def add(self, key: str, now: float) -> None:
        self._run(self._add, [key], [self._window_ms], refuse=False)

    def attempt(self, keys: tuple[str, ...], now: float, maximum: int) -> int:
        """0 when the check may run (counted against every key, atomically), else
        the whole seconds to wait."""
        left = self._run(self._attempt, list(keys), [maximum, self._window_ms], True)
        return math.ceil(left / 1000) if left else 0

    def forgive(self, key: str, since: float) -> None:
        """Take back one attempt of *key*: it succeeded. From the window there is:
        if the attempt's window ended during the hash check, one count of the next
        is taken (one more guess for that address, once)."""
        self._run(self._forgive, [key], [], refuse=False)

    def retry_after(self, key: str, now: float, maximum: int) -> int:
        left = self._run(self._retry, [key], [maximum], refuse=True)
        return math.ceil(left / 1000) if left else 0

    def clear(self, key: str) -> None:
        try:
            self.client.delete(self.prefix + key)
        except Exception as exc:
            log.error("BasicAuth: the throttle store %s failed: %s", self._name, exc)
