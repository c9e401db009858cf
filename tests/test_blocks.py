"""Blocking: from a private conversation one person blocks the other. Neither can then send there
(a clear message in the composer, nothing stored), the blocked person can't open a new
conversation with the blocker, the blocker sees the block with an "Unblock" action, and
unblocking restores everything."""
import pytest

from rentpe.chat import blocks
from tests.chat_helpers import contact, conversation_id_from, message_count, messages_in


def logged_in(make_client, user):
    c = make_client()
    c.login(user)
    return c


@pytest.fixture
def talk(make_client, buyer, seller, listing):
    """A buyer and a seller with a private conversation: (buyer client, seller client, conversation id)."""
    asha, ravi = logged_in(make_client, buyer), logged_in(make_client, seller)
    cid = conversation_id_from(contact(asha, listing, "Is the hall free on 12 December?"))
    return asha, ravi, cid


def send(client, cid, body, key, htmx=True):
    return client.post(f"/conversations/{cid}/messages", {"body": body, "client_key": key}, htmx=htmx)


def test_the_blocker_sees_the_block_and_the_blocked_person_cannot_send(talk, buyer, seller):
    asha, ravi, cid = talk
    page = ravi.get(f"/conversations/{cid}").get_data(as_text=True)
    assert "Block Asha" in page and "block-notice" not in page

    response = ravi.post(f"/conversations/{cid}/block")

    assert response.status_code == 303 and response.headers["Location"].endswith(f"/conversations/{cid}")
    assert blocks.has_blocked(seller.id, buyer.id)
    page = ravi.get(f"/conversations/{cid}").get_data(as_text=True)
    assert "You blocked Asha Verma" in page
    assert f'action="/conversations/{cid}/unblock"' in page and ">Unblock</button>" in page
    before = message_count()
    for htmx in (True, False):
        refused = send(asha, cid, "Hello? Please answer", f"blocked-key-{htmx:d}", htmx=htmx)
        assert refused.status_code == 403
        html = refused.get_data(as_text=True)
        assert f'id="conv-{cid}-composer"' in html and "You can&#39;t send messages to this person." in html
        assert "Hello? Please answer" in html  # what they typed is kept in the composer
    assert message_count() == before


def test_the_blocker_cannot_send_either_until_they_unblock(talk):
    asha, ravi, cid = talk
    ravi.post(f"/conversations/{cid}/block")

    refused = send(ravi, cid, "One last thing", "blocker-key-1")
    assert refused.status_code == 403
    assert "You blocked this person. Unblock them to send a message." in refused.get_data(as_text=True)

    assert ravi.post(f"/conversations/{cid}/unblock").status_code == 303
    assert "block-notice" not in ravi.get(f"/conversations/{cid}").get_data(as_text=True)
    assert send(ravi, cid, "Yes, it is free", "after-unblock-1").status_code == 200
    assert send(asha, cid, "Great, booking it", "after-unblock-2").status_code == 200
    assert [m.body for m in messages_in(cid)][-2:] == ["Yes, it is free", "Great, booking it"]


def test_a_retry_of_a_message_stored_before_the_block_gets_that_message_not_a_refusal(talk):
    asha, ravi, cid = talk
    assert send(asha, cid, "Can we see the hall on Sunday?", "before-block-1").status_code == 200
    ravi.post(f"/conversations/{cid}/block")
    stored = message_count()

    retry = send(asha, cid, "Can we see the hall on Sunday?", "before-block-1")  # the answer was lost

    assert retry.status_code == 200 and "Can we see the hall on Sunday?" in retry.get_data(as_text=True)
    assert message_count() == stored
    assert send(asha, cid, "Hello?", "after-block-1").status_code == 403


def test_a_blocked_buyer_cannot_start_a_conversation_from_another_listing(talk, make_listing, seller):
    asha, ravi, cid = talk
    ravi.post(f"/conversations/{cid}/block")
    other = make_listing(seller=seller, title="Fairy lights, 200 m")
    before = message_count()

    refused = contact(asha, other, "What about the lights?")

    assert refused.status_code == 403
    assert "You can&#39;t contact this seller." in refused.get_data(as_text=True)
    assert message_count() == before


