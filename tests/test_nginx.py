"""A real nginx (Debian's nginx-light) on a free 127.0.0.1 port in front of waitress
and of gunicorn, with the usual ``proxy_set_header`` lines, serving
tests/proxyapp.py (ProxyHeaders outermost, trusting 127.0.0.1).

The client connects from 127.0.0.3 (any 127/8 address is this machine's) and
spoofs ``X-Forwarded-For``: the app, the access log and BasicAuth's throttle must
all see 127.0.0.3, the address nginx saw, never the spoofed one, and never
127.0.0.1 (nginx's own). A client reaching the server around nginx is not trusted:
its header is ignored. nginx and the servers are stopped by their PIDs.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .servers import free_port, running_command, wait_until

CLIENT = "127.0.0.3"
NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{backend};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
        }}
    }}
}}
"""


def nginx_binary() -> str | None:
    """nginx, or None (the test skips) when missing, except under CI (``CI=true``),
    where that is a failure."""
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
    )
    if found is None and os.environ.get("CI") == "true":
        pytest.fail("nginx is not installed (CI=true): apt-get install nginx-light")
    return found


def backend_command(kind: str, port: int) -> list[str]:
    app = "tests.proxyapp:app"
    if kind == "waitress":  # which by default deletes X-Forwarded-* (docs/proxy.rst)
        return [
            sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}",
            "--no-clear-untrusted-proxy-headers", app,
        ]  # fmt: skip
    return [
        sys.executable, "-m", "gunicorn", "--workers=1", "--graceful-timeout=2",
        f"--bind=127.0.0.1:{port}", app,
    ]  # fmt: skip


@pytest.fixture(params=["waitress", "gunicorn"])
def behind_nginx(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[int, int, Path]]:
    """(nginx's port, the server's port, the server's log) with both running."""
    nginx = nginx_binary()
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    kind = request.param
    backend = free_port()
    server_log = tmp_path / f"{kind}.log"
    with running_command(backend_command(kind, backend), backend, server_log):
        port = free_port()
        conf = tmp_path / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp_path, port=port, backend=backend))
        command = [nginx, "-p", str(tmp_path), "-e", str(tmp_path / "early.log")]
        with running_command([*command, "-c", str(conf)], port, tmp_path / "nginx.log"):
            yield port, backend, server_log


def ask(
    port: int, path: str, headers: dict[str, str]
) -> tuple[int, dict[str, Any] | None]:
    """GET *path* on 127.0.0.1:*port* from 127.0.0.3; (status, JSON body or None)."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=30, source_address=(CLIENT, 0)
    )
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    is_json = response.getheader("Content-Type") == "application/json"
    return response.status, json.loads(body) if is_json else None


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_a_spoofing_client_behind_nginx_is_seen_as_the_address_nginx_saw(
    behind_nginx: tuple[int, int, Path],
) -> None:
    port, backend, server_log = behind_nginx
    spoofed = {"X-Forwarded-For": "6.6.6.6"}

    # The app: the entry nginx wrote, not the client's, not nginx's own address.
    status, seen = ask(port, "/whoami", spoofed)
    assert status == 200 and seen is not None
    assert seen["forwarded_for"] == f"6.6.6.6, {CLIENT}"  # what nginx sent on
    assert seen["REMOTE_ADDR"] == CLIENT
    assert seen["original"]["REMOTE_ADDR"] == "127.0.0.1"  # nginx, as the server saw

    # BasicAuth's throttle: three wrong passwords, each with another spoofed
    # address, count against one client; the fourth attempt is refused unread.
    wrong = basic("demo", "wrong")
    statuses = [
        ask(
            port, "/private", {"X-Forwarded-For": f"6.6.6.{n}", "Authorization": wrong}
        )[0]
        for n in range(4)
    ]
    assert statuses == [401, 401, 401, 429]

    # Around nginx, straight to the server: 127.0.0.3 is not a trusted proxy, so
    # its X-Forwarded-For is ignored, and it is the same throttled client.
    status, seen = ask(backend, "/whoami", {"X-Forwarded-For": "6.6.6.6"})
    assert status == 200 and seen is not None and seen["REMOTE_ADDR"] == CLIENT
    status, _ = ask(
        backend, "/private", {"X-Forwarded-For": "6.6.6.9", "Authorization": wrong}
    )
    assert status == 429

    # The access log: every line names 127.0.0.3.
    def lines() -> list[str]:
        text = server_log.read_text(errors="replace")
        return [line for line in text.splitlines() if line.startswith("access ")]

    wait_until(lambda: len(lines()) >= 7, 10, lambda: server_log.read_text())
    assert {line.split()[1] for line in lines()} == {f"client={CLIENT}"}, lines()
