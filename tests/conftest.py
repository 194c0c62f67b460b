"""Test-wide setup: a workaround for a CPython 3.11 race that kills threads under
coverage.

On 3.11 ``sys.settrace`` raises ``RuntimeError: Cannot install a trace function
while another trace function is being installed`` when two threads install
coverage's trace function at the same moment (a process-wide guard in
``_PyEval_SetTrace``, python/cpython#98257; 3.12+ traces with ``sys.monitoring``).
A thread that loses dies in ``threading``'s bootstrap before it runs: tests that
start many threads at once (the kit's threads style, concurrent session writers)
fail at random on a loaded machine. ``threading`` calls ``_sys.settrace`` there;
this gives it a ``sys`` whose ``settrace`` tries again instead.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

RACE = "Cannot install a trace function while another trace function is being installed"


class _RetryingSettrace:
    """``sys`` for the threading module, but ``settrace`` retries the race."""

    def __getattr__(self, name: str) -> Any:
        return getattr(sys, name)

    @staticmethod
    def settrace(function: Any) -> None:
        for _ in range(1000):
            try:
                sys.settrace(function)
                return
            except RuntimeError as exc:
                if RACE not in str(exc):
                    raise
                time.sleep(0.001)
        sys.settrace(function)


if sys.version_info < (3, 12):
    threading._sys = _RetryingSettrace()  # type: ignore[attr-defined]
