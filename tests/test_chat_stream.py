"""Chat over the live stream: who gets which event, replay, receipts, typing — on both brokers."""
import gc
import time

import pytest

from rentpe.chat.models import Participant
from rentpe.extensions import db
from rentpe.realtime.stream import Stream as RealtimeStream
from tests.chat_helpers import contact, conversation_id_from, messages_in
from tests.stream_helpers import Stream, broker, broker_overrides, people  # noqa: F401 (fixtures)


@pytest.fixture
def app_overrides(broker):
    return broker_overrides(broker)


def send(client, cid, body, key):
    response = client.post(f"/conversations/{cid}/messages", {"body": body, "client_key": key}, htmx=True)
    assert response.status_code == 200
    return response


def test_a_new_conversation_reaches_the_seller_stranger_sees_nothing(people, listing):
    seller_stream = Stream(people["seller"])
    stranger_stream = Stream(people["stranger"])
    assert seller_stream.contains(": open")
    cid = conversation_id_from(contact(people["buyer"], listing, "Is the hall free on 12 Dec?"))
    assert seller_stream.contains("Is the hall free on 12 Dec?")
    seller_stream.read_until(lambda s: any(e["id"] for e in s.events() if "12 Dec" in e["data"]))
    [message_event] = [e for e in seller_stream.events() if e["id"] and f"conv-{cid}-messages" in e["data"]]
    assert message_event["data"].count("Is the hall free on 12 Dec?") == 1
    assert 'id="unread-badge"' in message_event["data"]
    assert any(f'id="inbox-row-{cid}"' in e["data"] and e["id"] is None for e in seller_stream.events())
    stranger_stream.read_for(0.3)
    assert "12 Dec" not in stranger_stream.text and f"conv-{cid}" not in stranger_stream.text
    assert f"inbox-row-{cid}" not in stranger_stream.text
    for s in (seller_stream, stranger_stream):
        s.close()


def test_the_senders_other_tabs_get_their_own_message(people, listing, make_client, buyer):
    cid = conversation_id_from(contact(people["buyer"], listing, "first"))
    other_tab = make_client()
    other_tab.login(buyer)
    stream = Stream(other_tab, f"/events?after={_last_seq(buyer.id)}")
    send(people["buyer"], cid, "from my phone", "tab-key-000001")
    assert stream.contains("from my phone")
    # The same message every recipient gets; the page's viewer rule makes it look like mine.
    assert f'data-author="{buyer.id}" class="msg"' in stream.text and "theirs" not in stream.text
    stream.close()


def test_offline_messages_replay_in_order_after_last_event_id(people, listing, seller):
    cid = conversation_id_from(contact(people["buyer"], listing, "one"))
    send(people["buyer"], cid, "two", "replay-key-002")
    send(people["buyer"], cid, "three", "replay-key-003")
    stream = Stream(people["seller"], "/events?after=0")
    assert stream.contains("three")
    with_ids = "".join(e["data"] for e in stream.events() if e["id"])
    positions = [with_ids.find(f'class="msg-body">{b}<') for b in ("one", "two", "three")]
    assert -1 not in positions and positions == sorted(positions)
    first_id = stream.ids()[0]
    stream.close()
    resumed = Stream(people["seller"], headers={"Last-Event-ID": str(first_id)})
    assert resumed.contains("three")
    assert 'class="msg-body">one<' not in resumed.text and 'class="msg-body">two<' in resumed.text
    resumed.close()


def test_delivery_to_a_stream_turns_the_senders_receipt_to_delivered(people, listing, seller, buyer):
    cid = conversation_id_from(contact(people["buyer"], listing, "ping"))
    buyer_stream = Stream(people["buyer"], f"/events?after={_last_seq(buyer.id)}")
    seller_stream = Stream(people["seller"], "/events?after=0")
    assert seller_stream.contains("ping")
    seller_stream.read_for(0.3)  # the hook runs once the write is done: let the generator go on
    assert buyer_stream.contains('data-status="delivered"')
    [message] = messages_in(cid)
    assert db.session.get(Participant, (cid, seller.id)).delivered_message_id == message.id
    for s in (buyer_stream, seller_stream):
        s.close()


