"""Edits, deletions and reactions over the live stream, on both brokers and both databases: every
open tab of every member (the actor's other tabs too) gets the message's new state and, for an edit
or deletion of the last message, the inbox preview; a stream that reconnects replays them; the
message is rendered once for all recipients; a stranger gets nothing."""
import pytest

from rentpe.chat import changes
from rentpe.chat.models import Conversation
from rentpe.extensions import db
from rentpe.realtime.models import StreamEvent
from tests.board_helpers import make_board, send as board_send
from tests.chat_helpers import contact, conversation_id_from, messages_in
from tests.helpers import jpeg, upload
from tests.stream_helpers import Stream, broker, broker_overrides, people  # noqa: F401 (fixtures)


@pytest.fixture
def app_overrides(broker, tmp_path):
    return {**broker_overrides(broker), "UPLOAD_FOLDER": str(tmp_path / "uploads")}


def last_seq(user_id):
    return db.session.scalar(db.select(db.func.coalesce(db.func.max(StreamEvent.seq), 0))
                             .where(StreamEvent.user_id == user_id)) or 0


def changed_events(stream, message_id):
    return [e for e in stream.events() if e["id"] and f'id="msg-{message_id}"' in e["data"]]


@pytest.fixture
def thread(people, listing, make_client, buyer):
    cid = conversation_id_from(contact(people["buyer"], listing, "Is the hall free on 12 Decembr?"))
    other_tab = make_client()
    other_tab.login(buyer)
    return {"cid": cid, "message": messages_in(cid)[-1], "other_tab": other_tab, **people}


def test_an_edit_reaches_every_tab_and_the_inbox_preview_live(thread, buyer, seller):
    message, cid = thread["message"], thread["cid"]
    streams = {name: Stream(thread[name], f"/events?after={last_seq(user.id)}")
               for name, user in (("seller", seller), ("other_tab", buyer))}
    stranger = Stream(thread["stranger"])
    try:
        for s in (*streams.values(), stranger):
            assert s.contains(": open")
        assert thread["buyer"].post(f"/messages/{message.id}/edit",
                                    {"body": "Is the hall free on 12 December?"}).status_code == 303
        for s in streams.values():
            assert s.read_until(lambda s: changed_events(s, message.id))
            [event] = changed_events(s, message.id)
            assert 'hx-swap-oob="true"' in event["data"] and 'class="msg-edited">edited<' in event["data"]
            assert "Decembr" not in event["data"]
        # The preview of the inbox row (sent with the event) says the new text.
        assert any(f'id="inbox-row-{cid}"' in e["data"] and "12 December?" in e["data"]
                   for e in streams["seller"].events())
        stranger.read_for(0.3)
        assert "December" not in stranger.text and f"msg-{message.id}" not in stranger.text
    finally:
        for s in (*streams.values(), stranger):
            s.close()


def test_a_deletion_reaches_every_tab_with_the_badge_and_replays(thread, buyer, seller):
    message, cid = thread["message"], thread["cid"]
    start = last_seq(seller.id)
    live = Stream(thread["seller"], f"/events?after={start}")
    try:
        assert live.contains(": open")
        assert thread["buyer"].post(f"/messages/{message.id}/delete").status_code == 303
        assert live.read_until(lambda s: changed_events(s, message.id))
        [event] = changed_events(live, message.id)
        assert "Message deleted" in event["data"]
        assert "Decembr" not in live.text.split(": open", 1)[1]
        assert 'id="unread-badge"' in event["data"] and 'data-count="0"' in event["data"]
        assert any(f'id="inbox-row-{cid}"' in e["data"] and "Message deleted" in e["data"] for e in live.events())
    finally:
        live.close()
    # A tab that was offline replays the deletion from its cursor: shown once, as it is now.
    replay = Stream(thread["seller"], headers={"Last-Event-ID": str(start)})
    try:
        assert replay.read_until(lambda s: changed_events(s, message.id))
        replay.read_for(0.3)
        assert len(changed_events(replay, message.id)) == 1
        assert "Decembr" not in replay.text
    finally:
        replay.close()


def test_reactions_are_live_replayed_and_move_no_badge(thread, buyer, seller):
    message = thread["message"]
    start = last_seq(buyer.id)
    live = Stream(thread["other_tab"], f"/events?after={start}")
    try:
        assert live.contains(": open")
        url = f"/messages/{message.id}/reactions"
        assert thread["seller"].post(url, {"emoji": "🎉"}).status_code == 303
        assert live.read_until(lambda s: changed_events(s, message.id))
        [event] = changed_events(live, message.id)
        assert f'id="msg-{message.id}-reactions"' in event["data"] and f'data-by=" {seller.id} "' in event["data"]
        assert "unread-badge" not in event["data"] and "inbox-row" not in event["data"]
        assert thread["seller"].post(url, {"emoji": "🎉"}).status_code == 303  # taken back
        assert live.read_until(lambda s: len(changed_events(s, message.id)) == 2)
        assert "🎉 1" not in changed_events(live, message.id)[-1]["data"]
        ids = live.ids()
    finally:
        live.close()
    # Reconnecting after the first: the second replays, showing the state now (no reaction).
    replay = Stream(thread["other_tab"], headers={"Last-Event-ID": str(ids[0])})
    try:
        assert replay.read_until(lambda s: len(changed_events(s, message.id)) >= 1)
        replay.read_for(0.3)
        assert [int(e["id"]) for e in changed_events(replay, message.id)] == [ids[1]]
        assert "🎉 1" not in replay.text
    finally:
        replay.close()


def test_a_change_is_rendered_once_for_every_member_of_a_board(app, make_client, buyer, seller, make_seller):
    from flask import template_rendered

    sellers = [seller, *(make_seller(display_name=f"Seller {i}") for i in range(4))]
    bid = make_board(buyer, sellers=sellers)
    owner = make_client()
    owner.login(buyer)
    assert board_send(owner, bid, "Stage plan attached", "board-render-01").status_code == 200
    message = messages_in(bid)[-1]
    rendered = []

    def seen(sender, template, context, **extra):
        rendered.append(template.name)

    template_rendered.connect(seen, app)
    try:
        changes.toggle_reaction(db.session.get(Conversation, bid), message, sellers[1], "👍")
    finally:
        template_rendered.disconnect(seen, app)
    assert rendered.count("chat/_message.html") == 1
    events = db.session.scalars(db.select(StreamEvent).where(StreamEvent.kind == changes.CHANGED)).all()
    assert sorted(e.user_id for e in events) == sorted([buyer.id, *(s.id for s in sellers)])


def test_a_message_with_photos_arrives_live_with_its_thumbnails(thread, seller):
    live = Stream(thread["seller"], f"/events?after={last_seq(seller.id)}")
    try:
        assert live.contains(": open")
        response = thread["buyer"].post(f"/conversations/{thread['cid']}/messages", {
            "body": "This stage", "client_key": "photo-live-0001",
            "photos": [upload(jpeg(), "a.jpg"), upload(jpeg((300, 400)), "b.jpg")]}, htmx=True)
        assert response.status_code == 200 and response.get_data(as_text=True).count("<img") == 2
        message = messages_in(thread["cid"])[-1]
        assert live.read_until(lambda s: any(e["id"] and f'id="msg-{message.id}"' in e["data"] for e in s.events()))
        [event] = [e for e in live.events() if e["id"] and f'id="msg-{message.id}"' in e["data"]]
        assert event["data"].count(f'src="/messages/{message.id}/photos/thumb/') == 2
        assert "📷 Photo" not in live.text  # the preview is the text when there is one
    finally:
        live.close()
