"""The event log: one row per recipient, with a per-user seq that has no gaps and follows commit
order, even with many writers at once."""
import re
import threading

import pytest
from sqlalchemy import select

from rentpe import realtime
from rentpe.extensions import db
from rentpe.realtime.models import StreamEvent

NOTE = re.compile(r'id="note-([^"]+)"')


@pytest.fixture
def app_overrides(realtime_overrides):
    return realtime_overrides


@pytest.fixture(autouse=True)
def notes(live):
    realtime.register_renderer("test.note", lambda e: f'<div id="note-{e.data["n"]}">…</div>')


def seqs(user):
    return list(db.session.scalars(select(StreamEvent.seq).where(StreamEvent.user_id == user.id).order_by(StreamEvent.seq)))


def test_record_writes_one_row_per_recipient_with_their_next_seq(buyer, seller, moderator):
    realtime.record([seller.id], "test.note", {"n": 1})
    events = realtime.record([moderator.id, buyer.id, seller.id, buyer.id], "test.note", {"n": 2})
    db.session.commit()
    assert [(e.user_id, e.seq) for e in events] == sorted([(buyer.id, 1), (seller.id, 2), (moderator.id, 1)])
    assert seqs(seller) == [1, 2] and seqs(buyer) == [1]
    row = db.session.get(StreamEvent, (buyer.id, 1))
    assert (row.kind, row.data) == ("test.note", {"n": 2})
    assert realtime.last_seq(seller.id) == 2
    assert realtime.last_seq(10**6) == 0


def test_a_rolled_back_event_leaves_no_gap(buyer):
    realtime.record([buyer.id], "test.note", {"n": "gone"})
    db.session.rollback()
    realtime.record([buyer.id], "test.note", {"n": "kept"})
    db.session.commit()
    assert seqs(buyer) == [1]
    assert db.session.get(StreamEvent, (buyer.id, 1)).data == {"n": "kept"}


@pytest.mark.parametrize("kind", ["", "x" * 41, "has space", "new\nline"])
def test_kinds_that_cannot_travel_are_refused(buyer, kind):
    with pytest.raises(ValueError):
        realtime.record([buyer.id], kind, {})


def test_concurrent_writers_get_gap_free_seqs_delivered_in_order(app, buyer, seller, client, open_stream):
    """Four writers, each in its own thread and app context, commit for the same two users at
    once. Each user's seqs are 1..N, and a stream open throughout shows every event exactly once
    with an `id:` that only moves forward."""
    writers, rounds = 4, 10
    total = writers * rounds
    client.login(buyer)
    stream = open_stream(client, after=0)
    users = [buyer.id, seller.id]
    start = threading.Barrier(writers)
    failures = []

    def write(w):
        try:
            with app.app_context():
                start.wait()
                for r in range(rounds):
                    realtime.record(users, "test.note", {"n": f"{w}-{r}"})
                    db.session.commit()
                    realtime.publish_committed()
        except Exception as exc:  # reported below, with the thread's exception
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert seqs(buyer) == list(range(1, total + 1)) and seqs(seller) == list(range(1, total + 1))

    messages = stream.read_until(lambda m: m.get("id") == str(total), timeout=10)
    shown = [n for m in messages if m.get("data") for n in NOTE.findall(m["data"])]
    assert sorted(shown) == sorted(f"{w}-{r}" for w in range(writers) for r in range(rounds))
    ids = [int(m["id"]) for m in messages if m.get("id")]
    assert ids == sorted(set(ids)) and ids[-1] == total
    # Each writer's own events were committed, and so numbered, in its order.
    by_seq = {e.seq: e.data["n"] for e in db.session.scalars(select(StreamEvent).where(StreamEvent.user_id == buyer.id))}
    for w in range(writers):
        mine = [seq for seq, n in sorted(by_seq.items()) if n.startswith(f"{w}-")]
        assert [by_seq[s] for s in mine] == [f"{w}-{r}" for r in range(rounds)]


def test_seqs_for_more_users_than_one_statement_takes_are_still_gap_free(make_user, monkeypatch):
    from rentpe.realtime import eventlog

    monkeypatch.setattr(eventlog, "SEQ_CHUNK", 3)  # 8 users: three statements of 3, 3 and 2
    users = [make_user() for _ in range(8)]
    realtime.record([u.id for u in users[:4]], "test.note", {"n": 1})
    events = realtime.record([u.id for u in reversed(users)], "test.note", {"n": 2})
    db.session.commit()
    assert [(e.user_id, e.seq) for e in events] == [(u.id, 2 if i < 4 else 1) for i, u in enumerate(users)]
    assert [seqs(u) for u in users] == [[1, 2]] * 4 + [[1]] * 4


