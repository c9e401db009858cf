"""What features plug into the stream: renderers, snapshots, delivery and presence hooks.

Registrations are process-wide (features register at import or in their `init_app`), like
signal receivers. Every call into feature code goes through here, so a failing hook is logged
and never breaks a stream or a publish; what it left uncommitted is rolled back so the next
one starts clean.
"""
import logging
from collections import defaultdict

from ..extensions import db

log = logging.getLogger(__name__)

renderers = {}
batch_renderers = {}
snapshots = []
delivery_hooks = defaultdict(list)  # kind -> [fn]
presence_hooks = []


def register_renderer(kind, fn, many=None):
    """`fn(event) -> str | None`: the HTML for `event` as its recipient (`event.user_id`) sees it.
    One renderer per kind; registering again replaces it.

    `many(events) -> [str | None]` (optional) renders several events of the kind at once, one
    result per event in order: a message to a 500-member board is 500 events that share every
    query but the recipient's own, so a publish reads them once instead of once per member."""
    renderers[kind] = fn
    if many is None:
        batch_renderers.pop(kind, None)
    else:
        batch_renderers[kind] = many
    return fn


def register_snapshot(fn):
    """`fn(user_id) -> str | None`: HTML sent without an id on every stream open, after replay."""
    if fn not in snapshots:
        snapshots.append(fn)
    return fn


def register_delivery_hook(kind, fn):
    """`fn(events)` with events of `kind` that reached one of their user's streams: the user's
    delivery cursor passed them. Called in batches by each process's watch (at most once every
    `STREAM_CHECK_SECONDS`, for all its streams), never by a stream itself, with an app context
    and a usable `db.session`. Events carry `user_id`, `seq`, `kind` and `data`; one may come
    twice (two tabs, two workers), so the hook must be idempotent."""
    if fn not in delivery_hooks[kind]:
        delivery_hooks[kind].append(fn)
    return fn


def register_presence_hook(fn):
    """`fn(user_id, online)` when a user's first stream opens or last stream closes."""
    if fn not in presence_hooks:
        presence_hooks.append(fn)
    return fn


def render(event):
    """The HTML for `event`, or None (no renderer, the renderer said None, or it failed)."""
    fn = renderers.get(event.kind)
    if fn is None:
        return None
    try:
        return fn(event)
    except Exception:
        log.exception("renderer for %r failed on event %s/%s", event.kind, event.user_id, event.seq)
        db.session.rollback()
        return None


def render_all(events):
    """`render` of each event, in order; kinds with a batch renderer are rendered together."""
    results = [None] * len(events)
    positions = defaultdict(list)
    for index, event in enumerate(events):
        positions[event.kind].append(index)
    for kind, indexes in positions.items():
        many = batch_renderers.get(kind)
        if many is not None and len(indexes) > 1:
            try:
                rendered = list(many([events[i] for i in indexes]))
                if len(rendered) != len(indexes):
                    raise ValueError(f"{len(rendered)} results for {len(indexes)} events")
            except Exception:
                log.exception("batch renderer for %r failed on %d events; rendering them one by one", kind,
                              len(indexes))
                db.session.rollback()
            else:
                for i, html in zip(indexes, rendered):
                    results[i] = html
                continue
        for i in indexes:
            results[i] = render(events[i])
    return results


def render_snapshots(user_id):
    fragments = []
    for fn in list(snapshots):
        try:
            html = fn(user_id)
        except Exception:
            log.exception("snapshot %r failed for user %s", fn, user_id)
            db.session.rollback()
            continue
        if html:
            fragments.append(html)
    return fragments


def delivery_kinds():
    return sorted(kind for kind, fns in delivery_hooks.items() if fns)


def call_delivery_hooks(events):
    by_kind = defaultdict(list)
    for event in events:
        by_kind[event.kind].append(event)
    for kind, of_kind in by_kind.items():
        for fn in list(delivery_hooks.get(kind, ())):
            try:
                fn(of_kind)
            except Exception:
                log.exception("delivery hook %r failed on %d event(s)", fn, len(of_kind))
                db.session.rollback()


def call_presence_hooks(user_id, online):
    for fn in list(presence_hooks):
        try:
            fn(user_id, online)
        except Exception:
            log.exception("presence hook %r failed for user %s", fn, user_id)
            db.session.rollback()


def saved():
    """A copy of every registration, for `restore` (tests register their own kinds and hooks)."""
    return (dict(renderers), dict(batch_renderers), list(snapshots), {k: list(v) for k, v in delivery_hooks.items()},
            list(presence_hooks))


def restore(state):
    r, b, s, d, p = state
    renderers.clear()
    renderers.update(r)
    batch_renderers.clear()
    batch_renderers.update(b)
    snapshots[:] = s
    delivery_hooks.clear()
    delivery_hooks.update(d)
    presence_hooks[:] = p
