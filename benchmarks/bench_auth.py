"""BasicAuth against Paste's AuthBasicHandler, in one process.

Paste is given a plain comparison function (its best case: no hashing at all).
Ours reads a bcrypt (cost 10) user, so a valid request is served from the cache of
verified credentials. Requests, each through a minimal server loop:

- **valid**: correct credentials. Target: no more than 1.5x Paste's cost.
- **missing**: no Authorization header, answered 401. Target: cheaper than Paste.
- **uncached**: one bcrypt check at cost 10, reported beside them.

Printed: microseconds over the bare app (medians). Compare ratios across machines.

Run: ``pip install -e '.[bench]' && python benchmarks/bench_auth.py``
"""

from __future__ import annotations

import argparse
import base64
import time
from collections.abc import Iterable
from typing import Any

import harness
from paste.auth.basic import AuthBasicHandler

from middleware.auth import BasicAuth
from middleware.auth.passwords import make_bcrypt, verify

HEADERS = [("Content-Type", "text/plain"), ("Content-Length", "2")]
PASSWORD = "correct horse battery staple"


def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [b"ok"]


def paste_check(environ: dict[str, Any], user: str, password: str) -> bool:
    return user == "alice" and password == PASSWORD


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    stored = make_bcrypt(PASSWORD.encode(), 10)
    ours = BasicAuth(users={"alice": stored}, realm="bench")(app)
    paste = AuthBasicHandler(app, "bench", paste_check)
    token = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    base = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),  # Paste asserts it is there
    }
    valid = {**base, "HTTP_AUTHORIZATION": f"Basic {token}"}

    def timed(wsgi: Any, environ: dict[str, Any]) -> float:
        return harness.median_us(
            lambda: harness.serve(wsgi, dict(environ)), args.repeat, args.number
        )

    harness.serve(ours, dict(valid))  # the first check fills the cache
    bare = timed(app, base)
    rows = {
        ("valid", "paste"): timed(paste, valid) - bare,
        ("valid", "ours"): timed(ours, valid) - bare,
        ("missing", "paste"): timed(paste, base) - bare,
        ("missing", "ours"): timed(ours, base) - bare,
    }
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        verify(PASSWORD.encode(), stored)
        runs.append((time.perf_counter() - start) * 1e3)
    runs.sort()
    print(f"bare app: {bare:.2f} us/request (median of {args.repeat} x {args.number})")
    print("us over the bare app (median)")
    for request in ("valid", "missing"):
        paste_cost, our_cost = rows[request, "paste"], rows[request, "ours"]
        print(
            f"  {request:8} paste {paste_cost:7.2f}   ours {our_cost:7.2f}   "
            f"ours / paste {our_cost / paste_cost:.2f}x"
        )
    print(f"uncached bcrypt (cost 10) check: {runs[2]:.1f} ms (median of 5)")


if __name__ == "__main__":
    main()
