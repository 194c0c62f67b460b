"""A plain WSGI app behind BasicAuth, reading examples/demo.htpasswd (user ``demo``,
password ``demo-password``, bcrypt), with ``/healthz`` open to load balancers.

Run: ``.venv/bin/pip install -e '.[server,bcrypt]'``, then
``.venv/bin/python examples/basic_auth.py [PORT]``,
then ``curl -u demo:demo-password http://127.0.0.1:8080/``. Add users with
``.venv/bin/python -m middleware htpasswd examples/demo.htpasswd NAME``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from middleware import compose
from middleware.auth import BasicAuth
from middleware.wsgi import StartResponse, WSGIEnvironment

HTPASSWD = Path(__file__).with_name("demo.htpasswd")


def hello(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    user = environ.get("REMOTE_USER") or "load balancer"
    body = f"Hello, {user}.\n".encode()
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


app = compose(hello, BasicAuth(htpasswd=HTPASSWD, realm="Demo", exempt=["/healthz"]))

if __name__ == "__main__":
    import waitress

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    waitress.serve(app, host="127.0.0.1", port=port)