def test_a_stream_decodes_its_session_once_and_its_deliveries_are_recorded_for_it(people, listing, seller, buyer,
                                                                                  app, monkeypatch):
    """Delivery receipts come from the stream's delivery cursor, recorded by the watch in rounds:
    the stream itself neither decodes the session again nor writes anything per message."""
    opened = []
    interface = app.session_interface
    original = type(interface).open_session

    def counting(self, app_, request):
        opened.append(request.path)
        return original(self, app_, request)

    monkeypatch.setattr(type(interface), "open_session", counting)
    seller_stream = Stream(people["seller"], "/events?after=0")
    assert opened == ["/events"]
    for i in range(3):
        contact(people["buyer"], listing, f"question {i}")
        assert seller_stream.contains(f"question {i}")
    cid = conversation_id_from(contact(people["buyer"], listing, "last"))
    assert seller_stream.contains(">last<")
    last_id = messages_in(cid)[-1].id
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        seller_stream.read_for(0.1)  # the write returned; the watch's round follows
        db.session.expire_all()
        if db.session.get(Participant, (cid, seller.id)).delivered_message_id == last_id:
            break
    assert db.session.get(Participant, (cid, seller.id)).delivered_message_id == last_id
    assert opened.count("/events") == 1, opened
    seller_stream.close()


def test_an_open_stream_holds_no_request(people, listing, seller, app):
    """A stream stays open for minutes, most of them idle: it keeps the environ it was opened with
    (its hooks rebuild a request from it), not the request Werkzeug files into it, nor the ones
    its hooks build."""
    def requests_held():
        [open_stream] = [o for o in gc.get_objects() if type(o) is RealtimeStream and o.user_id == seller.id]
        held = list(vars(open_stream).values()) + list(open_stream.environ.values())
        return [value for value in held if isinstance(value, app.request_class)]

    stream = Stream(people["seller"], "/events?after=0")
    assert stream.contains(": open")
    assert requests_held() == []
    for i in range(2):
        contact(people["buyer"], listing, f"are you there {i}")
        assert stream.contains(f"are you there {i}")
    stream.read_for(0.3)  # the writes have returned
    assert requests_held() == []
    stream.close()


def test_seen_reaches_the_sender_live(people, listing, seller, buyer):
    cid = conversation_id_from(contact(people["buyer"], listing, "hello"))
    buyer_stream = Stream(people["buyer"], f"/events?after={_last_seq(buyer.id)}")
    [message] = messages_in(cid)
    people["seller"].post(f"/conversations/{cid}/read", {"up_to": str(message.id)})
    assert buyer_stream.contains('data-status="seen"')
    buyer_stream.close()


def test_typing_is_ephemeral_and_only_for_the_other_side(people, listing, buyer, seller):
    cid = conversation_id_from(contact(people["buyer"], listing, "hello"))
    seller_stream = Stream(people["seller"], f"/events?after={_last_seq(seller.id)}")
    buyer_stream = Stream(people["buyer"], f"/events?after={_last_seq(buyer.id)}")
    assert seller_stream.contains(": open") and buyer_stream.contains(": open")
    assert people["buyer"].post(f"/conversations/{cid}/typing").status_code == 204
    assert seller_stream.contains("is typing")
    [typing] = [e for e in seller_stream.events() if "is typing" in e["data"]]
    assert typing["id"] is None and f'id="conv-{cid}-typing"' in typing["data"]
    buyer_stream.read_for(0.3)
    assert "is typing" not in buyer_stream.text
    for s in (seller_stream, buyer_stream):
        s.close()


def test_the_badge_is_sent_on_every_stream_open(people, listing):
    contact(people["buyer"], listing, "hello")
    stream = Stream(people["seller"], "/events?after=999999")
    assert stream.contains('id="unread-badge"')
    stream.close()


def _last_seq(user_id):
    from rentpe import realtime

    return realtime.last_seq(user_id)


def test_a_messages_live_frames_are_what_a_replay_renders(people, listing, seller, buyer):
    """The live frames are rendered from the rows the send read back under its lock and kept
    through the commit; a replay renders the same event from a fresh read of the database."""
    cid = conversation_id_from(contact(people["buyer"], listing, "first"))
    send(people["seller"], cid, "Yes, it is free", "live-key-0001")
    before = _last_seq(seller.id)
    live = Stream(people["seller"], f"/events?after={before}")
    send(people["buyer"], cid, "Then I book it", "live-key-0002")
    assert live.contains("Then I book it")
    live.read_until(lambda s: any(e["id"] and "Then I book it" in e["data"] for e in s.events()))
    live.close()
    replay = Stream(people["seller"], f"/events?after={before}")
    assert replay.contains("Then I book it")
    replay.read_until(lambda s: any(e["id"] and "Then I book it" in e["data"] for e in s.events()))
    replay.close()

    def frames(stream):
        return [e for e in stream.events() if e["event"] != "snapshot" and (e["id"] or "inbox-row" in e["data"])]

    assert frames(live) == frames(replay)
    [message] = [e for e in frames(live) if e["id"]]
    assert 'data-count="1"' in message["data"]  # the seller's unread badge: one from the buyer since their reply
