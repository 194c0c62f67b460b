"""HTTP Basic authentication: :class:`BasicAuth`, with htpasswd files, safe parsing,
a cache of verified credentials and throttling of failures.

A request passes to the app only with credentials that verify; anything else is
answered here (401, or 429 while throttled), never with a 500. On success
``REMOTE_USER`` (the user name) and ``AUTH_TYPE`` (``Basic``) are set, always
overwriting what was there: an identity is never taken from upstream.
"""

from __future__ import annotations

from . import credentials
from .htpasswd import read_htpasswd
from .middleware import BasicAuth

__all__ = ["BasicAuth", "HEADER_LIMIT", "read_htpasswd"]

# Bound here, not imported, so that autodoc finds its doc comment in this file.
#: Authorization headers longer than this are refused unread (a 401).
HEADER_LIMIT = credentials.HEADER_LIMIT
