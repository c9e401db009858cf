"""The durable event log: `record` inside the caller's transaction, `publish_committed` after it.

Creating events is separate from delivering them. `record` writes the rows and stages copies on
the SQLAlchemy session; the session's transaction events decide their fate:

- `after_commit` of the outermost transaction moves them to "committed";
- `after_soft_rollback` of a savepoint drops those recorded inside it;
- `after_transaction_end` of the outermost transaction drops whatever was not committed
  (rollback, or `close()` without a commit).

`publish_committed` renders the committed ones and hands them to the broker. Nothing recorded in
a transaction that did not commit is ever published.
"""
import functools
import logging

from flask import current_app, has_request_context
from sqlalchemy import event as sa_event
from sqlalchemy import JSON, DateTime, and_, bindparam, insert, select, text, update

from .. import metrics
from ..database import is_postgresql, without_a_transaction
from ..extensions import db
from ..models_base import utcnow
from . import registry
from .broker import ALL
from .core import current
from .event import data_lines, durable_payload, fanout_payload
from .models import StreamCounter, StreamEvent

log = logging.getLogger(__name__)

STAGED = "realtime.staged"
COMMITTED = "realtime.committed"

# Users per seq statement: SQLite allows 32,766 bound parameters; a 500-member board is one statement.
SEQ_CHUNK = 500
_INSERT_EVENTS = insert(StreamEvent.__table__)


def _seqs_sql(count):
    """The upsert of `count` users' counters: creates each on first use, otherwise bumps it under
    its row lock (held to the end of the transaction), returning (user_id, new seq). Rows are
    upserted in the order of the VALUES list, so the locks are taken in that order. SQLite ≥ 3.35
    and PostgreSQL both accept it as written."""
    source = "VALUES " + ", ".join(f"(:u{i}, 1)" for i in range(count))
    return (f"INSERT INTO stream_counters (user_id, seq) {source} "
            "ON CONFLICT (user_id) DO UPDATE SET seq = stream_counters.seq + 1 RETURNING user_id, seq")


# PostgreSQL: an event row for each (user_id, seq) of the CTE `seqs`, returning them.
_EVENTS_FROM_SEQS = ("INSERT INTO stream_events (user_id, seq, kind, data, created_at) "
                     "SELECT user_id, seq, :kind, CAST(:data AS JSON), :created_at FROM seqs RETURNING user_id, seq")


def _events_statement(sql):
    return text(sql).bindparams(bindparam("data", type_=JSON), bindparam("created_at", type_=DateTime))


@functools.lru_cache(maxsize=64)
def _next_seqs_statement(count):
    return text(_seqs_sql(count))


@functools.lru_cache(maxsize=64)
def _record_statement(count):
    """PostgreSQL: the seqs and the event rows in one statement (a data-modifying CTE), returning
    (user_id, seq) of the rows written."""
    return _events_statement(f"WITH seqs AS ({_seqs_sql(count)}) {_EVENTS_FROM_SEQS}")


def _write(session, user_ids, kind, data, created_at):
    """Allocate each user's next seq and write their event row, SEQ_CHUNK users at a time:
    {user_id: seq}. PostgreSQL does both in one statement; SQLite (no data-modifying CTEs) in two."""
    connection, postgresql = session.connection(), is_postgresql(session)
    seqs = {}
    for start in range(0, len(user_ids), SEQ_CHUNK):
        chunk = user_ids[start:start + SEQ_CHUNK]
        params = {f"u{i}": u for i, u in enumerate(chunk)}
        if postgresql:
            rows = connection.execute(_record_statement(len(chunk)),
                                      {**params, "kind": kind, "data": data, "created_at": created_at}).all()
        else:
            rows = connection.execute(_next_seqs_statement(len(chunk)), params).all()
            connection.execute(_INSERT_EVENTS, [dict(user_id=user_id, seq=seq, kind=kind, data=data,
                                                     created_at=created_at) for user_id, seq in rows])
        seqs.update((user_id, seq) for user_id, seq in rows)
    return seqs


