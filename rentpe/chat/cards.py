"""Messages of kinds that features above chat add to a conversation (a booking's card, a line
about it in the thread): chat stores and delivers them like any message, and asks the feature
that registered the kind for their HTML. Chat imports no such feature; they register here from
their `init_app`, as chat registers its renderers with `realtime`.

`render(message)` is called for every message whose `kind` is not "text", on the page and in the
stream alike, so its HTML must not depend on the viewer (see chat/_viewer_style.html).
"""
from markupsafe import Markup

_renderers = {}


def register(kind, fn):
    """`fn(message) -> HTML`: the inside of the message's `<li>` for a message of `kind`."""
    _renderers[kind] = fn
    return fn


def render(message):
    fn = _renderers.get(message.kind)
    return Markup(fn(message)) if fn is not None else Markup("")


def is_line(message):
    """A line in the thread (no bubble, centred), as its feature says: kinds ending in "-line"."""
    return message.kind.endswith("-line")
