"""ProxyHeaders against Werkzeug's ProxyFix, in one process, on the same requests.

Each request goes through a minimal server loop (call, iterate, close) to a
one-chunk app. Printed: the median microseconds each layer adds over the bare app,
and ours divided by ProxyFix's (below 1.00x: ours is cheaper). ProxyFix is given
the same headers to read (``x_for=1, x_proto=1``, both layers' defaults; all five,
``read=`` for ours, in the last rows);
it copies values unchecked, where ours checks each (an IP address, a scheme, a
host). ``trusted_from`` has no ProxyFix equivalent: shown for its own cost.

Target (issue 19): at most ProxyFix's cost per request.

Run: ``pip install -e '.[bench]' && python benchmarks/bench_proxy_headers.py``
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

import harness
from harness import App, medians_us
from werkzeug.middleware.proxy_fix import ProxyFix

from middleware import ProxyHeaders

HEADERS = [("Content-Type", "text/plain"), ("Content-Length", "2")]


def ok(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [b"ok"]


BASE = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "PATH_INFO": "/orders/42",
    "QUERY_STRING": "",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8000",
    "REMOTE_ADDR": "127.0.0.1",
    "HTTP_HOST": "127.0.0.1:8000",
    "wsgi.url_scheme": "http",
}
NGINX = {
    "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.7",
    "HTTP_X_FORWARDED_PROTO": "https",
}
ALL_FIVE = {
    **NGINX,
    "HTTP_X_FORWARDED_HOST": "shop.example",
    "HTTP_X_FORWARDED_PORT": "443",
    "HTTP_X_FORWARDED_PREFIX": "/shop",
}
IPV6 = {"HTTP_X_FORWARDED_FOR": "2001:db8::7", "HTTP_X_FORWARDED_PROTO": "https"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    repeat, number = args.repeat, args.number

    # (case, request headers, ProxyFix, ours)
    cases: list[tuple[str, dict[str, str], App | None, App]] = [
        ("no headers", {}, ProxyFix(ok, x_for=1, x_proto=1), ProxyHeaders(1)(ok)),
        ("For + Proto (nginx)", NGINX, ProxyFix(ok, x_for=1, x_proto=1),
         ProxyHeaders(1)(ok)),
        ("For + Proto, IPv6", IPV6, ProxyFix(ok, x_for=1, x_proto=1),
         ProxyHeaders(1)(ok)),
        ("all five headers", ALL_FIVE,
         ProxyFix(ok, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1),
         ProxyHeaders(1, read=("for", "proto", "host", "port", "prefix"))(ok)),
        ("For + Proto, trusted_from", NGINX, None,
         ProxyHeaders(1, trusted_from=["127.0.0.1", "10.0.0.0/8"])(ok)),
    ]  # fmt: skip
    runs: dict[str, Any] = {}
    for name, headers, theirs, ours in cases:
        environ = {**BASE, **headers}
        runs[f"{name}|bare"] = lambda e=environ: harness.serve(ok, dict(e))
        if theirs is not None:
            runs[f"{name}|ProxyFix"] = lambda a=theirs, e=environ: harness.serve(
                a, dict(e)
            )
        runs[f"{name}|ours"] = lambda a=ours, e=environ: harness.serve(a, dict(e))
    times = medians_us(runs, repeat, number)
    print(f"us over the bare app (median of {repeat} x {number})")
    print(f"{'case':<28} {'ProxyFix':>9} {'ours':>7} {'ours/ProxyFix':>14}")
    for name, _headers, theirs, _ours in cases:
        bare = times[f"{name}|bare"]
        ours_us = times[f"{name}|ours"] - bare
        if theirs is None:
            print(f"{name:<28} {'-':>9} {ours_us:>7.2f} {'-':>14}")
            continue
        theirs_us = times[f"{name}|ProxyFix"] - bare
        print(
            f"{name:<28} {theirs_us:>9.2f} {ours_us:>7.2f} "
            f"{ours_us / theirs_us:>13.2f}x"
        )


if __name__ == "__main__":
    main()
