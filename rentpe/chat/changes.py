"""Changes to a message after it was sent: its sender edits or deletes it, anyone in the
conversation reacts to it; and the purge of deleted messages' content.

Each function owns its transaction and publishes after commit, like the send (services.py): it
takes the conversation's row lock, changes the row(s), records one `chat.changed` event for every
current member, commits, publishes. The renderer (events.py) renders the message once for all of
them from the current state, so a replay after a reconnect shows what is true now and swapping it
twice (by `id="msg-<id>"`) changes nothing.

- Edit: the sender, within EDIT_MINUTES of sending (a controllable clock: `now`), a text message
  that is neither hidden nor deleted. The text before is kept as a `MessageEdit` for moderators.
- Delete: the sender, any time. The thread shows "Message deleted"; text, photos, edits and
  reactions stay in SQL for moderators until `purge_deleted` (DELETED_KEEP_DAYS later). A deleted
  message someone had not read yet stops counting as unread for them.
- Reactions: a current member toggles one of REACTIONS. A reaction changes no unread count and
  makes no e-mail: it is not a message.
"""
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, delete, select, update

from .. import realtime
from ..extensions import db
from ..models_base import utcnow
from .models import Message, MessageEdit, MessagePhoto, MessageReaction, Participant
from .services import ChatError, _lock_conversation, _members, _refusal, clean_body, screen_contact_details

CHANGED = "chat.changed"
EDITED, DELETED, REACTED = "edited", "deleted", "reacted"
# The fixed set (the chat design's reactions): anything else is refused, so a reaction is never free text.
REACTIONS = ("👍", "❤️", "😂", "😮", "🙏", "🎉")
# Long enough to fix a typo noticed after sending; short enough that an answer already given to a
# message can't quietly be made to answer something else.
EDIT_MINUTES = 15
# A deleted message's content stays this long for moderators (a report made the day after still
# sees what was said), then `purge_deleted` removes it.
DELETED_KEEP_DAYS = 30


def edit_window():
    return timedelta(minutes=current_app.config.get("MESSAGE_EDIT_MINUTES", EDIT_MINUTES))


def can_edit(message, user_id, now=None):
    return (message.sender_id == user_id and message.kind == "text" and not message.is_gone
            and (now or utcnow()) - message.created_at <= edit_window())


