"""Realtime: the delivery contract between the SQL event log and every open tab.

`realtime` knows user ids, event kinds and HTML text; it knows nothing about listings or chat.
Features write events through it; `/events` streams them. The contract:

**At-least-once delivery, exactly-once display.**

1. Durable events. `record(user_ids, kind, data)` appends one `StreamEvent` row per user inside
   the caller's transaction, with that user's next `seq` (gap-free, per user, allocated by an
   UPSERT on `stream_counters` … RETURNING, whose row lock makes commit order match seq order on
   PostgreSQL; SQLite serialises writers anyway).
2. Publish after commit. Nothing is published while the transaction is open; the session's
   `after_commit` moves staged events to "committed", a rollback (of the transaction, or of the
   savepoint they were recorded in) drops them. `publish_committed()` (called by the service
   right after its commit, and by an `after_request` safety net) renders each committed event
   with the renderer registered for its kind and publishes `b"<seq> <kind>\\n<data lines>"` to
   the recipient's channel (`event.py`); the events of one `record` for many users go as one
   fan-out payload that every process reads and splits (`REALTIME_FANOUT_MIN`). A failed publish
   is logged and not retried: the SQL log is the source of truth and the stream replays it.
3. The stream (`GET /events`, see `stream.py`): 401 when logged out. Register with the process hub
   FIRST, then replay `seq > cursor` from SQL (cursor = `Last-Event-ID` header, else `?after=`),
   rendered by the same renderers, then send the snapshot fragments (unread badge…), then go live,
   skipping anything `<= last replayed`. More than `STREAM_REPLAY_LIMIT` events behind: one
   `resync` event instead, which makes the page reload its state. The DB session is released
   before the generator starts; nothing holds a connection while streaming. The `id:` a client
   holds only ever covers events it was sent: a live event that overtakes an earlier one is
   shown without an id, and a gap that doesn't close soon is read from SQL.
   Pub/sub can lose a publish with nothing after it to reveal the gap (Redis restarted, or one
   PUBLISH failed). The watch (`watch.py`) bounds that: one query per process every
   `STREAM_CHECK_SECONDS` compares every local stream with its user's last committed seq, and
   after the broker subscribes again following a lost connection it checks at once; a stream
   found behind reads `seq > cursor` from SQL in place. Streams stay open through a Redis outage
   (the watch delivers from SQL meanwhile).
4. Fragments swap by stable element ids, so applying an event twice changes nothing.
5. Ephemeral events (`ephemeral()`: typing, presence) carry no `id:` and are never replayed.
6. `end_streams(user_id)` ends every open stream of a user on every worker (logout, suspension).
7. Delivered is a cursor. A stream notes the last seq it has written to its client; each
   process's watch moves every such user's `stream_counters.delivered_seq` forward in one
   statement per round and hands the events it passed to the kind's delivery hooks (chat derives
   its "Delivered" receipts there). A stream never writes, and never calls a feature, per event.

The wire format is in `event.py`; the brokers (in-process, Redis) in `broker.py`, on a Redis
Cluster in `cluster.py`; the per-process fan-out in `hub.py`; presence (who has a live stream,
with expiry) in `presence.py`.

The API (nothing else is meant to be imported from here):

    init_app(app)                           broker from REDIS_CLUSTER_NODES or REDIS_URL (in-process when
                                            neither is set)
    record(user_ids, kind, data)            -> [Recorded], in the caller's transaction
    publish_committed()                     right after db.session.commit()
    ephemeral(user_ids, html, event=None)   now, no id, never stored
    end_streams(user_id)                    every open stream of the user, on every worker
    exiting(app)                            this process is stopping: its streams end now (their
                                            clients reconnect at once, to a process that stays)
    last_seq(user_id)                       -> int
    register_renderer(kind, fn)             fn(event) -> HTML | None, for event.user_id
    register_snapshot(fn)                   fn(user_id) -> HTML | None, on every stream open
    register_delivery_hook(kind, fn)        fn(events) once the user's delivery cursor passed them:
                                            in batches, by the watch, never by the stream
    register_presence_hook(fn)              fn(user_id, online) on first open / last close
    presence.online(user_ids) -> {ids}; presence.last_seen(user_id) -> datetime | None
    Shared(html), hole(name)                HTML rendered once for many recipients, with holes
                                            that `Shared.fill(pieces)` fills for one of them
    prune_events(days, keep, …)             remove the events no client can replay (retention.py)
    skip_seqs(gap)                          after restoring a backup: every counter `gap` forward

Renderers, snapshots and hooks run with an app and a request context and a usable `db.session`.
A live publish renders the very events `record` handed back, so their `hints` (set by the
recording code: what it knew as it committed) can spare a renderer its reads; a replay has none.
Renderers only read: a live publish runs them right after the commit with no transaction open
(`database.without_a_transaction`), where a write would commit statement by statement.
The request is not necessarily the recipient's (a renderer runs in the sender's request when
publishing live): render for `event.user_id`, never for `current_user`.
"""
import logging

from .. import metrics
from . import presence
from .core import Realtime, current, settings
from .event import END, Shared, ephemeral_payload, hole, html_frame
from .eventlog import last_seq, publish_committed, record
from .registry import register_delivery_hook, register_presence_hook, register_renderer, register_snapshot
from .retention import prune as prune_events
from .retention import skip_all as skip_seqs
from .watch import Watch

__all__ = [
    "init_app", "shutdown", "exiting", "record", "publish_committed", "ephemeral", "end_streams", "last_seq",
    "register_renderer", "register_snapshot", "register_delivery_hook", "register_presence_hook", "presence",
    "Shared", "hole", "prune_events", "skip_seqs",
]

log = logging.getLogger(__name__)


def init_app(app):
    app.config.update(settings(app.config))
    machinery = app.extensions["realtime"] = Realtime(app.config)
    machinery.watch = Watch(machinery.hub, machinery.presence, app.config)
    from .eventlog import listen

    listen()


def shutdown(app):
    """End this app's streams and close its Redis connections (worker exit, tests)."""
    app.extensions["realtime"].shutdown()


def exiting(app):
    """This process is stopping (gunicorn's TERM: a stop or a deploy). It waits for its open
    requests before it exits, and a stream never ends by itself: end this app's streams now, and
    any opened here from now on right after its replay, so that each client reconnects with its
    cursor at once, to a process that stays, instead of being cut when the wait runs out.
    Everything else goes on: requests in flight still record and publish."""
    app.extensions["realtime"].hub.end_all()


def ephemeral(user_ids, html, event=None):
    """Send `html` (or a named `event`) to every open stream of these users now. No `id:`:
    it never moves a client's cursor and is never replayed. Lost if nobody is connected."""
    text = html_frame(html, event=event)
    if not text:
        return
    payload = ephemeral_payload(text)
    _publish([(user_id, payload) for user_id in sorted({int(u) for u in user_ids})])


def end_streams(user_id):
    """End every open stream of this user on every worker and host (log-out, suspension).
    Their clients reconnect and get a 401 if the session is gone."""
    _publish([(int(user_id), END)])


def _publish(messages):
    if not messages:
        return
    try:
        current().broker.publish_many(messages)
    except Exception as exc:
        metrics.PUBLISH_FAILURES.inc()
        log.warning("could not publish to %d stream(s): %s", len(messages), exc)
