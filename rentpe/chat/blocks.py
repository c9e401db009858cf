"""Blocking: one person stops another from writing to them.

A block is a row (blocker, blocked). While it exists, their private conversation takes no new
messages from either side: the blocked person is told they can't send, the blocker that they
must unblock first. The blocked person can't open a new conversation with the blocker either.
In boards a block works both ways at the door: nobody adds or invites someone a block stands
between them and, and nobody joins the board of someone they blocked or who blocked them
(boards/services.py). A board both were in already goes on: its owner can remove members and
messages there, and either can leave.

The check (`none_between_sql`) is part of the statement that stores a message (chat's
`services._store`), which runs after the send took the conversation's row lock, as blocking takes
it: a send that races a block is either committed before the block or refused after it
(`send_refusal` then says why). Blocks live here, below moderation: moderation reads them, chat
enforces them.
"""
from datetime import datetime

from flask import Blueprint, abort, flash, redirect, url_for
from flask_login import current_user, login_required
from sqlalchemy import ForeignKey, delete, or_, text, update
from sqlalchemy.orm import Mapped, mapped_column

from ..database import insert_for
from ..extensions import db
from ..models_base import utcnow
from .models import DIRECT, Conversation

BLOCKER, BLOCKED = "blocker", "blocked"


class Block(db.Model):
    __tablename__ = "blocks"

    blocker_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    # Indexed for "who blocked this sender": every send to a private conversation asks it.
    blocked_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True,
                                            index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# Reads -----------------------------------------------------------------------------------------


def _between_sql(a, b):
    """The blocks between the people `a` and `b` (SQL: parameters or columns), either way round."""
    return (f"(blocks.blocker_id = {a} AND blocks.blocked_id = {b})"
            f" OR (blocks.blocker_id = {b} AND blocks.blocked_id = {a})")


def none_between_sql(a, b):
    """A condition that holds when no block stands between `a` and `b` (a NULL for either: none
    does); chat's send puts it in the statement that stores a message."""
    return f"NOT EXISTS (SELECT 1 FROM blocks WHERE {_between_sql(a, b)})"


_BETWEEN = text(f"SELECT blocks.blocker_id, blocks.blocked_id FROM blocks WHERE {_between_sql(':a', ':b')}")


def block_state(viewer_id, other_id):
    """`BLOCKER` if the viewer blocked the other person, `BLOCKED` if the other blocked the viewer
    (a block the viewer made wins when both did), else None."""
    rows = set(db.session.connection().execute(_BETWEEN, {"a": viewer_id, "b": other_id}).all())
    if (viewer_id, other_id) in rows:
        return BLOCKER
    if (other_id, viewer_id) in rows:
        return BLOCKED
    return None


def has_blocked(blocker_id, blocked_id):
    return db.session.get(Block, (blocker_id, blocked_id)) is not None


def send_refusal(conversation, sender_id, member_ids):
    """Why `sender_id` may not send in this conversation because of a block, or None.

    Asked by chat's send path when its insert was refused."""
    if conversation.kind != DIRECT:
        return None
    others = sorted(set(member_ids) - {sender_id})
    for other_id in others:
        state = block_state(sender_id, other_id)
        if state == BLOCKER:
            return "You blocked this person. Unblock them to send a message."
        if state == BLOCKED:
            return "You can't send messages to this person."
    return None


def contact_refusal(buyer_id, seller_id):
    """Why this buyer may not start a conversation with this seller because of a block, or None."""
    state = block_state(buyer_id, seller_id)
    if state == BLOCKER:
        return "You blocked this seller. Unblock them from your conversation to write again."
    if state == BLOCKED:
        return "You can't contact this seller."
    return None


# State changes ---------------------------------------------------------------------------------


class BlockError(ValueError):
    """A block or unblock was refused; the message is shown where the action was."""


def block_user(blocker, blocked):
    """`blocker` blocks `blocked`. Idempotent: blocking twice keeps one row. True if it was new."""
    if blocker.id == blocked.id:
        raise BlockError("You can't block yourself.")
    _lock_conversations_between(blocker.id, blocked.id)
    created = db.session.execute(
        insert_for(db.session, Block).values(blocker_id=blocker.id, blocked_id=blocked.id, created_at=utcnow())
        .on_conflict_do_nothing()
    ).rowcount
    db.session.commit()
    return bool(created)


def _lock_conversations_between(a_id, b_id):
    """Take the row locks a send takes on the pair's private conversations: a send racing the
    block commits before it or sees it."""
    db.session.execute(
        update(Conversation)
        .where(Conversation.kind == DIRECT, or_(
            (Conversation.buyer_id == a_id) & (Conversation.seller_id == b_id),
            (Conversation.buyer_id == b_id) & (Conversation.seller_id == a_id),
        ))
        .values(id=Conversation.id)
    )


def unblock_user(blocker, blocked):
    """Lift `blocker`'s block of `blocked`. True if there was one."""
    removed = db.session.execute(
        delete(Block).where(Block.blocker_id == blocker.id, Block.blocked_id == blocked.id)
    ).rowcount
    db.session.commit()
    return bool(removed)


# Routes: from a private conversation page, plain forms that redirect back -----------------------

bp = Blueprint("blocks", __name__)


def _counterpart(conversation_id):
    from .queries import get_conversation_for_participant

    conversation = get_conversation_for_participant(conversation_id)
    if conversation.kind != DIRECT:
        abort(404)
    others = conversation.others(current_user.id)
    if not others:
        abort(404)
    return conversation, others[0].user


@bp.post("/conversations/<int:conversation_id>/block")
@login_required
def block(conversation_id):
    conversation, other = _counterpart(conversation_id)
    block_user(current_user, other)
    flash(f"You blocked {other.display_name}. They can't send you messages.", "success")
    return redirect(url_for("chat.conversation", conversation_id=conversation.id), code=303)


@bp.post("/conversations/<int:conversation_id>/unblock")
@login_required
def unblock(conversation_id):
    conversation, other = _counterpart(conversation_id)
    unblock_user(current_user, other)
    flash(f"You unblocked {other.display_name}.", "success")
    return redirect(url_for("chat.conversation", conversation_id=conversation.id), code=303)


@bp.app_template_global("chat_block_state")
def block_state_for_template(viewer_id, other_id):
    return block_state(viewer_id, other_id)
