"""Event boards over the live stream, on both brokers: every current member gets the board's
events in every tab, a removed member stops getting them at once, typing, presence, seen-by and
the owner's removals arrive live."""
import re

import pytest

from rentpe import realtime
from rentpe.chat import events as chat_events
from rentpe.chat.boards import services as board_services
from rentpe.chat.models import SELLER, Conversation
from rentpe.extensions import db
from tests.board_helpers import make_board, messages_in, send
from tests.chat_helpers import text_shown_to
from tests.stream_helpers import Stream, broker, broker_overrides  # noqa: F401 (fixture)


@pytest.fixture
def app_overrides(broker):
    return broker_overrides(broker)


@pytest.fixture
def people(make_client, buyer, seller, make_seller, make_user):
    """Asha owns the board; Ravi and Lights Co are sellers in it; Meera is not (yet)."""
    users = {"asha": buyer, "ravi": seller, "lights": make_seller(display_name="Lights Co"),
             "meera": make_user(display_name="Meera Shah")}
    clients = {}
    for name, user in users.items():
        clients[name] = make_client()
        clients[name].login(user)
    return users, clients


@pytest.fixture
def board_id(people):
    users, _ = people
    return make_board(users["asha"], sellers=[users["ravi"], users["lights"]])


def open_stream(client, user):
    stream = Stream(client, f"/events?after={realtime.last_seq(user.id)}")
    assert stream.contains(": open")
    return stream


def board(board_id):
    db.session.expire_all()
    return db.session.get(Conversation, board_id)


def test_a_message_reaches_every_member_once_and_no_one_else(people, board_id):
    users, clients = people
    streams = {name: open_stream(clients[name], users[name]) for name in users}
    send(clients["ravi"], board_id, "Mandap quote is ready", "live-key-00001")
    for name in ("asha", "ravi", "lights"):
        s = streams[name]
        assert s.read_until(lambda st: any(e["id"] and "Mandap quote" in e["data"] for e in st.events())), name
        [event] = [e for e in s.events() if e["id"] and f"conv-{board_id}-messages" in e["data"]]
        assert event["data"].count("Mandap quote is ready") == 1
        assert any(f'id="inbox-row-{board_id}"' in e["data"] and "board-row" in e["data"] for e in s.events())
    # Every member got the very same message; the sender's name is for the others' pages only.
    fragments = {name: re.findall(r'<li id="msg-\d+".*?</li>', streams[name].text, re.S)
                 for name in ("asha", "ravi", "lights")}
    assert fragments["asha"] == fragments["ravi"] == fragments["lights"] and len(fragments["asha"]) == 1
    [fragment] = fragments["asha"]
    assert f'data-author="{users["ravi"].id}"' in fragment
    assert "Ravi Kumar" in text_shown_to(fragment, users["asha"])
    assert "Ravi Kumar" not in text_shown_to(fragment, users["ravi"])
    streams["meera"].read_for(0.3)
    assert "Mandap" not in streams["meera"].text and f"conv-{board_id}" not in streams["meera"].text
    for s in streams.values():
        s.close()


def test_a_removed_member_sees_the_notice_and_nothing_after_it(people, board_id):
    users, clients = people
    ravi_stream = open_stream(clients["ravi"], users["ravi"])
    lights_stream = open_stream(clients["lights"], users["lights"])
    send(clients["asha"], board_id, "Before the change", "remove-key-001")
    assert ravi_stream.contains("Before the change")
    clients["asha"].post(f"/boards/{board_id}/members/{users['ravi'].id}/remove")
    assert ravi_stream.contains("You were removed from this board.")
    [notice] = [e for e in ravi_stream.events() if "You were removed" in e["data"]]
    assert notice["id"] is not None and f'id="conv-{board_id}" class="conversation board-gone" hx-swap-oob="true"' in notice["data"]
    assert f'hx-target="#inbox-row-{board_id}" hx-swap="delete"' in notice["data"]
    assert lights_stream.contains(f'id="conv-{board_id}-members"')
    send(clients["asha"], board_id, "After the change", "remove-key-002")
    clients["asha"].post(f"/conversations/{board_id}/typing")
    assert lights_stream.contains("After the change")
    ravi_stream.read_for(0.3)
    assert "After the change" not in ravi_stream.text and "data-name=" not in ravi_stream.text
    for s in (ravi_stream, lights_stream):
        s.close()


