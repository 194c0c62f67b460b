"""Error catching: :class:`ErrorCatcher` turns a crash into a correct 500 and reports
it.

Before any byte of the body is sent, an exception becomes a fresh ``500 Internal
Server Error``: new headers (never the app's), an exact ``Content-Length``, and
``exc_info`` passed to ``start_response``, so an outer layer or the server replaces
the status it stored. The app's iterable is closed first. After bytes were sent the
exception is reported and re-raised: the server aborts the connection and the
client sees a truncated response, never an error page glued into a body that may be
JSON. The protocol work is the core's (:meth:`middleware.proxy.Responder.recover`);
this package decides what to say and whom to tell.

No interactive debugger is shipped: ``debug=True`` renders a read-only traceback.
"""

from __future__ import annotations

from ..wsgi import REQUEST_ID_KEY
from .middleware import (
    AFTER_START,
    ANSWERED,
    NOT_ANSWERED,
    OUTCOME_KEY,
    REFUSED,
    ErrorCatcher,
    Reporter,
)
from .pages import (
    SECRET_NAMES,
    SECRET_WORDS,
    ErrorPage,
    render_html,
    render_json,
    safe_environ,
    secret_patterns,
)

__all__ = [
    "AFTER_START",
    "ANSWERED",
    "NOT_ANSWERED",
    "OUTCOME_KEY",
    "REFUSED",
    "REQUEST_ID_KEY",
    "SECRET_NAMES",
    "SECRET_WORDS",
    "ErrorCatcher",
    "ErrorPage",
    "Reporter",
    "render_html",
    "render_json",
    "safe_environ",
    "secret_patterns",
]
