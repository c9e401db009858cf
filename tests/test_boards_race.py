"""Membership changes racing with sends (threads, each with its own connection; both databases).

A send and a removal both take the board's row lock, so they are ordered. What must hold for the
removed member, whatever the order: every message event they got was recorded before their
removal (its seq is lower than the removal's), the messages they got are exactly the oldest ones
(nothing sent after their removal), their unread count is 0, and rendering any of their events
now shows nothing of the board but the notice.
"""
import threading
import time

import pytest

from rentpe.accounts.models import User
from rentpe.chat import services
from rentpe.chat.boards import services as board_services
from rentpe.chat.boards.services import BOARD
from rentpe.chat.models import Conversation, Participant
from rentpe.chat.services import BOARD_MESSAGE as MESSAGE
from rentpe.extensions import db
from rentpe.realtime import registry
from rentpe.realtime.models import StreamEvent
from tests.board_helpers import make_board, member_row, messages_in

pytestmark = pytest.mark.slow


def run_threads(app, *targets):
    """Start every target in its own thread and app context at once; return what they raised."""
    barrier, errors = threading.Barrier(len(targets)), []

    def run(target):
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                target()
        except Exception as exc:  # noqa: BLE001 (reported by the caller)
            errors.append(exc)
        finally:
            with app.app_context():
                db.session.remove()

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


def events_of(user, kind):
    user_id = user if isinstance(user, int) else user.id
    return db.session.scalars(
        db.select(StreamEvent).where(StreamEvent.user_id == user_id, StreamEvent.kind == kind).order_by(StreamEvent.seq)
    ).all()


def wait_for_messages(board_id, count, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.remove()
        if len(messages_in(board_id)) >= count:
            return
        time.sleep(0.005)


def assert_nothing_after_removal(board_id, removed):
    [removal] = [e for e in events_of(removed, BOARD) if e.seq == max(x.seq for x in events_of(removed, BOARD))]
    got = events_of(removed, MESSAGE)
    assert all(e.seq < removal.seq for e in got)
    all_ids = [m.id for m in messages_in(board_id)]
    got_ids = [e.data["message_id"] for e in got]
    assert got_ids == all_ids[:len(got_ids)]
    assert member_row(board_id, removed).unread_count == 0
    assert all(registry.render(e) is None for e in got)
    assert "You were removed from this board." in registry.render(removal)
    return got_ids, all_ids


def test_sends_racing_a_removal_never_reach_the_removed_member_after_it(app, buyer, seller, make_seller):
    lights = make_seller(display_name="Lights Co")
    board_id = make_board(buyer, sellers=[seller, lights])
    ids = {"asha": buyer.id, "lights": lights.id}

    def sender(name):
        def send_many():
            for i in range(15):
                services.send_message(db.session.get(Conversation, board_id), db.session.get(User, ids[name]),
                                      f"{name} {i}", f"race-{name}-{i:04d}")
                db.session.remove()
                # People pause between messages: without it two senders can hold SQLite's write
                # lock back to back until all 30 are in, and the removal would race nothing.
                time.sleep(0.01)
        return send_many

    def remover():
        wait_for_messages(board_id, 6)
        board_services.remove_member(db.session.get(Conversation, board_id), db.session.get(User, buyer.id), seller.id)

    assert run_threads(app, sender("asha"), sender("lights"), remover) == []
    db.session.remove()
    got_ids, all_ids = assert_nothing_after_removal(board_id, seller)
    assert len(all_ids) == 30 and 6 <= len(got_ids) < 30
    assert len(events_of(lights, MESSAGE)) == 30


def test_a_member_removed_while_sending_stores_nothing_after_the_removal(app, buyer, seller):
    board_id = make_board(buyer, sellers=[seller])
    outcomes = []

    def ravi_sends():
        for i in range(30):
            try:
                services.send_message(db.session.get(Conversation, board_id), db.session.get(User, seller.id),
                                      f"ravi {i}", f"race-ravi-{i:04d}")
                outcomes.append("sent")
            except services.ChatError as exc:
                outcomes.append((exc.status, str(exc)))
            db.session.remove()

    def remover():
        wait_for_messages(board_id, 5)
        board_services.remove_member(db.session.get(Conversation, board_id), db.session.get(User, buyer.id), seller.id)

    assert run_threads(app, ravi_sends, remover) == []
    db.session.remove()
    sent = outcomes.count("sent")
    refused = [o for o in outcomes if o != "sent"]
    assert 5 <= sent < 30 and outcomes == ["sent"] * sent + refused
    assert set(refused) == {(403, "You are no longer a member of this conversation.")}
    assert [m.body for m in messages_in(board_id)] == [f"ravi {i}" for i in range(sent)]
    assert_nothing_after_removal(board_id, seller)
    assert len(events_of(buyer, MESSAGE)) == sent


def test_a_send_admitted_before_a_removal_but_committed_after_it_skips_the_removed_member(app, buyer, seller, make_seller):
    """The interleaving the lock is for, made deterministic: the sender's request passed the guard
    (with the member list of that moment), then the removal committed, then the send ran."""
    lights = make_seller(display_name="Lights Co")
    board_id = make_board(buyer, sellers=[seller, lights])
    asha_id, ravi_id, lights_id = buyer.id, seller.id, lights.id
    admitted = db.session.get(Conversation, board_id)
    assert {p.user_id for p in admitted.participants} == {asha_id, ravi_id, lights_id}
    with app.app_context():  # another request, with its own session and connection
        board_services.remove_member(db.session.get(Conversation, board_id), db.session.get(User, asha_id), ravi_id)
    message, created = services.send_message(admitted, db.session.get(User, asha_id), "After the removal", "late-key-0001")
    assert created
    message_id = message.id
    db.session.remove()
    assert events_of(ravi_id, MESSAGE) == []
    assert [e.data["message_id"] for e in events_of(lights_id, MESSAGE)] == [message_id]
    assert db.session.get(Participant, (board_id, ravi_id)).unread_count == 0
