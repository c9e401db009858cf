"""Hiding a message: the one service that takes a message out of view, for anyone who may.

A board's owner hides messages in their board (boards/routes.py); moderators hide messages in any
conversation (the moderation package calls `hide_message` with `BY_MODERATOR`). The body stays in
SQL for the record; pages, history and every participant's open tabs show a notice instead (the
`chat.hidden` event, rendered in events.py). Whether the caller may hide the message is decided by
the caller's guard, not here.
"""
from sqlalchemy import select, update

from .. import realtime
from ..extensions import db
from ..models_base import utcnow
from .models import Message, Participant
from .services import _lock_conversation

HIDDEN = "chat.hidden"
BY_OWNER, BY_MODERATOR = "owner", "moderator"
REASONS = (BY_OWNER, BY_MODERATOR)


def hide_message(message, hidden_by, reason):
    """Hide `message` for everyone in its conversation. False if it was already hidden."""
    if reason not in REASONS:
        raise ValueError(f"not a reason to hide a message: {reason!r}")
    _lock_conversation(message.conversation_id)
    hidden = db.session.execute(
        update(Message)
        .where(Message.id == message.id, Message.hidden_at.is_(None))
        .values(hidden_at=utcnow(), hidden_by_id=hidden_by.id if hidden_by else None, hidden_reason=reason)
    ).rowcount
    if not hidden:
        db.session.rollback()
        return False
    members = db.session.scalars(
        select(Participant.user_id)
        .where(Participant.conversation_id == message.conversation_id, Participant.left_at.is_(None))
    ).all()
    realtime.record(members, HIDDEN, {"conversation_id": message.conversation_id, "message_id": message.id})
    db.session.commit()
    realtime.publish_committed()
    return True
