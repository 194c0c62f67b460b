"""Composable WSGI middleware, correct to PEP 3333.

Every public name is re-exported here; the submodules are the implementation.
"""

from __future__ import annotations

from .access_log import AccessLog
from .auth import BasicAuth
from .compose import compose, describe
from .core import Layer, Middleware, Observer, Transformer
from .errors import ErrorCatcher
from .gzip import Compress, Gzip
from .session import Session, get_session
from .static import StaticFiles

__all__ = [
    "AccessLog",
    "BasicAuth",
    "Compress",
    "ErrorCatcher",
    "Gzip",
    "Layer",
    "Middleware",
    "Observer",
    "Session",
    "StaticFiles",
    "Transformer",
    "compose",
    "describe",
    "get_session",
]