def _check_kind(kind):
    if not kind or len(kind) > 40 or " " in kind or "\n" in kind:
        raise ValueError(f"not a valid event kind: {kind!r}")


def _recipients(user_ids):
    # Ascending ids: two transactions writing to the same users lock their counters in the same
    # order, so they queue instead of deadlocking.
    return sorted({int(u) for u in user_ids})


def record(user_ids, kind, data):
    """One `StreamEvent` row per user, with that user's next seq, in the open transaction; returns
    them as `Recorded` events."""
    _check_kind(kind)
    session = db.session()
    created_at = utcnow()
    data = dict(data or {})
    user_ids = _recipients(user_ids)
    seqs = _write(session, user_ids, kind, data, created_at) if user_ids else {}
    metrics.EVENTS_RECORDED.inc(len(seqs))
    return _stage(session, seqs, kind, data, created_at)


class Recorded:
    """An event as `record` wrote it: the row's values (a `StreamEvent`'s attributes, without the
    ORM's bookkeeping: a board message records hundreds), readable after the commit. The caller
    may set `hints` for the live render; `batch` is shared by the events of one `record`, which
    are published together (see `_payloads`)."""

    __slots__ = ("user_id", "seq", "kind", "data", "created_at", "hints", "batch")

    def __init__(self, user_id, seq, kind, data, created_at, batch):
        self.user_id, self.seq, self.kind, self.data, self.created_at = user_id, seq, kind, data, created_at
        self.hints, self.batch = StreamEvent.hints, batch

    def __repr__(self):
        return f"<Recorded {self.kind} {self.user_id}/{self.seq}>"


def _stage(session, seqs, kind, data, created_at):
    """The events just written ({user id: seq}), staged for the publish after the commit."""
    batch = object()
    events = [Recorded(user_id, seq, kind, dict(data), created_at, batch) for user_id, seq in sorted(seqs.items())]
    if events:
        transaction = session.get_nested_transaction() or session.get_transaction()
        session.info.setdefault(STAGED, []).extend((transaction, e) for e in events)
    return events


def skip_past(user_id, cursor):
    """Move the user's counter up to `cursor` if it is below it, and commit: a client holds a cursor
    the database never reached (it was restored from an older backup), and the seqs recorded from
    now on must be ones that client has never seen. Returns the user's last seq after it."""
    # A transaction of its own: committing the request's session would expire what it loaded.
    with db.engine.begin() as connection:
        moved = connection.execute(update(StreamCounter).where(StreamCounter.user_id == user_id,
                                                               StreamCounter.seq < cursor).values(seq=cursor))
        if not moved.rowcount and connection.scalar(
                select(StreamCounter.seq).where(StreamCounter.user_id == user_id)) is None:
            connection.execute(insert(StreamCounter.__table__).values(user_id=user_id, seq=cursor, delivered_seq=0))
    log.warning("user %s's stream cursor %s was ahead of the event log (a restored backup?): counter moved past it",
                user_id, cursor)
    with db.engine.connect() as connection:
        return connection.scalar(select(StreamCounter.seq).where(StreamCounter.user_id == user_id))


def last_seq(user_id):
    """The seq of the user's latest committed event (0 when there is none)."""
    return db.session.scalar(select(StreamCounter.seq).where(StreamCounter.user_id == user_id)) or 0


# Users per statement of `last_seqs` and `events_delivered` (SQLite takes up to 32,766 bound
# parameters); one statement for all the streams of a busy worker.
CHUNK = 5_000
# Built once: the watch runs these every round.
_LAST_SEQS = select(StreamCounter.user_id, StreamCounter.seq).where(
    StreamCounter.user_id.in_(bindparam("p_users", expanding=True)))
# PostgreSQL, straight to the driver (psycopg2's own parameter style).
_LAST_SEQS_ANY = "SELECT user_id, seq FROM stream_counters WHERE user_id = ANY(%(users)s)"


def _chunks(items):
    items = sorted(items)
    return (items[start:start + CHUNK] for start in range(0, len(items), CHUNK))


