"""The body filter of one compressed response: :class:`Coding`."""

from __future__ import annotations

import logging
from collections.abc import Callable

from .coders import Coder

__all__ = ["Coding"]

log = logging.getLogger("middleware.gzip")


class Coding:
    """The body filter of one compressed response: each chunk through the coder,
    flushed, so it decodes on arrival.

    With the app's ``Content-Length`` it knows when the body is complete, so the
    core can send an exact length (``complete``; see BodyFilter), and it raises when
    the body ends short, so a truncated response stays visibly truncated."""

    __slots__ = ("_coder", "_left", "_declared", "_pad", "complete")

    def __init__(
        self, coder: Coder, length: int, pad: Callable[[bytes], bytes] | None
    ) -> None:
        self._coder = coder
        # Bytes of the app's Content-Length still to come (-1: no length given). The
        # chunk that completes it ends the stream at once: no flush, then no trailer.
        self._left = self._declared = length
        self._pad = pad  # adds the random padding to the first output (BREACH)
        self.complete = False

    def feed(self, data: bytes) -> bytes:
        # An empty chunk stays empty: flushing nothing would still cost bytes.
        if not data:
            return data
        left = self._left
        if left < 0:
            data = self._coder.chunk(data)
        elif self.complete:  # the declared length was reached: nothing more is sent
            log.warning("dropped %d bytes past the Content-Length", len(data))
            return b""
        else:
            left -= len(data)
            self._left = left
            if left > 0:
                data = self._coder.chunk(data)
            else:
                self.complete = True
                if left < 0:
                    # What a server does with bytes past Content-Length: drop them.
                    log.warning("dropped %d bytes past the Content-Length", -left)
                    data = data[:left]
                    self._left = 0
                data = self._coder.last(data)
        if self._pad is not None:
            data = self._pad(data)
            self._pad = None
        return data

    def finish(self) -> bytes:
        if self.complete:
            return b""
        if self._left > 0:
            # Ending the stream would make a short body look whole once compressed:
            # the error goes to the server, which cuts the response off (or answers
            # 500 if nothing went out), as it does for a short identity body.
            raise ValueError(
                f"the app declared Content-Length: {self._declared} and its body "
                f"ended after {self._declared - self._left} bytes"
            )
        data = self._coder.end()
        if self._pad is not None:
            data = self._pad(data)
            self._pad = None
        return data
