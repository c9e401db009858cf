"""Changes to who gets missed-message e-mail: the one-click unsubscribe, a conversation's mute.

Each function owns its transaction. Neither touches pending rows: the worker reads the person's
setting and the participant's mute when a row is due, and cancels it then.
"""
from sqlalchemy import update

from ..accounts.models import NOTIFY_NEVER, User
from ..chat.models import Participant
from ..extensions import db
from . import mail


def user_for_token(token):
    return mail.user_id_for_token(token, lambda user_id: db.session.get(User, user_id))


def unsubscribe(user):
    db.session.execute(update(User).where(User.id == user.id).values(notify_email=NOTIFY_NEVER))
    db.session.commit()


def set_muted(conversation_id, user_id, muted):
    """Mute (or unmute) a conversation's e-mail for one current participant. True if they are one."""
    changed = db.session.execute(
        update(Participant).where(Participant.conversation_id == conversation_id, Participant.user_id == user_id,
                                  Participant.left_at.is_(None))
        .values(muted=bool(muted))
    ).rowcount
    db.session.commit()
    return bool(changed)
