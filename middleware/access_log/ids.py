"""Request ids: the generator of new ids, the check of inbound ones,
:data:`request_id_var` (the id of the request handled in this context) and
:class:`RequestIdFilter`, which puts it on your own log records."""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import re
from collections.abc import Callable

__all__ = ["RequestIdFilter", "new_request_id", "request_id_var", "valid_request_id"]

#: The request id of the request being handled in this context, or None.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "middleware_request_id", default=None
)


class RequestIdFilter(logging.Filter):
    """A logging filter that sets ``record.request_id`` from the current request,
    so your app's own log lines can carry it (``%(request_id)s``). Attach it to a
    handler; outside a request the id is ``-``."""

    def filter(self, record: logging.LogRecord) -> bool:
        # A record that carries its own (AccessLog's, ErrorCatcher's) keeps it.
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get() or "-"
        return True


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def valid_request_id(value: str) -> bool:
    """Whether an inbound request id may be used as is: 1-128 characters of
    letters, digits and ``._:/+=-``."""
    return _REQUEST_ID.fullmatch(value) is not None


class _Ids:
    """Request ids: 32 hex digits, a random 20-digit prefix per process and a
    12-digit counter. Unique (a forked worker draws a new prefix), cheaper than a
    uuid4 per request; not secrets, so they need not be unguessable."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = os.urandom(10).hex()
        self.counter = itertools.count(1)

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter):012x}"


_ids = _Ids()

#: A new request id, unique in this process and its forks (the generator's bound
#: method: one call per request).
new_request_id: Callable[[], str] = _ids.next
