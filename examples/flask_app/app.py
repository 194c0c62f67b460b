"""A Flask app as it would be written without the toolkit: its own routes and
templates. ``wsgi.py`` next to it wraps it; this module does not know it is
wrapped, except that it reads the visit count from the toolkit's session
(:func:`middleware.get_session`), which works with or without Flask's own.
"""

from __future__ import annotations

from flask import Flask, render_template, request

from middleware import get_session

# static_folder=None: StaticFiles serves /static/ in front of Flask.
app = Flask(__name__, static_folder=None)


@app.route("/")
def index() -> str:
    session = get_session(request.environ)
    session["visits"] = session.get("visits", 0) + 1
    user = request.environ.get("REMOTE_USER", "stranger")
    return render_template("index.html", user=user, visits=session["visits"])


@app.route("/healthz")
def healthz() -> str:
    return "ok"  # for a load balancer: wsgi.py exempts it from BasicAuth


@app.route("/boom")
def boom() -> str:
    raise RuntimeError("boom: the Flask example failed on purpose")
