"""Two views: the visit counter, kept in the toolkit's session (Django's
``request.META`` is the WSGI environ), and one that raises."""

from __future__ import annotations

import html

from django.http import HttpRequest, HttpResponse

from middleware import get_session


def index(request: HttpRequest) -> HttpResponse:
    session = get_session(request.META)
    session["visits"] = session.get("visits", 0) + 1
    user = html.escape(request.META.get("REMOTE_USER", "stranger"))
    return HttpResponse(
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>Django, wrapped</title>"
        "<link rel='stylesheet' href='/static/css/site.css'></head>"
        f"<body><h1>Hello from Django, {user}</h1><p>Visits in this session:</p>"
        f"<p class='counter' id='visits'>{session['visits']}</p></body></html>"
    )


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom: the Django example failed on purpose")
