"""What an app or a responder can get wrong, and the errors the core raises for it:
each names the rule broken and how to mend it."""

from __future__ import annotations

TWICE = (
    "start_response() was called a second time without exc_info; PEP 3333 allows "
    "a second call only to replace the headers after an error, with "
    "exc_info=sys.exc_info()"
)
NO_FILTERS = (
    "{}.on_start() returned a body filter; set filters = True on the responder "
    "class so its layer can filter bodies"
)


def not_iterable(result: object) -> TypeError:
    return TypeError(
        f"PEP 3333: an application must return an iterable of bytestrings, got "
        f"{type(result).__name__} ({result!r:.80})"
    )


def not_bytes(data: object) -> TypeError:
    return TypeError(
        f"PEP 3333: a response body is made of bytestrings (bytes), got "
        f"{type(data).__name__} ({data!r:.80}); encode text before yielding or "
        "writing it"
    )
