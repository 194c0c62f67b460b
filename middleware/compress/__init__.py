"""Response compression: :class:`Compress` (zstd, br and gzip) and :class:`Gzip`.

Bodies are compressed as they stream: every chunk the app yields or writes goes
through one compressor object and is flushed (a sync flush) before it is passed on, so
server-sent events and token streams keep flowing and memory stays flat whatever the
body size. The coding is chosen from the request's parsed ``Accept-Encoding``
(:func:`middleware.http.accepted_encodings`), never by substring matching.

What is left alone, and why, is listed on :class:`Compress`; a response left alone
after a plain ``start_response`` is the app's own iterable, untouched, so
``wsgi.file_wrapper`` and sendfile keep working.
"""

from .coders import AVAILABLE
from .middleware import Compress, Gzip
from .policy import DEFAULT_TYPES, ENVIRON_KEY

__all__ = ["AVAILABLE", "DEFAULT_TYPES", "ENVIRON_KEY", "Compress", "Gzip"]
