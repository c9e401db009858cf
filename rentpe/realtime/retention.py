"""Retention of the event log: events that no client can replay any more are removed.

A stream replays at most `STREAM_REPLAY_LIMIT` events (further behind, it gets a `resync` and the
page reloads its state), so an event is useless once it is older than `EVENT_RETENTION_DAYS` AND
not among its user's newest `STREAM_REPLAY_LIMIT`: both must hold, so a quiet user keeps a full
replay window however old it is, and a busy one keeps at least a few days. What remains for each
user is always a suffix of their seqs (the newest ones); a cursor that falls before it gets a
`resync` (stream.py, `_replay`), never a silent gap. Counters are never touched: seqs go on from
where they were.

The delete goes in small batches, each its own short transaction, walking the users in id order
along the primary key (user_id, seq): no index beyond it is needed, and no batch holds locks a
send waits for (a send inserts new rows and bumps a counter; the prune deletes old rows only).
"""
import time
from datetime import timedelta

from sqlalchemy import DateTime, bindparam, select, text, update

from .. import metrics
from ..extensions import db
from ..models_base import utcnow
from .models import StreamCounter

# Rows per DELETE: a few ms of work, then the transaction commits and its locks are gone.
BATCH = 1000
# Users whose events one series of batches looks at (the next users' ids are read once per range).
USERS_PER_RANGE = 500

_DELETE = text(
    "DELETE FROM stream_events WHERE (user_id, seq) IN ("
    " SELECT e.user_id, e.seq FROM stream_events AS e JOIN stream_counters AS c ON c.user_id = e.user_id"
    " WHERE c.user_id >= :first AND c.user_id <= :last AND e.seq <= c.seq - :keep AND e.created_at < :cutoff"
    " LIMIT :batch)"
).bindparams(bindparam("cutoff", type_=DateTime))


def prune(retention_days, keep, now=None, batch=BATCH, pause=0.0, stop=None):
    """Remove the events older than `retention_days` that are not among their user's newest `keep`.
    `pause` seconds between batches lets other work in; `stop()` true ends early. Returns the
    number of rows removed."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    removed, after = 0, 0
    while True:
        users = db.session.scalars(select(StreamCounter.user_id).where(StreamCounter.user_id > after)
                                   .order_by(StreamCounter.user_id).limit(USERS_PER_RANGE)).all()
        db.session.commit()
        if not users:
            return removed
        first, last = users[0], users[-1]
        while True:
            count = db.session.execute(_DELETE, {"first": first, "last": last, "keep": keep,
                                                 "cutoff": cutoff, "batch": batch}).rowcount
            db.session.commit()
            removed += count
            metrics.EVENTS_PRUNED.inc(count)
            if stop is not None and stop():
                return removed
            if count < batch:
                break
            if pause:
                time.sleep(pause)
        after = last


def skip_all(gap):
    """After restoring an older backup: move every user's counter `gap` seqs forward, so that no
    seq a client saw before the restore is handed out again (a client may hold any seq the lost
    database reached; `gap` must exceed the events any one user got between the backup and the
    loss). Clients then replay nothing they had and get a `resync` (their cursor is ahead of the
    database, or falls in the gap). Returns the number of counters moved."""
    moved = db.session.execute(update(StreamCounter).values(seq=StreamCounter.seq + gap)).rowcount
    db.session.commit()
    return moved