def log_position(connection):
    """A value that changes whenever an event may have been recorded since it was last read (and
    sometimes when none was). On PostgreSQL the next transaction id, `pg_current_snapshot()`'s
    xmax: it moves with every transaction that writes (in any database of the server). Elsewhere
    the events' highest rowid. One cheap statement, whatever the number of users."""
    if connection.dialect.name == "postgresql":
        return _driver_rows(connection, _POSITION_PG)[0][0]
    return connection.execute(_POSITION_ROWID).scalar()


_POSITION_PG = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text"
_POSITION_ROWID = text("SELECT max(rowid) FROM stream_events")


def _driver_rows(connection, sql, params=None):
    """The rows of `sql` from the driver's own cursor on `connection`: the watch runs its two
    statements every round, and SQLAlchemy's statement and row machinery cost more than
    PostgreSQL's answer (a comparison of 200 streams: 310 against 190 µs of CPU; the position:
    38 against 11). Errors are the driver's."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()


def last_seqs(user_ids, connection=None):
    """{user id: seq of their latest committed event} for these users (absent: none yet), on
    `connection` (default: the session's). On PostgreSQL one array parameter (`= ANY`), so the
    statement's text never changes with the number of users; elsewhere an expanding IN."""
    connection = connection if connection is not None else db.session.connection()
    if connection.dialect.name == "postgresql":
        return dict(_driver_rows(connection, _LAST_SEQS_ANY, {"users": sorted(user_ids)}))
    found = {}
    for chunk in _chunks(user_ids):
        found.update(connection.execute(_LAST_SEQS, {"p_users": chunk}).all())
    return found


@functools.lru_cache(maxsize=16)
def _advance_delivered_statement(count):
    """The delivery cursors of `count` (user, seq) pairs moved forward, joined to them as a VALUES
    list: one statement (an executemany would be a round trip per user on psycopg2)."""
    pairs = ", ".join(f"(:u{i}, :s{i})" for i in range(count))
    return text(f"UPDATE stream_counters SET delivered_seq = r.column2 FROM (VALUES {pairs}) AS r"
                " WHERE stream_counters.user_id = r.column1 AND stream_counters.delivered_seq < r.column2")


def _padded(params, count, names):
    """`count` rounded up to a power of two, the missing rows filled with zeros (user 0 has no
    counter): a handful of statements serve every round."""
    padded = 1 << (count - 1).bit_length()
    for i in range(count, padded):
        params.update({f"{name}{i}": 0 for name in names})
    return padded


def advance_delivered(ranges):
    """Move each user's delivery cursor forward to `up_to` of {user id: (after, up_to)}, in one
    statement for all of them; never backwards. In the caller's transaction."""
    for chunk in _chunks(ranges.items()):
        params = {}
        for i, (user_id, (_, up_to)) in enumerate(chunk):
            params.update({f"u{i}": user_id, f"s{i}": up_to})
        count = _padded(params, len(chunk), ("u", "s"))
        db.session.execute(_advance_delivered_statement(count), params)


@functools.lru_cache(maxsize=16)
def _events_delivered_statement(count, kinds):
    """The events of `kinds` inside `count` (user, after, up_to) ranges, joined to them as a
    VALUES list (whose columns both databases name column1, column2, column3)."""
    ranges = ", ".join(f"(:u{i}, :a{i}, :b{i})" for i in range(count))
    names = ", ".join(f":k{i}" for i in range(len(kinds)))
    return text(
        f"SELECT e.user_id, e.seq, e.kind, e.data FROM (VALUES {ranges}) AS r"
        " JOIN stream_events AS e ON e.user_id = r.column1 AND e.seq > r.column2 AND e.seq <= r.column3"
        f" WHERE e.kind IN ({names}) ORDER BY e.user_id, e.seq"
    ).columns(data=JSON)


def events_delivered(ranges, kinds):
    """The committed events of `kinds` with after < seq <= up_to of {user id: (after, up_to)}:
    rows with `user_id`, `seq`, `kind` and `data`."""
    if not kinds or not ranges:
        return []
    kinds = tuple(sorted(kinds))
    found = []
    for chunk in _chunks(ranges.items()):
        params = {f"k{i}": kind for i, kind in enumerate(kinds)}
        for i, (user_id, (after, up_to)) in enumerate(chunk):
            params.update({f"u{i}": user_id, f"a{i}": after, f"b{i}": up_to})
        count = _padded(params, len(chunk), ("u", "a", "b"))
        found.extend(db.session.execute(_events_delivered_statement(count, kinds), params).all())
    return found


def replay(user_id, cursor, limit):
    """(the user's last committed seq, up to `limit` of their events with seq > cursor, oldest
    first) in ONE indexed read: the counter's row, joined to the events past the cursor."""
    rows = db.session.execute(
        select(StreamCounter.seq, StreamEvent)
        .outerjoin(StreamEvent, and_(StreamEvent.user_id == StreamCounter.user_id, StreamEvent.seq > cursor))
        .where(StreamCounter.user_id == user_id)
        .order_by(StreamEvent.seq)
        .limit(limit)
    ).all()
    if not rows:
        return 0, []
    return rows[0][0], [event for _, event in rows if event is not None]


def events_after(user_id, cursor, limit):
    """Up to `limit` committed events of the user with seq > cursor, oldest first."""
    query = (
        select(StreamEvent)
        .where(StreamEvent.user_id == user_id, StreamEvent.seq > cursor)
        .order_by(StreamEvent.seq)
        .limit(limit)
    )
    return list(db.session.scalars(query))


def publish_committed():
    """Render and publish the events of this session's committed transactions. Never raises for
    a broker failure: the event is in SQL and every stream replays it on reconnect."""
    session = db.session()
    committed = session.info.pop(COMMITTED, None)
    if not committed:
        return
    # The renders only read, right after the commit: without a transaction of their own.
    with without_a_transaction(session):
        if has_request_context():
            rendered = registry.render_all(committed)
        else:
            with current_app.test_request_context():
                rendered = registry.render_all(committed)
    machinery = current()
    messages = _payloads(committed, rendered, machinery.config["REALTIME_FANOUT_MIN"])
    try:
        machinery.broker.publish_many(messages)
    except Exception as exc:
        metrics.PUBLISH_FAILURES.inc()
        log.warning("could not publish %d stream event(s), clients will replay them: %s", len(committed), exc)
    else:
        metrics.EVENTS_PUBLISHED.inc(len(committed))


def _payloads(events, rendered, fanout_min):
    """The broker messages of these rendered events, in their order: [(user id, payload)]. The
    events of one `record` for `fanout_min` users or more become one fan-out payload (to `ALL`)."""
    batches = {}  # in the order of their first event
    for event, html in zip(events, rendered):
        batches.setdefault(event.batch or id(event), []).append((event, html))
    messages = []
    memo = {}  # a part shared by many recipients is turned into `data:` lines once
    for batch in batches.values():
        if len(batch) >= fanout_min:
            messages.append((ALL, fanout_payload(batch[0][0].kind, [(e.user_id, e.seq, html) for e, html in batch])))
        else:
            messages.extend((e.user_id, durable_payload(e.seq, e.kind, data_lines(html, memo))) for e, html in batch)
    return messages


# Session transaction events ---------------------------------------------------------------------

def _after_commit(session):
    if session.in_nested_transaction():
        return  # a savepoint was released; the outer transaction may still roll back
    staged = session.info.pop(STAGED, None)
    if staged:
        session.info.setdefault(COMMITTED, []).extend(e for _, e in staged)


def _after_soft_rollback(session, previous_transaction):
    staged = session.info.get(STAGED)
    if staged:
        staged[:] = [(t, e) for t, e in staged if not _within(t, previous_transaction)]


def _after_transaction_end(session, transaction):
    if transaction.parent is None:
        session.info.pop(STAGED, None)


def _within(transaction, ancestor):
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


_LISTENERS = {
    "after_commit": _after_commit,
    "after_soft_rollback": _after_soft_rollback,
    "after_transaction_end": _after_transaction_end,
}


def listen():
    """Attach the transaction listeners to the app's session class (once per process)."""
    for name, fn in _LISTENERS.items():
        if not sa_event.contains(db.session, name, fn):
            sa_event.listen(db.session, name, fn)
