"""A Flask app using our session next to Flask's own, served by waitress.

Run: ``.venv/bin/pip install -e '.[server]' flask``, then
``.venv/bin/python examples/flask_visits.py [PORT]``
then open http://127.0.0.1:8080/ (the visit counter), ``/login?user=alice``,
``/logout``. The secret comes from ``SESSION_SECRET`` (a throwaway one is made when it
is unset, so sessions end when the process does).
"""

from __future__ import annotations

import os
import secrets
import sys

from flask import Flask, redirect, request
from werkzeug.wrappers import Response

from middleware import compose
from middleware.session import Session, get_session

app = Flask(__name__)


@app.route("/")
def index() -> str:
    session = get_session(request.environ)
    session["visits"] = session.get("visits", 0) + 1
    user = session.get("user", "nobody")
    return f"Hello, {user}. Visits in this session: {session['visits']}.\n"


@app.route("/login")
def login() -> Response:
    session = get_session(request.environ)
    session.regenerate()  # a new id at login: an id planted before is worthless
    session["user"] = request.args.get("user", "alice")
    return redirect("/")


@app.route("/logout")
def logout() -> Response:
    get_session(request.environ).invalidate()
    return redirect("/")


secret = os.environ.get("SESSION_SECRET") or secrets.token_urlsafe(32)
# Flask's own session cookie is called "session": ours gets another name.
app.wsgi_app = compose(  # type: ignore[method-assign, assignment]
    app.wsgi_app, Session(secret, cookie_name="app_session", reissue_after=3600)
)

if __name__ == "__main__":
    import waitress

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    waitress.serve(app, host="127.0.0.1", port=port)
