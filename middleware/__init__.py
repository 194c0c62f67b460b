"""Composable WSGI middleware, correct to PEP 3333.

Every public name is re-exported here; the submodules are the implementation.
"""

from __future__ import annotations

from .access_log import AccessLog
from .auth import BasicAuth
from .compose import compose, describe
from .compress import Compress, Gzip
from .errors import ErrorCatcher
from .proxy import BodyFilter, Layer, Middleware, Outcome, Responder
from .proxy_headers import ProxyHeaders
from .rate_limit import RateLimit
from .security_headers import SecurityHeaders
from .session import Session, get_session
from .static import StaticFiles

__all__ = [
    "AccessLog",
    "BasicAuth",
    "BodyFilter",
    "Compress",
    "ErrorCatcher",
    "Gzip",
    "Layer",
    "Middleware",
    "Outcome",
    "ProxyHeaders",
    "RateLimit",
    "Responder",
    "SecurityHeaders",
    "Session",
    "StaticFiles",
    "compose",
    "describe",
    "get_session",
]
