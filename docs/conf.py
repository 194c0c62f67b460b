"""Sphinx configuration for wsgi-middleware-toolkit."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

project = "wsgi-middleware-toolkit"
author = "wsgi-middleware-toolkit contributors"
copyright = "2026, wsgi-middleware-toolkit contributors"

extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode"]
html_theme = "furo"
html_title = "wsgi-middleware-toolkit"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# The WSGI aliases come from wsgiref.types; do not let autodoc chase them.
autodoc_type_aliases = {
    "WSGIApplication": "WSGIApplication",
    "WSGIEnvironment": "WSGIEnvironment",
    "StartResponse": "StartResponse",
}
nitpicky = False
exclude_patterns = ["_build"]