def test_a_batch_renderer_renders_a_publish_at_once_and_a_failing_one_falls_back(buyer, seller, moderator):
    from rentpe.realtime import registry

    calls = []

    def many(events):
        calls.append([e.user_id for e in events])
        return [f'<div id="note-{e.data["n"]}-{e.user_id}">batch</div>' for e in events]

    realtime.register_renderer("test.note", lambda e: f'<div id="note-{e.data["n"]}">single</div>', many=many)
    ids = sorted([buyer.id, seller.id, moderator.id])
    events = realtime.record(ids, "test.note", {"n": 7})
    other = realtime.record([buyer.id], "test.other", {})
    assert registry.render_all([*events, *other]) == [
        *(f'<div id="note-7-{u}">batch</div>' for u in ids), None]  # no renderer for test.other
    assert calls == [ids]
    assert registry.render_all(events[:1]) == ['<div id="note-7">single</div>']  # one event: no batch

    realtime.register_renderer("test.note", lambda e: f'<div id="note-{e.data["n"]}">single</div>',
                               many=lambda events: [])  # a wrong answer: each is rendered alone
    assert registry.render_all(events) == ['<div id="note-7">single</div>'] * 3
    db.session.rollback()


def _in_transaction(dbapi_connection):
    """Whether the database holds a transaction open on this connection (as the driver knows it)."""
    if hasattr(dbapi_connection, "info") and hasattr(dbapi_connection.info, "transaction_status"):
        from psycopg2.extensions import TRANSACTION_STATUS_IDLE

        return dbapi_connection.info.transaction_status != TRANSACTION_STATUS_IDLE
    return dbapi_connection.in_transaction  # sqlite3


def _autocommit(dbapi_connection):
    """Whether a PostgreSQL connection commits each statement on its own (SQLite's never do here)."""
    return bool(getattr(dbapi_connection, "autocommit", False)) and hasattr(dbapi_connection, "info")


def test_a_publish_renders_without_opening_a_transaction_and_the_next_write_has_one(buyer, seller):
    """Renders right after a commit only read: on PostgreSQL they run without BEGIN and ROLLBACK
    around them (two round trips per publish). What the session writes after the publish is in a
    transaction again: rolled back, none of it stays."""
    seen = []

    def render(event):
        connection = db.session.connection().connection.dbapi_connection
        name = db.session.scalar(select(StreamEvent.kind).where(StreamEvent.user_id == event.user_id).limit(1))
        seen.append((name, _in_transaction(connection), connection))
        return f'<div id="note-{event.data["n"]}">…</div>'

    realtime.register_renderer("test.note", render)
    realtime.record([buyer.id, seller.id], "test.note", {"n": 1})
    db.session.commit()
    realtime.publish_committed()
    assert [(name, open_) for name, open_, _ in seen] == [("test.note", False)] * 2
    assert not _autocommit(seen[0][2])

    realtime.record([buyer.id], "test.note", {"n": 2})
    db.session.flush()
    assert _in_transaction(db.session.connection().connection.dbapi_connection)
    db.session.rollback()
    assert seqs(buyer) == [1]


def test_a_render_that_fails_outside_a_transaction_returns_its_connection_transactional(buyer):
    """A renderer that fails has its session rolled back in the middle of the publish: the
    connection it had goes back to the pool, and must not go back in autocommit (whoever gets it
    next would write without a transaction)."""
    used = []

    def render(event):
        used.append(db.session.connection().connection.dbapi_connection)
        db.session.execute(select(StreamEvent.seq).limit(1))
        raise RuntimeError("a renderer bug")

    realtime.register_renderer("test.note", render)
    realtime.record([buyer.id], "test.note", {"n": 1})
    db.session.commit()
    realtime.publish_committed()  # logged, nothing published for it, no exception
    assert len(used) == 1
    assert not _autocommit(used[0])
    realtime.record([buyer.id], "test.note", {"n": 2})
    db.session.flush()
    db.session.rollback()
    assert seqs(buyer) == [1]


def test_changes_waiting_for_a_flush_at_a_publish_stay_in_a_transaction(buyer):
    """A render's query flushes what the session holds unflushed: outside a transaction that
    would commit it on the spot. A publish with such changes renders inside a transaction, so a
    rollback afterwards still undoes them."""
    realtime.register_renderer("test.note", lambda e: db.session.scalar(select(StreamEvent.kind).limit(1)))
    realtime.record([buyer.id], "test.note", {"n": 1})
    db.session.commit()
    buyer.display_name = "Changed, never committed"
    realtime.publish_committed()
    db.session.rollback()
    db.session.expire_all()
    assert buyer.display_name != "Changed, never committed"
