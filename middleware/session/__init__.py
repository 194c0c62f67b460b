"""Sessions: signed cookies by default, SQLite and Redis for server-side data.

::

    from middleware.session import Session, SQLiteStore, get_session

    app = Session(secret=os.environ["SESSION_SECRET"])(app)

    def view(environ, start_response):
        session = get_session(environ)
        session["visits"] = session.get("visits", 0) + 1
        ...

See :doc:`/sessions` for the choices and their reasons.
"""

from .cookie import CookiePolicy
from .errors import SessionError, SessionTooLarge, StoreError
from .middleware import Session
from .state import ENVIRON_KEY, SessionData, get_session
from .stores import MemoryStore, RedisStore, SQLiteStore, Store

__all__ = [
    "ENVIRON_KEY",
    "CookiePolicy",
    "MemoryStore",
    "RedisStore",
    "SQLiteStore",
    "Session",
    "SessionData",
    "SessionError",
    "SessionTooLarge",
    "Store",
    "StoreError",
    "get_session",
]
