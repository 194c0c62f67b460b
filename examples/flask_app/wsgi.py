"""The Flask app of ``app.py``, wrapped with ``compose()``: Flask's own
``app.wsgi_app`` is replaced, so ``flask run``, gunicorn (``gunicorn --bind
127.0.0.1:8080 wsgi:app``, with the ``gunicorn`` extra) and
the test client all get the stack.

Run, from the repository, with ``SESSION_SECRET`` exported as the README shows:
``.venv/bin/pip install -e '.[server,bcrypt]' flask && cd examples/flask_app &&
../../.venv/bin/python wsgi.py``, then open http://127.0.0.1:8080/ as demo /
demo-password. docs/flask.rst shows this file's stack as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

from app import app

from middleware import (
    AccessLog,
    BasicAuth,
    ErrorCatcher,
    Gzip,
    Session,
    StaticFiles,
    compose,
)

EXAMPLES = Path(__file__).resolve().parent.parent

app.wsgi_app = compose(  # type: ignore[method-assign,assignment]
    app.wsgi_app,
    AccessLog(),
    ErrorCatcher(),
    Gzip(min_size=200),
    BasicAuth(
        htpasswd=EXAMPLES / "demo.htpasswd", realm="Flask demo", exempt=["/healthz"]
    ),
    # The secret comes from the environment, never from the code: a committed
    # secret lets anyone who reads it forge sessions. secure=False: the demo is
    # served over http; leave it True behind https.
    Session(
        secret=os.environ["SESSION_SECRET"], cookie_name="demo_session", secure=False
    ),
    StaticFiles(EXAMPLES / "public"),
)

if __name__ == "__main__":
    import logging

    import waitress

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    waitress.serve(app, host="127.0.0.1", port=8080)
