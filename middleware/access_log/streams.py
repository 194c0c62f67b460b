"""The ``stream`` option of :class:`~middleware.access_log.AccessLog`: lines written
straight to standard output, standard error or a text stream, without ``logging``
(what it accepts, and one line written at a time)."""

from __future__ import annotations

import io
import threading
from typing import Any, Protocol

from ..options import REFUSED, Option


class TextSink(Protocol):
    """What the ``stream`` option writes lines to: ``write(str)`` (and ``flush()``,
    if it has one): a text file, ``sys.stdout``, an ``io.StringIO``."""

    def write(self, text: str, /) -> object: ...


class StreamOption(Option[Any]):
    """Where lines go instead of a logger: ``"stdout"`` or ``"stderr"`` (looked up
    in :mod:`sys` at each line, so a replaced ``sys.stdout`` is written to), or an
    object with a ``write(str)`` method (``flush()`` too if it has one)."""

    expects = "'stdout', 'stderr' or a text stream (with a write(str) method)"

    def accept(self, value: Any) -> Any:
        if value in ("stdout", "stderr"):
            return value
        if isinstance(value, (str, bytes, io.RawIOBase, io.BufferedIOBase)):
            return REFUSED  # a name we do not know, or a binary stream
        return value if callable(getattr(value, "write", None)) else REFUSED

    def convert(self, text: str, here: Any) -> Any:
        word = text.strip()
        return word.lower() if word.lower() in ("stdout", "stderr") else word


class _Nowhere:
    """Where lines go when the named stream is None (``pythonw``, some daemons):
    nowhere, as ``print()`` does then."""

    def write(self, text: str, /) -> int:
        return 0


NOWHERE = _Nowhere()
#: One line at a time on a stream, whichever AccessLog writes it (two may share
#: standard output).
_WRITE_LOCK = threading.Lock()
#: How often a failing stream is reported, in seconds.
REPORT_EVERY = 60.0


def write_line(stream: TextSink, line: str) -> None:
    """Write *line* and a newline to *stream*, then flush it if it can be, under
    :data:`_WRITE_LOCK`; what the stream raises propagates."""
    with _WRITE_LOCK:
        stream.write(line + "\n")
        flush = getattr(stream, "flush", None)
        if flush is not None:
            flush()
