"""Rate limits: :class:`RateLimit` counts requests per client address, user or
key of yours against limits such as ``"10/second; 1000/hour"``, in this process or
in Redis (shared by every worker and machine), with the ``limits`` library (the
engine of Flask-Limiter and slowapi) doing the counting.
"""

from __future__ import annotations

from ..backends import REDIS_TIMEOUT
from .middleware import STRATEGIES, RateLimit, address_key, user_key
from .storage import KEY_LIMIT

__all__ = [
    "KEY_LIMIT",
    "REDIS_TIMEOUT",
    "STRATEGIES",
    "RateLimit",
    "address_key",
    "user_key",
]
