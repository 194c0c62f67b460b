"""The stack a real nginx proxies to in tests/test_nginx.py (run by waitress or
gunicorn): ProxyHeaders outermost, trusting 127.0.0.1 (nginx), then AccessLog and
BasicAuth with a throttle of three failures.

``/whoami`` (exempt from auth) answers what the app saw, as JSON; every other path
needs ``demo`` / ``demo-password``. The access log goes to stderr, one
``access client=... status=...`` line per request.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from middleware import AccessLog, BasicAuth, ProxyHeaders, compose
from middleware.auth.passwords import make_bcrypt
from middleware.wsgi import StartResponse, WSGIEnvironment

logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")


def inner(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    seen: dict[str, Any] = {
        key: environ.get(key)
        for key in ("REMOTE_ADDR", "wsgi.url_scheme", "HTTP_HOST", "REMOTE_USER")
    }
    seen["original"] = environ.get("middleware.proxy.original")
    seen["forwarded_for"] = environ.get("HTTP_X_FORWARDED_FOR")
    body = json.dumps(seen).encode()
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


app = compose(
    inner,
    ProxyHeaders(1, trusted_from=["127.0.0.1"]),
    AccessLog("tests.proxyapp.access", format="access client={h} status={s}"),
    BasicAuth(
        users={"demo": make_bcrypt(b"demo-password", 4)},
        max_failures=3,
        exempt=["/whoami"],
    ),
)
