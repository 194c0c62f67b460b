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

from ..backends import Breaker, redis_client, safe_url

__all__ = ["ThrottleUnavailable", "RedisFailures"]

log = logging.getLogger("middleware.auth")


# KEYS: the throttle keys; ARGV: maximum, window (ms). 0 when the attempt may
# run (then counted against every key), else the milliseconds left to wait.
# A key found without an expiry (PTTL -1: a PEXPIRE that never ran) is given
# one, so no count lives forever.
_ATTEMPT = """
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[1]) then
    local left = redis.call('PTTL', key)
    if left == -1 then
      redis.call('PEXPIRE', key, ARGV[2])
      left = tonumber(ARGV[2])
    end
    if left > 0 then return left end
  end
end
for i, key in ipairs(KEYS) do
  redis.call('INCR', key)
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[2]) end
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
redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
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
        if not 0 < window <= 10 * 365 * 86400:  # what PEXPIRE takes, and sense
            raise ValueError(
                "failure_window: expected at most 10 years with a Redis "
                f"throttle_store, got {window!r}"
            )
        self.window = window
        self._window_ms = max(int(window * 1000), 1)
        self.client = redis_client("throttle_store", store)
        self._breaker = Breaker()
        self.deny = deny
        self.prefix = prefix
        self._attempt = self.client.register_script(_ATTEMPT)
        self._forgive = self.client.register_script(_FORGIVE)
        self._add = self.client.register_script(_ADD)
        self._retry = self.client.register_script(_RETRY)
        self._name = safe_url(store) if isinstance(store, str) else "a redis client"

    def _run(self, script: Any, keys: list[str], args: list[Any], refuse: bool) -> int:
        """Run *script*; on a failure (or within a second of one, when Redis is
        not asked: one timeout a second, not one per call) raise
        :class:`ThrottleUnavailable` if *refuse* and ``deny``, else return 0."""
        if self._breaker.closed():
            if self.deny and refuse:
                raise ThrottleUnavailable("the throttle store failed just now")
            return 0
        try:
            result = int(script(keys=[self.prefix + key for key in keys], args=args))
        except Exception as exc:  # redis-py's errors, a timeout, a refused script
            self._breaker.failed()
            log.error(
                "BasicAuth: the throttle store %s failed (%s: %s); %s for a second",
                self._name,
                type(exc).__name__,
                exc,
                "answering 503" if self.deny else "not throttling",
            )
            if self.deny and refuse:
                raise ThrottleUnavailable(str(exc)) from exc
            return 0
        self._breaker.worked()
        return result

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
        if self._breaker.closed():
            return
        try:
            self.client.delete(self.prefix + key)
        except Exception as exc:
            self._breaker.failed()
            log.error("BasicAuth: the throttle store %s failed: %s", self._name, exc)
