"""The contact-information guard: phone numbers, e-mail addresses, messaging apps and payment
handles in messages are flagged with a safety notice for the recipient (policy "warn"), or refused
in the composer with nothing stored (policy "reject")."""
import pytest

from rentpe import realtime
from rentpe.chat import contact as guard
from rentpe.config import ConfigError, from_environment
from tests.chat_helpers import (
    contact, conversation_count, conversation_id_from, message_count, messages_in, shown_to,
)
from tests.stream_helpers import FAST_STREAM, Stream

NOTICE = '<p class="msg-safety for-others" role="note">'


@pytest.mark.parametrize("text, kinds", [
    ("Call me on +91 98765 43210", ("phone",)),
    ("my number is 098765-43210", ("phone",)),
    ("office (022) 2345 6789", ("phone",)),
    ("text 9876543210.", ("phone",)),
    ("write to asha.verma@gmail.com", ("email",)),
    ("WhatsApp me for photos", ("messenger",)),
    ("t.me/ashadecor", ("messenger",)),
    ("pay the advance to asha@okaxis", ("payment",)),
    ("GPay or Paytm is fine", ("payment",)),
    ("+91 98765 43210 or asha@ybl, or mail a@b.com", ("phone", "email", "payment")),
])
def test_contact_details_are_found(text, kinds):
    assert guard.find_contact_details(text) == kinds


@pytest.mark.parametrize("text", [
    "Is the hall free on 14/12/2026 for 150 guests?",
    "The price is ₹1,50,000 with a ₹25,000 deposit",
    "We can set up between 10 and 12, order ref 1234567",
    "See https://rentpe.test/listings/12345678901 for the photos",
    "",
])
def test_ordinary_messages_are_not_flagged(text):
    assert guard.find_contact_details(text) == ()


def test_the_policy_comes_from_the_environment(tmp_path):
    assert from_environment(str(tmp_path), {})["CONTACT_INFO_POLICY"] == "warn"
    assert from_environment(str(tmp_path), {"CONTACT_INFO_POLICY": "Reject"})["CONTACT_INFO_POLICY"] == "reject"
    with pytest.raises(ConfigError, match="CONTACT_INFO_POLICY must be one of warn, reject"):
        from_environment(str(tmp_path), {"CONTACT_INFO_POLICY": "ignore"})


def send(client, cid, body, key, htmx=True):
    return client.post(f"/conversations/{cid}/messages", {"body": body, "client_key": key}, htmx=htmx)


# Warn (the default) ------------------------------------------------------------------------------------


def test_a_message_with_contact_details_is_delivered_flagged_with_a_notice_for_the_recipient(
        buyer_client, seller_client, listing):
    cid = conversation_id_from(contact(buyer_client, listing, "Is it free on 12 December?"))
    response = send(buyer_client, cid, "Call me on 98765 43210 or pay to asha@okaxis", "flag-key-00001")
    assert response.status_code == 200
    [first, flagged] = messages_in(cid)
    assert first.contact_flags is None and flagged.contact_flags == "phone,payment"

    seller_page = shown_to(seller_client.get(f"/conversations/{cid}").get_data(as_text=True), listing.seller_id)
    assert seller_page.count(NOTICE) == 1
    assert "this message shares a phone number and a payment app or handle." in seller_page
    buyer_id = messages_in(cid)[0].sender_id
    buyer_page = buyer_client.get(f"/conversations/{cid}").get_data(as_text=True)
    assert NOTICE in buyer_page and NOTICE not in shown_to(buyer_page, buyer_id)  # the page hides it from its sender
    assert NOTICE not in shown_to(response.get_data(as_text=True), buyer_id)


@pytest.mark.parametrize("app_overrides", [FAST_STREAM])
def test_the_recipients_stream_carries_the_notice(buyer_client, seller_client, listing, seller):
    cid = conversation_id_from(contact(buyer_client, listing, "Hello"))
    with buyer_client.app.app_context():
        after = realtime.last_seq(seller.id)
    stream = Stream(seller_client, f"/events?after={after}")
    send(buyer_client, cid, "mail me: asha.verma@gmail.com", "flag-key-00002")
    assert stream.contains('class="msg-safety for-others"')
    [frame] = [e for e in stream.events() if "msg-safety" in e["data"]]
    assert frame["id"] is not None and "asha.verma@gmail.com" in frame["data"]
    assert "this message shares an e-mail address." in frame["data"]
    stream.close()


# Reject -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("app_overrides", [{"CONTACT_INFO_POLICY": "reject"}])
def test_under_reject_the_composer_refuses_it_and_nothing_is_stored(buyer_client, listing):
    cid = conversation_id_from(contact(buyer_client, listing, "Is it free on 12 December?"))
    stored = message_count()

    response = send(buyer_client, cid, "WhatsApp me on +91 98765 43210", "reject-key-0001")

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "This message contains a phone number and an outside messaging app." in html
    assert ">WhatsApp me on +91 98765 43210</textarea>" in html
    assert message_count() == stored


@pytest.mark.parametrize("app_overrides", [{"CONTACT_INFO_POLICY": "reject"}])
def test_under_reject_a_first_contact_with_details_opens_no_conversation(buyer_client, listing):
    response = contact(buyer_client, listing, "Pay the deposit on GPay please")

    assert response.status_code == 422
    assert "This message contains a payment app or handle." in response.get_data(as_text=True)
    assert conversation_count() == 0 and message_count() == 0


@pytest.mark.parametrize("app_overrides", [{"CONTACT_INFO_POLICY": "reject"}])
def test_under_reject_ordinary_messages_still_go_through(buyer_client, listing):
    cid = conversation_id_from(contact(buyer_client, listing, "Is it free on 14/12/2026 for 150 guests?"))
    assert send(buyer_client, cid, "₹1,50,000 is fine", "reject-key-0002").status_code == 200
    assert [m.contact_flags for m in messages_in(cid)] == [None, None]
