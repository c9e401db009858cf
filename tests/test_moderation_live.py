"""Moderation's live effects, on both brokers: a hidden message changes in the participants' open
tabs, and a suspended user's open streams end and their next request is logged out."""
import pytest

from tests.chat_helpers import contact, conversation_id_from, messages_in
from tests.stream_helpers import Stream


@pytest.fixture
def app_overrides(realtime_overrides):
    return realtime_overrides


def logged_in(make_client, user):
    c = make_client()
    c.login(user)
    return c


def test_a_hidden_message_is_replaced_live_in_the_participants_stream(make_client, buyer, seller, listing, moderator):
    asha, ravi, mod = (logged_in(make_client, u) for u in (buyer, seller, moderator))
    cid = conversation_id_from(contact(asha, listing, "Is it free?"))
    ravi.post(f"/conversations/{cid}/messages", {"body": "Pay me outside RentPe, it is cheaper", "client_key": "live-key-01"})
    scam = messages_in(cid)[-1]
    stream = Stream(asha)  # chat's own renderers, as in the product
    try:
        assert stream.contains(": open")

        assert mod.post(f"/admin/messages/{scam.id}/hide", {"reason": "Off-platform payment"}).status_code == 303

        assert stream.contains("removed by a moderator")
        [hidden] = [e for e in stream.events() if "removed by a moderator" in e["data"]]
        assert f'id="msg-{scam.id}"' in hidden["data"] and "cheaper" not in hidden["data"]
    finally:
        stream.close()


def test_a_suspended_users_open_streams_end_and_their_next_request_is_logged_out(make_client, buyer, moderator,
                                                                                 open_stream):
    phone, laptop = logged_in(make_client, buyer), logged_in(make_client, buyer)
    mod = logged_in(make_client, moderator)
    streams = [open_stream(phone, after=0), open_stream(laptop, after=0)]
    mod_stream = open_stream(mod, after=0)
    for stream in streams:
        assert stream.next() == {"comment": "open"}

    assert mod.post(f"/admin/users/{buyer.id}/suspend", {"reason": "Spam"}).status_code == 303

    for stream in streams:
        stream.read_to_end()
        assert stream.ended
    assert open_stream(phone).status_code == 401
    assert "Log out" not in laptop.get("/").get_data(as_text=True)
    assert laptop.get("/inbox").status_code == 302
    assert not mod_stream.ended


def test_board_messages_are_reported_and_hidden_by_a_moderator_live_for_every_member(
        make_client, buyer, seller, make_seller, moderator):
    from rentpe.extensions import db
    from rentpe.moderation.models import Report
    from tests.board_helpers import make_board, send

    lights = make_seller(display_name="Lights Co")
    board_id = make_board(buyer, sellers=[seller, lights])
    asha, ravi, lights_client, mod = (logged_in(make_client, u) for u in (buyer, seller, lights, moderator))
    send(ravi, board_id, "Send the advance to my UPI, skip RentPe", "board-scam-01")
    scam = messages_in(board_id)[-1]

    # Any member may report it; the moderator sees it with its context, from the board.
    assert lights_client.post(f"/report/message/{scam.id}", {"reason": "scam", "note": "asks to pay outside"}
                              ).status_code in (302, 303)
    [report] = db.session.scalars(db.select(Report)).all()
    page = mod.get(f"/admin/reports/{report.id}").get_data(as_text=True)
    assert "skip RentPe" in page

    streams = [Stream(c) for c in (asha, lights_client)]
    try:
        for stream in streams:
            assert stream.contains(": open")
        assert mod.post(f"/admin/messages/{scam.id}/hide", {"reason": "Off-platform payment"}).status_code == 303
        for stream in streams:
            assert stream.contains("removed by a moderator")
            assert "skip RentPe" not in [e for e in stream.events() if "removed by a moderator" in e["data"]][0]["data"]
    finally:
        for stream in streams:
            stream.close()
    assert "removed by a moderator" in asha.get(f"/boards/{board_id}").get_data(as_text=True)
