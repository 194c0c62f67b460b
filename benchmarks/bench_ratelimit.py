"""RateLimit against Flask-Limiter, on the same ``limits`` storage and strategy, in
one process; in memory and on a real redis-server (started here on a free port,
stopped by its PID, when ``redis-server`` is installed).

Each is measured in its own framework, the same way: Flask-Limiter as the cost it
adds to a Flask app (the app with its ``Limiter`` minus the app without), ours as
the cost our layer adds to a plain WSGI app; both through a minimal server loop,
both with the rate-limit headers on (Flask-Limiter's ``headers_enabled=True``).
The limit is high enough that no request is refused. Also printed: BasicAuth with
its throttle in that Redis, for a cached login (no Redis call) and for a refused
password (one script call), against the memory throttle.

Target (issue 20): per-request cost at most Flask-Limiter's for the same limit.

Run: ``pip install -e '.[bench,ratelimit,redis]'``, then
``python benchmarks/bench_ratelimit.py``
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import harness
from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from harness import medians_us

from middleware import BasicAuth, RateLimit

LIMIT = "1000000/minute"


def plain(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def flask_app(storage_uri: str | None) -> Any:
    app = Flask("bench")

    @app.route("/orders/42")
    def view() -> str:
        return "ok"

    if storage_uri is not None:
        Limiter(
            get_remote_address,
            app=app,
            default_limits=[LIMIT],
            storage_uri=storage_uri,
            strategy="moving-window",
            headers_enabled=True,
        )
    return app


def environ(authorization: str | None = None) -> dict[str, Any]:
    env = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/orders/42",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
    }
    if authorization is not None:
        env["HTTP_AUTHORIZATION"] = authorization
    return env


@contextmanager
def redis_server() -> Iterator[str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tempfile.mkdtemp()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", folder],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(15)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--number", type=int, default=3000)
    args = parser.parse_args()
    repeat, number = args.repeat, args.number

    with redis_server() as url:
        stores = [("memory", "memory://", "memory")]
        if url is not None:
            stores.append(("redis", url, url))
        bare_flask = flask_app(None)
        runs: dict[str, Any] = {
            "plain": lambda: harness.serve(plain, environ()),
            "flask": lambda: harness.serve(bare_flask, environ()),
        }
        for name, theirs_uri, ours_store in stores:
            limited_flask = flask_app(theirs_uri)
            ours = RateLimit(LIMIT, store=ours_store)(plain)
            runs[f"{name}|Flask-Limiter"] = lambda a=limited_flask: harness.serve(
                a, environ()
            )
            runs[f"{name}|ours"] = lambda a=ours: harness.serve(a, environ())
        times = medians_us(runs, repeat, number)
        print(f"us per request over the bare app (median of {repeat} x {number})")
        print(f"{'store':<8} {'Flask-Limiter':>14} {'ours':>7} {'ours/theirs':>12}")
        for name, _uri, _store in stores:
            theirs = times[f"{name}|Flask-Limiter"] - times["flask"]
            mine = times[f"{name}|ours"] - times["plain"]
            print(f"{name:<8} {theirs:>14.2f} {mine:>7.2f} {mine / theirs:>11.2f}x")
        strategy_runs: dict[str, Any] = {
            "plain": lambda: harness.serve(plain, environ())
        }
        strategies = ("fixed-window", "moving-window", "sliding-window-counter")
        for name, _uri, ours_store in stores:
            for strategy in strategies:
                layer = RateLimit("100/second", store=ours_store, strategy=strategy)
                limited = layer(plain)
                strategy_runs[f"{name}|{strategy}"] = lambda a=limited: harness.serve(
                    a, environ()
                )
        times = medians_us(strategy_runs, repeat, number)
        print()
        print(
            "ours by strategy, 100/second (most requests refused), us over the bare app"
        )
        print(f"{'store':<8} " + " ".join(f"{s:>22}" for s in strategies))
        for name, _uri, _store in stores:
            row = [times[f"{name}|{s}"] - times["plain"] for s in strategies]
            print(f"{name:<8} " + " ".join(f"{v:>22.2f}" for v in row))
        if url is None:
            print("(redis-server is not installed: the Redis rows were not run)")
            return

        from middleware.auth.passwords import make_bcrypt

        users = {"ann": make_bcrypt(b"pass", 4)}
        good = "Basic " + base64.b64encode(b"ann:pass").decode()
        bad = "Basic " + base64.b64encode(b"ann:wrong").decode()
        auth: dict[str, Any] = {}
        for store in ("memory", url):
            guard = BasicAuth(users=users, throttle_store=store, max_failures=10)
            sha = "{SHA}" + base64.b64encode(hashlib.sha1(b"pass").digest()).decode()
            counting = BasicAuth(
                users={"ann": sha}, throttle_store=store, max_failures=10**9
            )
            auth[store] = (guard(plain), counting(plain))
        runs = {"plain": lambda: harness.serve(plain, environ(good))}
        for store, (cached, counting) in auth.items():
            kind = "memory" if store == "memory" else "redis"
            harness.serve(cached, environ(good))  # verified once: cached after
            runs[f"{kind}|cached"] = lambda a=cached: harness.serve(a, environ(good))
            runs[f"{kind}|refused"] = lambda a=counting: harness.serve(a, environ(bad))
        times = medians_us(runs, repeat, number)
        print()
        print("BasicAuth's throttle, us over the bare app")
        print(f"{'throttle':<8} {'cached login':>13} {'refused password':>17}")
        for kind in ("memory", "redis"):
            print(
                f"{kind:<8} {times[f'{kind}|cached'] - times['plain']:>13.2f} "
                f"{times[f'{kind}|refused'] - times['plain']:>17.2f}"
            )


if __name__ == "__main__":
    main()
