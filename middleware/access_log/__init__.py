"""Access logging: :class:`AccessLog` writes one line per request, when the response
is closed, with what really happened.

The line is emitted from the response proxy's close, so the status is the final one
(after any ``exc_info`` replacement), the bytes are those that went out (iterable
and ``write()``; a passed-through ``wsgi.file_wrapper`` counts its length), and the
duration runs from the request's arrival to the end of the body. Paste's TransLogger
logs inside ``start_response``, before any of that is known.

Values from the request are escaped (``\\xhh`` for control characters, quotes,
backslashes and non-ASCII), so a request cannot forge log lines. The middleware
never adds handlers or changes logger configuration.
"""

from contextvars import ContextVar

from . import formats, ids
from .formats import compile_format as compile_format
from .formats import escape as escape
from .ids import RequestIdFilter
from .middleware import AccessLog

# Assigned here, not only imported, so the docs find their ``#:`` comments.
#: The built-in text formats, in the placeholder syntax custom formats use.
FORMATS = formats.FORMATS
#: The request id of the request being handled in this context, or None.
request_id_var: ContextVar[str | None] = ids.request_id_var

__all__ = ["AccessLog", "FORMATS", "RequestIdFilter", "request_id_var"]
