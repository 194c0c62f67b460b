"""The full stack against the anchors' stack (``stacks.py``), in one process and
over HTTP (gunicorn and waitress).

1. **In one process**: a dynamic request (``GET /`` with valid credentials, an
   existing session the app reads, ``Accept-Encoding: gzip``) through a minimal
   server loop, around the same trivial app; the bare app, our stack and the
   anchors' stack measured in turns. Printed: microseconds per request (medians)
   and how many times cheaper ours is. Target: at least 5x.
2. **Over HTTP** (``--wrk``; needs ``wrk``, Debian's package): the same request
   to a trivial Flask app, bare, in our stack and in the anchors', each served on
   127.0.0.1 by gunicorn with 2 sync workers (a connection per request), then by
   waitress (4 threads, keep-alive connections), under a bounded load (``wrk -t1
   -c4``), in rounds that take the three in turns. Printed: requests per second
   (medians) and each stack's share of bare Flask's rate. Target: our stack keeps
   at least 85% under both.

Beside the in-process figures, the floor of the request layer by layer
(:func:`floors`): what each layer of ours must do at the least, timed in the same
turns; ``ours / floor`` is the cost of composition (target, issue 23: at most 1.5x).

Before timing, each stack's answer is checked: 200, gzip-encoded, the page, and a
401 without credentials.

Run: ``pip install -e '.[bench]' && python benchmarks/bench_stack.py [--wrk]``
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import http.client
import io
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import harness
import stacks

HERE = Path(__file__).resolve().parent
NAMES = ("bare", "ours", "anchors")
#: Also measured in one process, not for the targets: AccessLog's stream option.
STREAM = "ours, stream sink"


def environ(**extra: str) -> dict[str, Any]:
    """A request as a server makes it."""
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "bench/1.0",
        "HTTP_ACCEPT": "text/html",
        "HTTP_ACCEPT_ENCODING": "gzip, deflate",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        **extra,
    }


def call(app: harness.App, env: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
    """One request: the status, the headers (lower-case names; Set-Cookie's first
    value only) and the body."""
    seen: list[Any] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        seen[:] = [status, headers]
        return harness._write

    result = app(env, start_response)
    try:
        body = b"".join(result)
    finally:
        getattr(result, "close", lambda: None)()
    headers: dict[str, str] = {}
    for name, value in seen[1]:
        headers.setdefault(name.lower(), value)
    return seen[0], headers, body


def in_process(page: bytes, what: str, repeat: int, number: int) -> None:
    requests: dict[str, tuple[harness.App, dict[str, Any]]] = {}
    for name in (*NAMES, STREAM):
        app = stacks.stack(name, page)
        auth = {"HTTP_AUTHORIZATION": stacks.AUTHORIZATION}
        extra = dict(auth)
        if name != "bare":
            status, _, _ = call(app, environ(PATH_INFO="/"))
            assert status.startswith("401"), (name, status)
            _, headers, _ = call(app, environ(PATH_INFO="/login", **auth))
            cookie = headers["set-cookie"].split(";")[0]
            extra["HTTP_COOKIE"] = "_ga=GA1.2.3; " + cookie
        request = environ(**extra)
        status, headers, body = call(app, dict(request))
        assert status == "200 OK", (name, status)
        if headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        else:
            assert name == "bare" or len(page) < 500, (name, headers)
        assert body == page, name
        requests[name] = (app, request)
    runs = {
        name: functools.partial(_serve_copy, app, request)
        for name, (app, request) in requests.items()
    }
    layers = floors(page)
    runs.update({f"floor: {name}": run for name, run in layers.items()})
    costs = harness.medians_us(runs, repeat, number)
    print(
        f"in one process, {what}: GET / with credentials, a session read "
        f"(medians of {repeat} x {number}, measured in turns)"
    )
    for name in NAMES:
        print(f"  {name:8} {costs[name]:8.2f} us/request")
    ours = costs["ours"] - costs["bare"]
    anchors = costs["anchors"] - costs["bare"]
    print(f"  over the bare app: ours {ours:.2f} us, anchors {anchors:.2f} us")
    print(f"  anchors / ours (whole request): {costs['anchors'] / costs['ours']:.2f}x")
    print(f"  anchors / ours (over the bare app): {anchors / ours:.2f}x")
    print_floors(costs, list(layers))
    stream = costs[STREAM] - costs["bare"]
    print(
        f"  not for the targets: {STREAM} (AccessLog(stream=...), no logging): "
        f"{costs[STREAM]:.2f} us/request, {stream:.2f} over the bare app; "
        f"anchors / it {costs['anchors'] / costs[STREAM]:.2f}x"
    )


def floors(page: bytes) -> dict[str, Any]:
    """The least each layer of ours must do for the request, as calls to time:
    AccessLog one ``logger.info`` of a preformatted line (the same discarding,
    formatting handler), ErrorCatcher nothing on a normal request, Gzip zlib at
    the same level on the page (when Gzip compresses it: 1 KB, not 13 bytes),
    BasicAuth and Session one memo hit each (a dict lookup: both remember what they
    verified), StaticFiles one prefix test (the request is not for a file)."""
    log = harness.discarding_logger("bench.floor")
    line = '127.0.0.1 - alice [02/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 512'
    memo = {stacks.AUTHORIZATION: True}
    runs: dict[str, Any] = {"access log": functools.partial(log.info, line)}
    if len(page) >= 500:  # Gzip's min_size is 200; the small body is 13 bytes

        def deflate() -> bytes:
            coder = zlib.compressobj(6, zlib.DEFLATED, 31)
            return coder.compress(page) + coder.flush()

        runs["gzip"] = deflate
    runs["basic auth"] = functools.partial(memo.get, stacks.AUTHORIZATION)
    runs["session"] = functools.partial(memo.get, stacks.AUTHORIZATION)
    runs["static files"] = functools.partial("/".startswith, "/static/")
    return runs


def print_floors(costs: dict[str, float], layers: list[str]) -> None:
    floor = sum(costs[f"floor: {name}"] for name in layers)
    print("  the floor, layer by layer (what the stack must do for this request):")
    for name in layers:
        print(f"    {name:14} {costs[f'floor: {name}']:8.2f} us")
    print(f"    {'errors':14} {0:8.2f} us (nothing on a normal request)")
    ours = costs["ours"] - costs["bare"]
    print(f"    sum            {floor:8.2f} us; ours over the bare app {ours:.2f} us")
    print(f"  ours / floor: {ours / floor:.2f}x (composition: {ours - floor:.2f} us)")


def _serve_copy(app: harness.App, request: dict[str, Any]) -> int:
    return harness.serve(app, dict(request))


# -- over HTTP -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


#: How each server serves the Flask app of a stack (``{name}``) on ``{port}``:
#: gunicorn with 2 sync workers (a connection per request), waitress with its
#: default 4 threads in one process (keep-alive connections).
SERVERS = {
    "gunicorn": [
        sys.executable, "-m", "gunicorn", "-w", "2", "-k", "sync",
        "-b", "127.0.0.1:{port}", "--log-level", "warning",
        'stacks:flask_app("{name}")',
    ],
    "waitress": [
        sys.executable, "-c",
        "import logging, stacks, waitress; "
        "logging.getLogger('waitress').setLevel(logging.ERROR); "  # its queue notes
        "waitress.serve(stacks.flask_app('{name}'), "
        "listen='127.0.0.1:{port}', threads=4, _quiet=True)",
    ],
}  # fmt: skip


@contextlib.contextmanager
def serving(server: str, name: str) -> Iterator[int]:
    """*server* (a key of :data:`SERVERS`) serving the Flask app in stack *name*;
    stopped by its PID."""
    port = free_port()
    command = [part.format(port=port, name=name) for part in SERVERS[server]]
    proc = subprocess.Popen(command, cwd=HERE)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{server} for {name} exited: {proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{server} for {name} never listened") from None
                time.sleep(0.1)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def http_get(port: int, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


def headers_for(name: str, port: int) -> dict[str, str]:
    """The request's headers for stack *name*, its session cookie included, after
    checking the stack answers as it should."""
    headers = {"Authorization": stacks.AUTHORIZATION, "Accept-Encoding": "gzip"}
    if name != "bare":
        assert http_get(port, "/", {}).status == 401, name
        login = http_get(port, "/login", headers)
        cookie = (login.getheader("Set-Cookie") or "").split(";")[0]
        assert cookie, (name, login.getheaders())
        headers["Cookie"] = cookie
    response = http_get(port, "/", headers)
    assert response.status == 200, (name, response.status)
    if name != "bare":
        assert response.getheader("Content-Encoding") == "gzip", name
    return headers


def wrk(port: int, headers: dict[str, str], seconds: int) -> float:
    """Requests per second from ``wrk -t1 -c4``."""
    command = ["wrk", "-t1", "-c4", f"-d{seconds}s"]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    output = subprocess.run(
        [*command, f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} error responses:\n{output}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if found is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{output}")
    return float(found.group(1))


def under_server(server: str, rounds: int, seconds: int) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("--wrk needs wrk (apt-get install wrk)")
    rates: dict[str, list[float]] = {name: [] for name in NAMES}
    with contextlib.ExitStack() as servers:
        ports = {name: servers.enter_context(serving(server, name)) for name in NAMES}
        headers = {name: headers_for(name, port) for name, port in ports.items()}
        for name in NAMES:  # warm up: every worker's first request (bcrypt) is slow
            wrk(ports[name], headers[name], 2)
        for round_ in range(rounds):
            for i in range(len(NAMES)):
                name = NAMES[(round_ + i) % len(NAMES)]
                rates[name].append(wrk(ports[name], headers[name], seconds))
    how = {
        "gunicorn": "gunicorn (2 sync workers, a connection per request)",
        "waitress": "waitress (4 threads, keep-alive connections)",
    }[server]
    print(
        f"under {how}, Flask, wrk -t1 -c4, {rounds} rounds of {seconds} s each in "
        "turns; requests per second (median, then each round)"
    )
    bare = statistics.median(rates["bare"])
    for name in NAMES:
        median = statistics.median(rates[name])
        each = ", ".join(f"{rate:.0f}" for rate in rates[name])
        print(f"  {name:8} {median:8.0f}   {median / bare:6.1%} of bare   ({each})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument(
        "--wrk", action="store_true", help="also serve with gunicorn and waitress"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    in_process(stacks.PAGE, "a 1 KB page (both gzip it)", args.repeat, args.number)
    print()
    in_process(
        stacks.SMALL,
        f"a {len(stacks.SMALL)}-byte body (ours sends it as is, Paste gzips it)",
        args.repeat,
        args.number,
    )
    if args.wrk:
        for server in SERVERS:
            print()
            under_server(server, args.rounds, args.seconds)


if __name__ == "__main__":
    main()