def edit_message(conversation, message, user, raw_body, now=None):
    """Replace the text of `user`'s own message. Returns True if it changed. Raises ChatError."""
    now = now or utcnow()
    body = clean_body(raw_body)
    flags = screen_contact_details(body)
    if message.sender_id != user.id or message.kind != "text":
        raise ChatError("Only the sender can edit this message.", status=403)
    closed_at = _lock_conversation(conversation.id)
    members = _members(conversation)
    refusal = _refusal(conversation, user.id, members, closed_at)
    if refusal is not None:
        db.session.rollback()
        raise refusal
    before = db.session.execute(
        select(Message.body, Message.created_at, Message.hidden_at, Message.deleted_at).where(Message.id == message.id)
    ).one()
    if before.hidden_at is not None or before.deleted_at is not None:
        db.session.rollback()
        raise ChatError("This message can't be edited any more: it was removed.", status=409)
    if now - before.created_at > edit_window():
        db.session.rollback()
        minutes = int(edit_window().total_seconds() // 60)
        raise ChatError(f"A message can only be edited in the first {minutes} minutes after sending.", status=409)
    if body == before.body:
        db.session.rollback()
        return False
    db.session.add(MessageEdit(message_id=message.id, body=before.body, edited_at=now))
    db.session.execute(update(Message).where(Message.id == message.id)
                       .values(body=body, contact_flags=flags, edited_at=now))
    _record(conversation, message, members, EDITED)
    return True


def delete_message(conversation, message, user, now=None):
    """Delete `user`'s own message for everyone. False if it was deleted already. Raises ChatError."""
    if message.sender_id != user.id or message.kind != "text":
        raise ChatError("Only the sender can delete this message.", status=403)
    _lock_conversation(conversation.id)
    deleted = db.session.execute(
        update(Message).where(Message.id == message.id, Message.deleted_at.is_(None), Message.hidden_at.is_(None))
        .values(deleted_at=now or utcnow())
    ).rowcount
    if not deleted:
        db.session.rollback()
        return False
    # It no longer counts as unread for those who had not read it (the sender's own never did).
    db.session.execute(
        update(Participant)
        .where(Participant.conversation_id == conversation.id, Participant.user_id != user.id,
               Participant.last_read_message_id < message.id, Participant.unread_count > 0)
        .values(unread_count=Participant.unread_count - 1)
    )
    _record(conversation, message, _members(conversation), DELETED)
    return True


def toggle_reaction(conversation, message, user, emoji):
    """Add `user`'s `emoji` to the message, or take it back. Returns True when it is now there."""
    if emoji not in REACTIONS:
        raise ChatError("Choose one of the reactions offered.", status=400)
    if message.is_gone:
        raise ChatError("This message was removed: it takes no reactions.", status=409)
    if message.kind != "text":  # a booking's card or line shows no reactions (cards.py)
        raise ChatError("This message takes no reactions.", status=409)
    closed_at = _lock_conversation(conversation.id)
    members = _members(conversation)
    refusal = _refusal(conversation, user.id, members, closed_at)
    if refusal is not None:
        db.session.rollback()
        raise refusal
    if db.session.scalar(select(Message.id).where(Message.id == message.id, Message.hidden_at.is_(None),
                                                  Message.deleted_at.is_(None))) is None:
        db.session.rollback()  # hidden or deleted since it was read
        raise ChatError("This message was removed: it takes no reactions.", status=409)
    mine = and_(MessageReaction.message_id == message.id, MessageReaction.user_id == user.id,
                MessageReaction.emoji == emoji)
    removed = db.session.execute(delete(MessageReaction).where(mine)).rowcount
    if not removed:
        db.session.add(MessageReaction(message_id=message.id, user_id=user.id, emoji=emoji, created_at=utcnow()))
    _record(conversation, message, members, REACTED)
    return not removed


def _record(conversation, message, members, change):
    realtime.record(sorted(members), CHANGED,
                    {"conversation_id": conversation.id, "message_id": message.id, "change": change})
    db.session.commit()
    db.session.expire(message)
    realtime.publish_committed()


def purge_deleted(now=None, keep_days=None):
    """Remove the content of messages deleted more than `keep_days` (DELETED_KEEP_DAYS) ago: the
    text, the earlier texts, the reactions and the photos (their files too). The row stays, as
    "Message deleted", so the thread and the cursors keep their ids. Returns how many were purged."""
    from . import photos

    cutoff = (now or utcnow()) - timedelta(days=DELETED_KEEP_DAYS if keep_days is None else keep_days)
    due = select(Message.id).where(Message.deleted_at.is_not(None), Message.deleted_at < cutoff)
    has_content = (Message.body != "") | Message.id.in_(select(MessagePhoto.message_id)) | Message.id.in_(
        select(MessageEdit.message_id)) | Message.id.in_(select(MessageReaction.message_id))
    ids = db.session.scalars(due.where(has_content)).all()
    if not ids:
        return 0
    keys = db.session.scalars(select(MessagePhoto.key).where(MessagePhoto.message_id.in_(ids))).all()
    db.session.execute(update(Message).where(Message.id.in_(ids)).values(body="", contact_flags=None))
    for model in (MessageEdit, MessageReaction, MessagePhoto):
        db.session.execute(delete(model).where(model.message_id.in_(ids)))
    db.session.commit()
    for key in keys:  # after the commit: a rollback must not leave rows pointing at deleted files
        photos.delete_files(key)
    return len(ids)


def reactions_summary(message):
    """[(emoji, [users])] in REACTIONS order, only the ones someone chose."""
    by_emoji = {}
    for reaction in message.reactions:
        by_emoji.setdefault(reaction.emoji, []).append(reaction.user)
    return [(emoji, by_emoji[emoji]) for emoji in REACTIONS if emoji in by_emoji]

