"""The demo site's app, for ``examples/site.ini``: a page that counts your visits
in the session, links the static stylesheet and greets the user BasicAuth let in;
``/boom`` raises, for the error catcher; ``/healthz`` answers ``ok`` (site.ini
exempts it from authentication). It knows nothing of the middleware around
it except :func:`middleware.get_session`.

PasteDeploy makes it through ``use = call:middleware.paste:local_app`` with
``factory = site_app:make_app``, which puts the ini file's directory on
``sys.path`` first: ``serve`` and ``gunicorn --paste`` find it from anywhere.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from middleware import get_session
from middleware.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/static/css/site.css"></head>
<body>
<h1>Hello, {user}</h1>
<p>Visits in this session:</p>
<p class="counter" id="visits">{visits}</p>
<ul>
<li><a href="/">Reload</a>: the count goes up (a signed-cookie session).</li>
<li><a href="/static/">/static/</a>: a static page; its stylesheet has
precompressed br and gzip variants.</li>
<li><a href="/boom">/boom</a>: the app raises; the error catcher answers 500 and
the server goes on.</li>
</ul>
<footer>Every request is logged on the console by the access log.</footer>
</body>
</html>
"""


def make_app(global_conf: dict[str, str], title: str = "Demo") -> WSGIApplication:
    """PasteDeploy app factory: ``title`` is the page title."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/boom":
            raise RuntimeError("boom: the demo app failed on purpose")
        if path == "/healthz":  # exempt from basic auth in site.ini
            start_response(
                "200 OK",
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", "3"),
                ],
            )
            return [b"ok\n"]
        if path != "/":
            body = b"Not found\n"
            start_response(
                "404 Not Found",
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        session = get_session(environ)
        session["visits"] = session.get("visits", 0) + 1
        user = environ.get("REMOTE_USER", "stranger")
        body = PAGE.format(
            title=html.escape(title),
            user=html.escape(user),
            visits=session["visits"],
        ).encode()
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]

    return app
