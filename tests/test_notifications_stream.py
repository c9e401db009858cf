"""Unread is the read cursor, never presence nor delivery: a tab left open on an idle computer
(its stream live, the message written to it and marked delivered) does not stop the e-mail."""
import time
from datetime import timedelta

import pytest

from rentpe.chat.models import Participant
from rentpe.extensions import db
from rentpe.models_base import utcnow
from rentpe.notifications import worker
from tests.chat_helpers import contact, conversation_id_from, messages_in
from tests.mail_helpers import smtp  # noqa: F401 (fixture)
from tests.stream_helpers import Stream, broker, broker_overrides  # noqa: F401 (fixture)


@pytest.fixture
def app_overrides(broker, smtp):
    return {**broker_overrides(broker), "MAIL_URL": smtp.url, "NOTIFY_DELAY_S": 300}


def test_an_idle_open_tab_that_received_the_message_still_gets_the_email(make_client, buyer, seller, listing, smtp):
    buyer_client, seller_tab = make_client(), make_client()
    buyer_client.login(buyer)
    seller_tab.login(seller)
    cid = conversation_id_from(contact(buyer_client, listing, "Are you there?"))
    stream = Stream(seller_tab, "/events?after=0")
    try:
        assert stream.contains("Are you there?")
        [message] = messages_in(cid)
        deadline = time.monotonic() + 10
        while True:  # the watch records the delivery within a round or two
            stream.read_for(0.2)
            db.session.rollback()
            if db.session.get(Participant, (cid, seller.id)).delivered_message_id == message.id:
                break
            assert time.monotonic() < deadline, "the delivery was never recorded"
        assert worker.run_once(now=utcnow() + timedelta(seconds=301)).sent == 1
        assert smtp.inbox.messages[0]["To"] == seller.email
    finally:
        stream.close()
