"""The hello world of PEP 3333, wrapped: compression, an access log and errors
caught, with no framework at all.

Run: ``.venv/bin/pip install -e '.[server]'``, then
``.venv/bin/python examples/plain_wsgi.py``, then
``curl -i --compressed http://127.0.0.1:8080/``.
"""

from __future__ import annotations

from collections.abc import Iterable

from middleware import AccessLog, ErrorCatcher, Gzip, compose
from middleware.wsgi import StartResponse, WSGIEnvironment

HELLO_WORLD = b"Hello world!\n"


def simple_app(
    environ: WSGIEnvironment, start_response: StartResponse
) -> Iterable[bytes]:
    """Simplest possible application object (PEP 3333's own example)."""
    status = "200 OK"
    response_headers = [("Content-type", "text/plain")]
    start_response(status, response_headers)
    return [HELLO_WORLD * 40]


app = compose(simple_app, AccessLog(), ErrorCatcher(), Gzip())

if __name__ == "__main__":
    import logging

    import waitress

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    waitress.serve(app, host="127.0.0.1", port=8080)
