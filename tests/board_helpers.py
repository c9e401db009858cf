"""Helpers for event board tests: boards made through the services (fast), read back from SQL."""
import re
from datetime import timedelta

from rentpe.chat.boards import services as board_services
from rentpe.chat.models import ORGANISER, SELLER, Conversation, Message, Participant
from rentpe.extensions import db
from rentpe.models_base import utcnow

BOARD_URL = re.compile(r"/boards/(\d+)$")


def event_day(days=30):
    return utcnow().date() + timedelta(days=days)


def board_form(title="Meera & Arjun's wedding", days=30, city="mumbai"):
    return {"title": title, "event_date": event_day(days).isoformat(), "city": city}


def board_id_from(response):
    assert response.status_code == 303, (response.status_code, response.get_data(as_text=True)[:300])
    return int(BOARD_URL.search(response.headers["Location"]).group(1))


def make_board(owner, sellers=(), organisers=(), title="Meera & Arjun's wedding"):
    """A board owned by `owner` with these members, made through the services."""
    board = board_services.create_board(owner, title, event_day(), "Mumbai")
    invites = [(u, SELLER) for u in sellers] + [(u, ORGANISER) for u in organisers]
    if invites:
        board_services.add_members(db.session.get(Conversation, board.id), owner, invites)
    return board.id


def board(board_id):
    db.session.expire_all()
    return db.session.get(Conversation, board_id)


def member_row(board_id, user):
    return db.session.get(Participant, (board_id, user.id))


def messages_in(board_id):
    return db.session.scalars(db.select(Message).where(Message.conversation_id == board_id).order_by(Message.id)).all()


def send(client, board_id, body, key, htmx=True):
    return client.post(f"/conversations/{board_id}/messages", {"body": body, "client_key": key}, htmx=htmx)
