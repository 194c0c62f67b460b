"""The stack two gunicorn servers run in tests/test_rate_limit_servers.py, sharing
the Redis named by ``LIMIT_REDIS`` (and keys under ``LIMIT_PREFIX``):
RateLimit("5/minute") per address on ``/limited``; BasicAuth with
``max_failures=3`` and its throttle in that Redis on ``/private``."""

from __future__ import annotations

import os

from middleware import BasicAuth, RateLimit
from middleware.auth.passwords import make_bcrypt
from middleware.wsgi import StartResponse, WSGIEnvironment

REDIS = os.environ["LIMIT_REDIS"]
PREFIX = os.environ["LIMIT_PREFIX"]


def inner(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    body = f"pid {os.getpid()}".encode()
    start_response(
        "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    )
    return [body]


limited = RateLimit(
    "5/minute", store=REDIS, key=lambda environ: PREFIX + environ["REMOTE_ADDR"]
)(inner)
private = BasicAuth(
    users={"demo": make_bcrypt(b"demo-password", 4)},
    max_failures=3,
    throttle_store=REDIS,
)(inner)


def app(environ: WSGIEnvironment, start_response: StartResponse) -> object:
    if environ["PATH_INFO"].startswith("/private"):
        return private(environ, start_response)
    return limited(environ, start_response)