def test_a_block_does_not_touch_other_people(talk, make_client, make_user, listing):
    asha, ravi, cid = talk
    ravi.post(f"/conversations/{cid}/block")
    meera = logged_in(make_client, make_user(display_name="Meera"))

    assert contact(meera, listing, "Free in January?").status_code == 303


def test_blocking_twice_keeps_one_block_and_a_stranger_cannot_block_from_someone_elses_conversation(
        talk, make_client, make_user, buyer, seller):
    asha, ravi, cid = talk
    ravi.post(f"/conversations/{cid}/block")
    assert ravi.post(f"/conversations/{cid}/block").status_code == 303
    assert blocks.block_state(seller.id, buyer.id) == blocks.BLOCKER
    assert blocks.block_state(buyer.id, seller.id) == blocks.BLOCKED

    stranger = logged_in(make_client, make_user())
    assert stranger.post(f"/conversations/{cid}/block").status_code == 404
    assert stranger.post(f"/conversations/{cid}/unblock").status_code == 404
    assert make_client().post(f"/conversations/{cid}/block").status_code == 302  # log in first


def test_a_send_racing_a_block_is_decided_under_the_conversation_lock(talk, buyer, seller):
    """The check reads the block with the conversation's row lock held: a block committed before
    the lock was taken refuses the send, whatever the page showed when it was loaded."""
    from rentpe.chat import services
    from rentpe.chat.models import Conversation
    from rentpe.extensions import db

    asha, ravi, cid = talk
    conversation = db.session.get(Conversation, cid)
    blocks.block_user(seller, buyer)
    with pytest.raises(services.ChatError) as refused:
        services.send_message(conversation, buyer, "sneaking in", "race-key-0001")
    assert refused.value.status == 403
    assert "sneaking in" not in [m.body for m in messages_in(cid)]


def test_a_block_lifted_between_the_refused_insert_and_its_reason_lets_the_send_through(
        talk, buyer, seller, monkeypatch):
    """The store refused the message for a block, and by the time the send asks why, the block was
    lifted: the send tries again once, and the message is stored once."""
    from rentpe.chat import services
    from rentpe.chat.models import Conversation
    from rentpe.extensions import db

    asha, ravi, cid = talk
    blocks.block_user(seller, buyer)
    asked = []
    reason = blocks.send_refusal

    def lifted_meanwhile(*args):
        if not asked:
            blocks.unblock_user(seller, buyer)
        asked.append(args)
        return reason(*args)

    monkeypatch.setattr(blocks, "send_refusal", lifted_meanwhile)
    before = message_count()
    message, created = services.send_message(db.session.get(Conversation, cid), buyer, "Still free?", "lifted-key-01")
    assert created and message.body == "Still free?"
    assert len(asked) == 1 and message_count() == before + 1
    assert [m.body for m in messages_in(cid)][-1] == "Still free?"


def test_a_send_refused_twice_with_no_reason_found_asks_to_try_again(talk, buyer, seller, monkeypatch):
    from rentpe.chat import services
    from rentpe.chat.models import Conversation
    from rentpe.extensions import db

    asha, ravi, cid = talk
    blocks.block_user(seller, buyer)
    monkeypatch.setattr(blocks, "send_refusal", lambda *args: None)  # as if lifted each time it is asked
    before = message_count()
    with pytest.raises(services.ChatError) as refused:
        services.send_message(db.session.get(Conversation, cid), buyer, "Hello?", "no-reason-key-1")
    assert refused.value.status == 409 and "try again" in str(refused.value)
    assert message_count() == before


def test_a_block_keeps_people_out_of_each_others_boards_but_evicts_nobody(talk, make_client, buyer, seller):
    from rentpe.chat.boards.services import BoardError
    from tests.board_helpers import make_board, send as board_send

    asha, ravi, cid = talk
    board_id = make_board(buyer, sellers=[seller])
    ravi.post(f"/conversations/{cid}/block")
    with pytest.raises(BoardError):
        make_board(buyer, sellers=[seller])  # no new board together (tests/test_boards_safety.py: both ways)
    # A board they were both in already goes on: its owner removes members and messages there.
    assert board_send(asha, board_id, "Welcome to the board", "board-key-0001").status_code in (200, 303)
    assert asha.post(f"/conversations/{board_id}/block").status_code == 404
