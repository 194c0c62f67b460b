"""Behind a reverse proxy: :class:`ProxyHeaders` gives the app the client's
address, scheme, host, port and path prefix from the headers the proxies in front
of it write (``X-Forwarded-*``, or RFC 7239 ``Forwarded``), by one rule: take the
entry the outermost trusted proxy wrote, never what the client wrote further left.

It is the package's one client-address rule: AccessLog, BasicAuth's throttle and
the app read ``REMOTE_ADDR`` after it.
"""

from __future__ import annotations

from .middleware import ORIGINAL_KEY, ProxyHeaders
from .values import HEADER_LIMIT

__all__ = ["HEADER_LIMIT", "ORIGINAL_KEY", "ProxyHeaders"]
