"""Small helpers for chat tests."""
import re

from rentpe.chat.models import Conversation, Message, Participant
from rentpe.extensions import db

CONV_URL = re.compile(r"/conversations/(\d+)$")


def contact(client, listing, body="Is it free on 12 December?", client_key=None):
    data = {"body": body}
    if client_key:
        data["client_key"] = client_key
    return client.post(f"/listings/{listing.id}/contact", data)


def conversation_id_from(response):
    assert response.status_code == 303, response.status_code
    return int(CONV_URL.search(response.headers["Location"]).group(1))


def messages_in(conversation_id):
    return db.session.scalars(
        db.select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
    ).all()


def participant(conversation_id, user):
    return db.session.get(Participant, (conversation_id, user.id))


def conversation_count():
    return db.session.scalar(db.select(db.func.count()).select_from(Conversation))


def message_count():
    return db.session.scalar(db.select(db.func.count()).select_from(Message))
