"""A plain WSGI app with StaticFiles in front: ``examples/public`` is served under
``/static/`` (``/static/`` itself is its index.html; ``/static/css/site.css`` has a
precompressed ``.gz`` variant), everything else goes to the app.

Run: ``.venv/bin/pip install -e '.[server]'``, then
``.venv/bin/python examples/static_files.py [PORT]``, then
``curl -i --compressed http://127.0.0.1:8080/static/css/site.css``. Pass
``--dev`` to look files up on every request (``autorefresh``) while editing them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from middleware import StaticFiles, compose
from middleware.wsgi import StartResponse, WSGIEnvironment

PUBLIC = Path(__file__).with_name("public")
PAGE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>App</title>
<link rel="stylesheet" href="/static/css/site.css"></head>
<body><h1>The app</h1><p>Dynamic pages come from the app;
<a href="/static/">/static/</a> comes from the files.</p></body></html>
"""


def site(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(PAGE))),
        ],
    )
    return [PAGE]


app = compose(site, StaticFiles(PUBLIC))

if __name__ == "__main__":
    import waitress

    arguments = [a for a in sys.argv[1:] if a != "--dev"]
    served = compose(site, StaticFiles(PUBLIC, autorefresh="--dev" in sys.argv))
    port = int(arguments[0]) if arguments else 8080
    waitress.serve(served, host="127.0.0.1", port=port)