def test_replay_never_shows_a_former_member_the_board(people, board_id):
    users, clients = people
    send(clients["asha"], board_id, "Sent while Ravi was a member", "replay-key-001")
    board_services.remove_member(board(board_id), users["asha"], users["ravi"].id)
    stream = Stream(clients["ravi"], "/events?after=0")
    assert stream.contains("You were removed from this board.")
    assert "Sent while Ravi was a member" not in stream.text
    assert f"inbox-row-{board_id}\" data-key" not in stream.text
    stream.close()


def test_members_replay_board_messages_in_order_after_last_event_id(people, board_id):
    users, clients = people
    for i, body in enumerate(("one", "two", "three")):
        send(clients["ravi"], board_id, body, f"order-key-{i:04d}")
    stream = Stream(clients["lights"], "/events?after=0")
    assert stream.contains(">three<")
    text = "".join(e["data"] for e in stream.events() if e["id"])
    positions = [text.find(f'class="msg-body">{b}<') for b in ("one", "two", "three")]
    assert -1 not in positions and positions == sorted(positions)
    first = min(int(e["id"]) for e in stream.events() if e["id"] and ">one<" in e["data"])
    stream.close()
    resumed = Stream(clients["lights"], headers={"Last-Event-ID": str(first)})
    assert resumed.contains(">three<") and ">one<" not in resumed.text
    resumed.close()


def test_typing_names_each_typist_to_the_others_only(people, board_id):
    users, clients = people
    streams = {name: open_stream(clients[name], users[name]) for name in ("asha", "ravi", "meera")}
    assert clients["lights"].post(f"/conversations/{board_id}/typing").status_code == 204
    assert streams["asha"].contains(f'id="conv-{board_id}-typist-{users["lights"].id}" data-name="Lights"')
    [typing] = [e for e in streams["asha"].events() if "typist" in e["data"]]
    assert typing["id"] is None and f'hx-target="#conv-{board_id}-typists" hx-swap="upsert"' in typing["data"]
    assert streams["ravi"].contains('data-name="Lights"')
    send(clients["lights"], board_id, "done typing", "typing-key-001")
    assert streams["asha"].contains(f'<span id="conv-{board_id}-typist-{users["lights"].id}" hx-swap-oob="delete">')
    streams["meera"].read_for(0.3)
    assert "typist" not in streams["meera"].text
    for s in streams.values():
        s.close()


def test_seen_by_reaches_the_author_live(people, board_id):
    users, clients = people
    send(clients["asha"], board_id, "Can everyone do Saturday?", "seen-key-00001")
    asha_stream = open_stream(clients["asha"], users["asha"])
    [message] = messages_in(board_id)
    assert clients["ravi"].post(f"/conversations/{board_id}/read", {"up_to": str(message.id)}).status_code == 204
    assert asha_stream.contains("<summary>Seen by 1 of 2</summary>")
    asha_stream.close()


def seen_by_lines(stream, board_id):
    """The seen-by lines of the board in what the stream has sent so far, oldest first."""
    return re.findall(rf'<div id="conv-{board_id}-receipt" class="receipt seen-by".*?</div>', stream.text, re.S)


def read_last(client, board_id):
    [*_, message] = messages_in(board_id)
    assert client.post(f"/conversations/{board_id}/read", {"up_to": str(message.id)}).status_code == 204


