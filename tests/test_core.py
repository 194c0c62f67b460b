"""The response proxy: the conformance matrix plus the cases it cannot express."""

from __future__ import annotations

from . import conformance
from .sample_middleware import SUBJECTS

test_conformance = conformance.suite(*SUBJECTS)
