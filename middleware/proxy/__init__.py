"""The one abstraction every middleware stands on.

- :class:`Middleware` is configuration: checked in ``__init__``; called with an app,
  it returns the wrapped app, a :class:`Layer`.
- :class:`Responder` is what a middleware subclasses to see or change responses: one
  instance per request, with a real ``__init__(middleware, environ)``, and hooks
  named apart from the protocol (:meth:`~Responder.on_request`,
  :meth:`~Responder.on_start`, :meth:`~Responder.on_error`,
  :meth:`~Responder.recover`, :meth:`~Responder.on_recovered`,
  :meth:`~Responder.on_close`).
- A :class:`BodyFilter`, returned by ``on_start``, changes the body:
  ``feed(bytes) -> bytes`` for each chunk, ``finish() -> bytes`` at the end.
- An :class:`Outcome` is the one record of what went out, given to ``on_close``.

The protocol itself lives in a few small, final, internal proxies. Which one a layer
uses is chosen once, when an app is wrapped (:func:`plan`), from the hooks its
responder overrides, so a layer pays only for what it uses:

========== ================================================= =========================
proxy      chosen when the responder...                      per request
========== ================================================= =========================
answer     (no responder) the middleware overrides           one call to ``answer()``
           :meth:`Middleware.answer`
direct     overrides ``on_request`` only                     the responder
start      overrides ``on_start`` (not the ones below)       the responder, a closure
close      overrides ``on_close``                            the responder, a proxy
errors     overrides only ``on_error``, ``recover`` or       a proxy, a generator over
           ``on_recovered``, and not ``__init__``            the body; the responder
                                                             only if an error comes
body       overrides ``on_error`` or ``recover``, or sets    the responder, a proxy, a
           :attr:`~Responder.counts_body`                    generator over the body
filter     sets :attr:`~Responder.filters`                   as body, plus the filter
========== ================================================= =========================

A body the app returned as a list or tuple of bytestrings (those classes exactly: a
subclass may have ``close()``) cannot fail while it is iterated and has nothing to
close: a layer that watches only errors hands it on as it is, and a filter layer
whose start is held (a filter with ``complete``, as Compress's) and that watches
nothing else filters it before returning, so the next layer out gets a list with
its length. Fewer generator frames per request (``benchmarks/bench_stack.py``); a
layer that counts bytes still counts what the server takes; anything else in a
list takes the usual path.

What the proxies guarantee (PEP 3333):

- the app gets the proxy's own ``start_response`` and may call it lazily, from
  inside a generator, on the first ``next()``; nothing reads status or headers
  before the app gave them; an empty header list is a list like any other;
- an app may call ``start_response`` again with ``exc_info`` while nothing has been
  sent: the hooks see the new status and headers, and the server gets them *with*
  ``exc_info``; once bytes went out, the error is re-raised;
- ``write()`` is honoured; its bytes go through the same filter as the iterable's;
- ``close()`` of the app's iterable is called exactly once, whatever happens, and
  ``on_close`` after it; no reference cycle is left once the server closed the
  response;
- a layer that does not change the body hands the server the app's own iterable, or
  its ``wsgi.file_wrapper`` object with ``close`` chained, so sendfile keeps working;
- a filtered body loses ``Content-Length``; HEAD and 1xx, 204 and 304 are never
  filtered; empty chunks are passed on, so streams keep flowing;
- an app that returns a non-iterable gets a ``TypeError`` naming the PEP 3333
  rule, through the same error path as any other exception; so does one that
  yields ``str`` through a layer that sees the body (body and filter proxies).
  Other layers hand the app's iterable to the server, which refuses it.
"""

from __future__ import annotations

from .layers import Layer, Middleware, plan
from .responder import BodyFilter, Outcome, Responder

__all__ = [
    "BodyFilter",
    "Layer",
    "Middleware",
    "Outcome",
    "Responder",
    "plan",
]
