"""The event log's retention: what no client can replay any more is removed; a cursor that falls
before what remains gets a `resync`, never a silent gap. Both databases; streams on both brokers."""
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from rentpe import realtime
from rentpe.extensions import db
from rentpe.models_base import utcnow
from rentpe.notifications import worker
from rentpe.realtime import eventlog, retention
from rentpe.realtime.models import StreamEvent


@pytest.fixture
def app_overrides(realtime_overrides):
    return {**realtime_overrides, "STREAM_REPLAY_LIMIT": 3}


@pytest.fixture(autouse=True)
def notes(live):
    realtime.register_renderer("test.note", lambda e: f'<div id="note-{e.data["n"]}">n</div>')


def note(user, n):
    realtime.record([user.id], "test.note", {"n": n})
    db.session.commit()
    realtime.publish_committed()


def backdate(user, up_to_seq, days):
    db.session.execute(update(StreamEvent).where(StreamEvent.user_id == user.id, StreamEvent.seq <= up_to_seq)
                       .values(created_at=utcnow() - timedelta(days=days)))
    db.session.commit()


def seqs(user):
    return db.session.scalars(select(StreamEvent.seq).where(StreamEvent.user_id == user.id)
                              .order_by(StreamEvent.seq)).all()


def test_only_events_old_and_beyond_the_replay_window_go(buyer, seller):
    for n in range(1, 11):
        note(buyer, n)
        note(seller, n)
    backdate(buyer, 8, days=8)  # buyer: 1-8 are old; the newest 3 (8-10) stay whatever their age
    backdate(seller, 4, days=6)  # seller: nothing older than the week
    assert retention.prune(7, keep=3) == 7
    assert seqs(buyer) == [8, 9, 10]
    assert seqs(seller) == list(range(1, 11))
    note(buyer, 11)  # seqs go on where they were, and 8 is no longer among the newest 3
    assert seqs(buyer) == [8, 9, 10, 11]
    assert retention.prune(7, keep=3) == 1
    assert seqs(buyer) == [9, 10, 11]


def test_batches_remove_the_same_as_one_go(buyer, make_user):
    others = [make_user() for _ in range(3)]
    for user in [buyer, *others]:
        for n in range(1, 8):
            note(user, n)
        backdate(user, 7, days=30)
    assert retention.prune(7, keep=2, batch=2) == 4 * 5
    assert db.session.scalar(select(func.count()).select_from(StreamEvent)) == 4 * 2


def test_a_cursor_before_what_remains_resyncs_and_one_after_replays(buyer, buyer_client, open_stream):
    for n in range(1, 7):
        note(buyer, n)
    backdate(buyer, 6, days=8)
    retention.prune(7, keep=3)
    assert seqs(buyer) == [4, 5, 6]
    gone = open_stream(buyer_client, last_event_id=2)  # needs 3, which is gone: no silent gap
    assert gone.messages(1) == [{"id": "6", "event": "resync", "data": "6"}]
    kept = open_stream(buyer_client, last_event_id=3)  # needs 4-6, all there
    assert [m["id"] for m in kept.messages(3)] == ["4", "5", "6"]


def test_the_command_prunes(app, buyer):
    for n in range(1, 6):
        note(buyer, n)
    backdate(buyer, 5, days=3)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["events", "prune"])
    assert result.exit_code == 0, result.output
    assert result.output == "Removed 0 events.\n"  # three days old: inside EVENT_RETENTION_DAYS
    result = runner.invoke(args=["events", "prune", "--days", "2"])
    assert result.output == "Removed 2 events.\n"
    assert seqs(buyer) == [3, 4, 5]


def test_the_notifications_worker_prunes_in_its_rounds(app, buyer):
    for n in range(1, 6):
        note(buyer, n)
    backdate(buyer, 5, days=8)
    user_id, said = buyer.id, []
    worker.run(once=True, echo=said.append, handle_signals=False)  # (it ends its database session)
    assert said == ["events: 2 pruned"]
    assert db.session.scalars(select(StreamEvent.seq).where(StreamEvent.user_id == user_id)).all() == [3, 4, 5]
    assert eventlog.last_seq(user_id) == 5


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite serialises every writer anyway
def test_a_send_does_not_wait_for_a_prune_batch_in_progress(app, buyer, seller, listing, buyer_client):
    from tests.chat_helpers import contact, conversation_id_from

    conversation = conversation_id_from(contact(buyer_client, listing, "first"))
    for n in range(1, 8):
        note(buyer, n)
        note(seller, n)
    backdate(buyer, 100, days=30)
    backdate(seller, 100, days=30)
    with db.engine.connect() as pruning:  # a batch deleting both people's old events, not committed yet
        deleted = pruning.execute(retention._DELETE, {"first": 0, "last": 2**31 - 1, "keep": 3,
                                                     "cutoff": utcnow() - timedelta(days=7), "batch": 1000}).rowcount
        assert deleted > 0
        started = time.monotonic()
        response = buyer_client.post(f"/conversations/{conversation}/messages",
                                     {"body": "during the prune", "client_key": "prune-key-0001"}, htmx=True)
        assert response.status_code == 200
        assert time.monotonic() - started < 1
        pruning.rollback()
