"""SecurityHeaders against Django's SecurityMiddleware (with its
XFrameOptionsMiddleware, for the same four headers), in one process.

Each is measured in its own framework, the same way: Django's pair as a
middleware chain called with a Django request (built from the same environ) in
front of a view that makes a fresh response, minus that chain without them; ours
as a WSGI layer over a plain app through a minimal server loop, minus the plain
app. So each figure is the middleware's own cost per request. Both send
X-Content-Type-Options, Referrer-Policy, Cross-Origin-Opener-Policy,
X-Frame-Options, and HSTS on the https request (checked before timing).
Werkzeug's ProxyFix on the plain app (X-Forwarded-For and -Proto) is measured in
the same run as the yardstick.

Target (issue 19): at most ProxyFix's cost per request.

Run: ``pip install -e '.[bench]' && python benchmarks/bench_security_headers.py``
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

import django
import harness
from django.conf import settings
from harness import medians_us

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["shop.example"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="bench-only-" + "x" * 40,
    MIDDLEWARE=[],
    SECURE_HSTS_SECONDS=300,
    SECURE_CONTENT_TYPE_NOSNIFF=True,
    SECURE_REFERRER_POLICY="strict-origin-when-cross-origin",
    SECURE_CROSS_ORIGIN_OPENER_POLICY="same-origin",
    X_FRAME_OPTIONS="DENY",
    USE_TZ=True,
)
django.setup()

from django.core.handlers.wsgi import WSGIRequest  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.middleware.clickjacking import XFrameOptionsMiddleware  # noqa: E402
from django.middleware.security import SecurityMiddleware  # noqa: E402
from werkzeug.middleware.proxy_fix import ProxyFix  # noqa: E402

from middleware import SecurityHeaders  # noqa: E402
from middleware.testing import run  # noqa: E402


def plain(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def environ(scheme: str) -> dict[str, Any]:
    import io

    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/orders/42",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": "shop.example",
        "SERVER_PORT": "443" if scheme == "https" else "80",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "shop.example",
        "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.7",
        "HTTP_X_FORWARDED_PROTO": "https",
        "wsgi.url_scheme": scheme,
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--number", type=int, default=10000)
    args = parser.parse_args()
    repeat, number = args.repeat, args.number

    def fresh(request: HttpRequest) -> HttpResponse:
        return HttpResponse(b"ok", content_type="text/plain")

    secured = SecurityMiddleware(XFrameOptionsMiddleware(fresh))
    ours = SecurityHeaders(hsts_seconds=300)(plain)
    proxy_fix = ProxyFix(plain, x_for=1, x_proto=1)

    wanted = {
        "x-content-type-options", "referrer-policy", "x-frame-options",
        "cross-origin-opener-policy",
    }  # fmt: skip
    for scheme in ("http", "https"):
        django_names = {name.lower() for name in secured(request(scheme)).headers}
        ours_names = {name.lower() for name, _ in run(ours, environ(scheme)).headers}
        expected = wanted | (
            {"strict-transport-security"} if scheme == "https" else set()
        )
        assert expected <= django_names and expected <= ours_names, scheme

    runs: dict[str, Any] = {
        "plain": lambda: harness.serve(plain, environ("http")),
        "ProxyFix": lambda: harness.serve(proxy_fix, environ("http")),
    }
    for scheme in ("http", "https"):
        runs[f"{scheme}|view"] = lambda s=scheme: fresh(request(s))
        runs[f"{scheme}|django"] = lambda s=scheme: secured(request(s))
        runs[f"{scheme}|plain"] = lambda s=scheme: harness.serve(plain, environ(s))
        runs[f"{scheme}|ours"] = lambda s=scheme: harness.serve(ours, environ(s))
    times = medians_us(runs, repeat, number)
    yardstick = times["ProxyFix"] - times["plain"]
    print(f"us per request over the bare app or view (median of {repeat} x {number})")
    print(f"Werkzeug ProxyFix: {yardstick:.2f}")
    print(
        f"{'request':<8} {'Django':>8} {'ours':>7} {'ours/Django':>12} "
        f"{'ours/ProxyFix':>14}"
    )
    for scheme in ("http", "https"):
        theirs = times[f"{scheme}|django"] - times[f"{scheme}|view"]
        mine = times[f"{scheme}|ours"] - times[f"{scheme}|plain"]
        print(
            f"{scheme:<8} {theirs:>8.2f} {mine:>7.2f} {mine / theirs:>11.2f}x "
            f"{mine / yardstick:>13.2f}x"
        )


def request(scheme: str) -> HttpRequest:
    """A Django request for the same environ, as its WSGI handler builds it."""
    return WSGIRequest(environ(scheme))


if __name__ == "__main__":
    main()
