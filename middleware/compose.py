"""Build a stack of middleware around an app, and describe one.

``compose(app, A(), B(), C())`` returns ``A()(B()(C()(app)))``: after the app, layers
are listed in the order a request meets them. The first listed is the outermost (the
first to see a request and the last to see the response); the last listed sits next
to the app. That is the order of Django's ``MIDDLEWARE``, Starlette's middleware list
and a PasteDeploy ``pipeline = a b c main``, so a stack can be copied between Python
and an ini file without reordering it.

A layer is any callable that takes a WSGI app and returns one: a middleware of this
package, a PasteDeploy filter, or ``lambda app: ProxyFix(app, x_for=1)``.
"""

from __future__ import annotations

from typing import Any

from .proxy import Layer, Middleware
from .wsgi import WSGIApplication

__all__ = ["compose", "describe"]


def compose(app: WSGIApplication, *layers: Any) -> WSGIApplication:
    """Wrap *app* in *layers*, the first listed outermost.

    :param app: the WSGI application at the centre of the stack.
    :param layers: callables ``app -> app``, outermost first.
    :returns: the outermost wrapped app; *app* itself when no layer is given.
    :raises TypeError: *app* is not callable, a layer is not callable (or is a
        middleware class rather than an instance), or a layer returned something
        that is not a WSGI application. The message names the layer's position,
        counted from 1, outermost first.
    """
    if not callable(app):
        raise TypeError(
            f"compose() takes the WSGI application first, got {app!r}, which is "
            "not callable"
        )
    count = len(layers)
    for index in range(count - 1, -1, -1):
        layer = layers[index]
        where = f"layer {index + 1} of {count}"
        if isinstance(layer, type) and issubclass(layer, Middleware):
            raise TypeError(
                f"compose(): {where} is the class {layer.__name__}; pass an "
                f"instance, {layer.__name__}(...)"
            )
        if not callable(layer):
            raise TypeError(
                f"compose(): {where} is {layer!r}, which is not callable; a layer "
                "takes a WSGI app and returns one, like Gzip() or "
                "lambda app: ProxyFix(app)"
            )
        wrapped = layer(app)
        if not callable(wrapped):
            raise TypeError(
                f"compose(): {where} ({layer!r}) returned {wrapped!r}, which is not "
                "a WSGI application"
            )
        app = wrapped
    return app


def describe(app: WSGIApplication) -> str:
    """A readable description of a stack, outermost layer first.

    Layers of this package show their configuration; other layers that expose the
    inner app as ``.app`` (Werkzeug's middleware, most filters) show their type; the
    walk stops at the first object without an inner ``.app``, the application::

        1. AccessLog(logger='middleware.access')
        2. Gzip(level=6)
        app: <function hello at 0x7f...>
    """
    lines: list[str] = []
    seen: set[int] = set()
    current: Any = app
    while id(current) not in seen:
        seen.add(id(current))
        inner = getattr(current, "app", None)
        if isinstance(current, Layer):
            lines.append(f"{len(lines) + 1}. {current.middleware!r}")
        elif callable(inner) and not isinstance(current, type):
            lines.append(f"{len(lines) + 1}. {type(current).__name__}")
        else:
            break
        current = inner
    lines.append(f"app: {current!r}")
    return "\n".join(lines)
