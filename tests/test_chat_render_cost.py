"""What every message costs to deliver: the per-recipient inbox row comes from the conversation
the renderer already holds, and a sender's own message reaching their other tabs marks nothing."""
from sqlalchemy import event

from rentpe.chat import events, queries, services
from rentpe.chat.models import Conversation
from rentpe.extensions import db
from rentpe.realtime.models import StreamEvent
from tests.chat_helpers import contact, conversation_id_from


class Statements:
    def __init__(self):
        self.count = 0

    def __enter__(self):
        event.listen(db.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc):
        event.remove(db.engine, "before_cursor_execute", self._seen)

    def _seen(self, *args):
        self.count += 1


def test_inbox_row_for_a_loaded_conversation_is_the_inbox_row(client, make_client, buyer, seller, listing, make_listing):
    client.login(buyer)
    cid = conversation_id_from(contact(client, listing, body="About the hall"))
    other = make_listing(seller=seller, title="Fairy lights")
    contact(client, other, body="And the lights?")
    seller_client = make_client()
    seller_client.login(seller)
    seller_client.post(f"/conversations/{cid}/messages", {"body": "Both free", "client_key": "answer0001"}, htmx=True)
    db.session.expire_all()
    conversation = db.session.get(Conversation, cid)

    for viewer in (buyer, seller):
        expected = queries.inbox_row(viewer.id, cid)
        for hint in (None, queries.message_in(cid, conversation.last_message_id), queries.history(cid)[0][0]):
            row = queries.inbox_row_for(conversation, viewer.id, last_message=hint)
            assert (row.conversation.id, row.me.user_id, row.counterpart.id, row.last_message.id, row.listing.id) == (
                expected.conversation.id, expected.me.user_id, expected.counterpart.id,
                expected.last_message.id, expected.listing.id)
        assert expected.last_message.body == "Both free" and expected.listing.title == "Fairy lights"
    assert queries.inbox_row_for(conversation, 10**6) is None


def test_a_senders_own_message_reaching_their_tabs_costs_no_queries(client, make_client, buyer, listing):
    client.login(buyer)
    cid = conversation_id_from(contact(client, listing))
    own = db.session.scalars(db.select(StreamEvent).where(StreamEvent.user_id == buyer.id,
                                                          StreamEvent.kind == services.MESSAGE)).all()
    assert own and all(e.data["sender_id"] == buyer.id for e in own)

    with Statements() as statements:
        events.on_messages_delivered(buyer.id, own)
    assert statements.count == 0

    # The seller's copy of the same event does mark it delivered.
    seller_id = listing.seller_id
    theirs = db.session.scalars(db.select(StreamEvent).where(StreamEvent.user_id == seller_id)).all()
    events.on_messages_delivered(seller_id, theirs)
    assert queries.receipt_for(db.session.get(Conversation, cid), buyer.id).status == "delivered"
