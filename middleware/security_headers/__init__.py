"""Security headers: :class:`SecurityHeaders` adds what browsers read to defend a
site (``X-Content-Type-Options``, ``Referrer-Policy``, ``X-Frame-Options``,
``Cross-Origin-Opener-Policy``, HSTS on https, and the policies you write), never
over a header the app set itself, and can redirect http to https.
"""

from __future__ import annotations

from .middleware import NONCE_KEY, REFERRER_POLICIES, SecurityHeaders
from .policies import NONCE

__all__ = ["NONCE", "NONCE_KEY", "REFERRER_POLICIES", "SecurityHeaders"]
