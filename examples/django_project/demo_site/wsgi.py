"""Django's WSGI application, wrapped with ``compose()``.

Run, from the repository, with ``SESSION_SECRET`` exported as the README shows:
``.venv/bin/pip install -e '.[server,gunicorn,bcrypt]'
django && cd examples/django_project && ../../.venv/bin/waitress-serve
--listen=127.0.0.1:8080 demo_site.wsgi:application`` (or ``../../.venv/bin/gunicorn
--bind 127.0.0.1:8080 demo_site.wsgi``), then open http://127.0.0.1:8080/ as demo /
demo-password. docs/django.rst shows this file's stack as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.wsgi import get_wsgi_application

from middleware import (
    AccessLog,
    BasicAuth,
    ErrorCatcher,
    Gzip,
    Session,
    StaticFiles,
    compose,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")

EXAMPLES = Path(__file__).resolve().parent.parent.parent

application = compose(
    get_wsgi_application(),
    AccessLog(),
    ErrorCatcher(),
    Gzip(min_size=200),
    BasicAuth(htpasswd=EXAMPLES / "demo.htpasswd", realm="Django demo"),
    # From the environment, never from the code; secure=False: the demo is
    # served over http.
    Session(
        secret=os.environ["SESSION_SECRET"], cookie_name="demo_session", secure=False
    ),
    StaticFiles(EXAMPLES / "public", prefix="/static"),
)