def test_seen_by_is_right_live_on_every_members_page_the_readers_own_included(people, board_id):
    users, clients = people
    send(clients["asha"], board_id, "Can everyone do Saturday?", "seen-key-00002")
    streams = {name: open_stream(clients[name], users[name]) for name in ("asha", "ravi", "lights")}

    read_last(clients["ravi"], board_id)
    for name, stream in streams.items():
        assert stream.contains("<summary>Seen by 1 of 2</summary>"), name
        [line] = seen_by_lines(stream, board_id)
        assert re.search(r"Seen: .*Ravi", line) and "Not yet: Lights Co" in line, (name, line)
    # The reader's own tabs and the author's get it with their read events (replayed after a cut);
    # the third member's open page gets the same line, rendered once, without an event of its own.
    assert any(e["id"] and "Seen by 1 of 2" in e["data"] for e in streams["ravi"].events())
    assert any(e["id"] and "Seen by 1 of 2" in e["data"] for e in streams["asha"].events())
    assert [e["id"] for e in streams["lights"].events() if "Seen by" in e["data"]] == [None]

    read_last(clients["lights"], board_id)
    for name, stream in streams.items():
        assert stream.contains("<summary>Seen by 2 of 2</summary>"), name
        assert "Not yet" not in seen_by_lines(stream, board_id)[-1], name
    for stream in streams.values():
        stream.close()


def test_a_read_in_a_big_board_tells_only_the_reader_and_the_author(people, board_id, monkeypatch):
    """Past `SEEN_BY_LIVE_MEMBERS` a read costs two events, not one per member: the other members'
    lines catch up with the next message and on page load."""
    monkeypatch.setattr(chat_events, "SEEN_BY_LIVE_MEMBERS", 2)
    users, clients = people
    send(clients["asha"], board_id, "Can everyone do Saturday?", "seen-key-00003")
    streams = {name: open_stream(clients[name], users[name]) for name in ("asha", "ravi", "lights")}
    read_last(clients["ravi"], board_id)
    assert streams["ravi"].contains("<summary>Seen by 1 of 2</summary>")
    assert streams["asha"].contains("<summary>Seen by 1 of 2</summary>")
    assert not streams["lights"].read_for(0.5).contains("Seen by", timeout=0)
    # Her page, loaded, shows the line as it is (opening the board read it: 2 of 2).
    assert "<summary>Seen by 2 of 2</summary>" in clients["lights"].get(f"/boards/{board_id}").get_data(as_text=True)
    for stream in streams.values():
        stream.close()


def test_an_owner_removal_replaces_the_message_in_every_open_tab(people, board_id):
    users, clients = people
    send(clients["ravi"], board_id, "Pay me outside RentPe", "hide-key-00001")
    streams = {name: open_stream(clients[name], users[name]) for name in ("asha", "ravi", "lights")}
    [message] = messages_in(board_id)
    clients["asha"].post(f"/boards/{board_id}/messages/{message.id}/remove")
    for name, s in streams.items():
        assert s.contains("This message was removed by the board owner."), name
        [event] = [e for e in s.events() if "removed by the board owner" in e["data"]]
        assert event["id"] is not None and f'id="msg-{message.id}"' in event["data"] and 'hx-swap-oob="true"' in event["data"]
        assert "Pay me outside" not in s.text
        s.close()


def test_members_added_later_get_the_board_live_and_see_who_is_online(people, board_id):
    users, clients = people
    meera_stream = open_stream(clients["meera"], users["meera"])
    board_services.add_members(board(board_id), users["asha"], [(users["meera"], SELLER)])
    assert meera_stream.contains(f'id="inbox-row-{board_id}"')
    asha_stream = open_stream(clients["asha"], users["asha"])
    ravi_stream = open_stream(clients["ravi"], users["ravi"])
    assert asha_stream.contains(f'id="presence-{users["ravi"].id}" class="presence online" hx-swap-oob="true"')
    page = clients["lights"].get(f"/boards/{board_id}").get_data(as_text=True)
    for name in ("asha", "ravi", "meera"):
        assert f'id="presence-{users[name].id}" class="presence online"' in page, name
    assert f'id="presence-{users["lights"].id}" class="presence"' in page
    for s in (meera_stream, asha_stream, ravi_stream):
        s.close()


def test_closing_the_board_swaps_every_composer_for_the_notice(people, board_id):
    users, clients = people
    ravi_stream = open_stream(clients["ravi"], users["ravi"])
    clients["asha"].post(f"/boards/{board_id}/close")
    assert ravi_stream.contains(f'id="conv-{board_id}-composer" class="board-closed"')
    assert f'id="conv-{board_id}-share" hidden hx-swap-oob="true"' in ravi_stream.text
    ravi_stream.close()
