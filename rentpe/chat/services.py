"""State changes of chat. Each function owns its transaction and publishes after commit.

Every write to a conversation first takes that conversation's row lock (an UPDATE of the row),
so sends and cursor moves on one conversation are serialised: message ids then grow in commit
order inside a conversation, and read/unread counters never lose an update. Per-user event seqs
are allocated by `realtime.record` after that, in ascending user order (no deadlock cycles).

A send (`send_message`), in this order, in one transaction:

1. The conversation's row lock.
2. Under it, the members it goes to: a board's are read again, since membership changes take the
   same lock (boards/services.py), so a send addresses exactly the members current when it commits.
3. The store (`_store`: plain SQL, `_INSERT_MESSAGE` and the statements after it): the message is
   inserted once per client key, and only if no block stands between the two people of a private
   conversation. Blocking takes the same lock (blocks.py), so a send racing a block commits before
   it or is refused. The conversation's last message and every member's counters are updated in
   the same transaction, and the recipients' missed-message e-mails made pending
   (`_INSERT_NOTIFICATIONS`).
4. Nothing inserted: rolled back, and a retry (its client key was stored) gets the message stored
   the first time; anything else is refused with the reason (`_refusal`).
5. `realtime.record` of the members' events, the commit, then `realtime.publish_committed()`. The
   publish reads what it renders (the conversation, its people, the message) by primary key.
"""
import re
import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import DateTime, bindparam, func, insert, select, text, update

from .. import metrics, realtime
from ..database import insert_for, is_postgresql
from ..extensions import db
from ..models_base import utcnow
from ..text import CONTROL_CHARACTERS as _CONTROL
from . import blocks, contact
from .models import BUYER, DIRECT, GROUP, SELLER, Conversation, Message, MessagePhoto, Participant
from .queries import receipt_of

_conversations, _messages = Conversation.__table__, Message.__table__

MAX_BODY_CHARS = 4000
MESSAGE = "chat.message"
# A board's messages are their own kind: boards have no delivery receipts, so their events have no
# delivery hook and move no delivery cursor (500 members, 500 streams, nothing for the watch to record).
BOARD_MESSAGE = "chat.board_message"
READ = "chat.read"
RECEIPT = "chat.receipt"
# A person archived or unarchived a conversation: its row moves in their other open pages.
ARCHIVE_CHANGED = "chat.archived"

# The hint a send leaves on its events for their live render: nothing to read besides the message.
NEW_WITHOUT_PHOTOS = {"new_without_photos": True}

_CLIENT_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class ChatError(ValueError):
    """A send or action was refused; the message is shown where the action was."""

    def __init__(self, message, status=422):
        super().__init__(message)
        self.status = status


# The store of a message: four statements, written once for both databases. The three after the
# INSERT read the new message's id from `message`: on PostgreSQL that is the INSERT itself, so the
# four run as one statement (`_STORE_AT_ONCE`: one round trip, not four) and the others change
# nothing when nothing was inserted; SQLite has no data-modifying CTEs, so there `message` is the
# id its INSERT returned and the others run after it (`_STORE_STEPS`).
#
# The INSERT stores nothing when the client key was stored before (a retry, or a double click
# that waited for the lock: the unique index), or when a block stands between the sender and
# `:other` (the other person of a private conversation; NULL in a board, where blocks don't stop
# a send). A NULL in a SELECT list is text on PostgreSQL, hence the cast of the listing.
# Written as SQL rather than built: both databases take the same ON CONFLICT clause, and
# SQLAlchemy compiles its dialect INSERTs that can say it again for every message.
_INSERT_MESSAGE = (
    "INSERT INTO messages (conversation_id, sender_id, body, client_key, listing_id, created_at, contact_flags,"
    " kind, card_id)"
    " SELECT :conversation_id, :sender_id, :body, :client_key, CAST(:listing_id AS INTEGER), :created_at,"
    " :contact_flags, :kind, CAST(:card_id AS INTEGER)"
    f" WHERE {blocks.none_between_sql(':sender_id', ':other')}"
    " ON CONFLICT (conversation_id, sender_id, client_key) DO NOTHING"
    " RETURNING id"
)
# The conversation's last message, its count, and the listing it last asked about (the inbox thumbnail).
_UPDATE_CONVERSATION = (
    "UPDATE conversations SET last_message_id = message.id, last_message_at = :created_at,"
    " message_count = conversations.message_count + 1,"
    " last_listing_id = COALESCE(CAST(:listing_id AS INTEGER), conversations.last_listing_id)"
    " FROM message WHERE conversations.id = :conversation_id"
)
# Every member's counters: the recipients have one more unread; the sender has read up to their
# own message, which is now their last sent one.
_UPDATE_COUNTERS = (
    "UPDATE participants SET"
    " unread_count = CASE WHEN participants.user_id = :sender_id THEN 0 ELSE participants.unread_count + 1 END,"
    " last_read_message_id = CASE WHEN participants.user_id = :sender_id THEN message.id"
    "  ELSE participants.last_read_message_id END,"
    " last_read_at = CASE WHEN participants.user_id = :sender_id THEN :created_at ELSE participants.last_read_at END,"
    " last_sent_message_id = CASE WHEN participants.user_id = :sender_id THEN message.id"
    "  ELSE participants.last_sent_message_id END"
    " FROM message WHERE participants.conversation_id = :conversation_id AND participants.user_id IN :members"
)
# A missed-message e-mail for every recipient who may get one (not muted here, e-mail not turned
# off, not suspended) and has none pending for this conversation yet: rows of the notifications
# table (rentpe/notifications/models.py), whose worker decides at `due_at` what is still unread.
# One statement whatever the number of recipients, no ORM object; where a row is pending already
# the partial unique index makes it nothing (`ON CONFLICT … DO NOTHING`), so a busy conversation
# writes one row per recipient per e-mail, not per message.
_INSERT_NOTIFICATIONS = (
    "INSERT INTO notifications (user_id, conversation_id, message_id, status, due_at, created_at, attempts)"
    " SELECT participants.user_id, :conversation_id, message.id, 'pending', :notify_due_at, :created_at, 0"
    " FROM message, participants JOIN users ON users.id = participants.user_id"
    " WHERE participants.conversation_id = :conversation_id AND participants.user_id IN :members"
    " AND participants.user_id <> :sender_id AND NOT participants.muted"
    " AND users.notify_email <> 'never' AND NOT users.is_suspended"
    " ON CONFLICT (user_id, conversation_id) WHERE status = 'pending' DO NOTHING"
)


def _send_statement(sql):
    """`sql` built once (a statement built per message is compiled again for every message), with
    its date typed as the column (SQLite stores it as text) and the members as a list."""
    binds = [bindparam(name, type_=_messages.c.created_at.type)
             for name in ("created_at", "notify_due_at") if f":{name}" in sql]
    binds += [bindparam("members", expanding=True)] if ":members" in sql else []
    return text(sql).bindparams(*binds)


_STORE_AT_ONCE = _send_statement(
    f"WITH message AS ({_INSERT_MESSAGE}), conversation AS ({_UPDATE_CONVERSATION}),"
    f" counters AS ({_UPDATE_COUNTERS}), notify AS ({_INSERT_NOTIFICATIONS}) SELECT id FROM message")
_STORE_STEPS = (_send_statement(_INSERT_MESSAGE),
                _send_statement(f"WITH message AS (SELECT :message_id AS id) {_UPDATE_CONVERSATION}"),
                _send_statement(f"WITH message AS (SELECT :message_id AS id) {_UPDATE_COUNTERS}"),
                _send_statement(f"WITH message AS (SELECT :message_id AS id) {_INSERT_NOTIFICATIONS}"))
# The recipient's delivery cursor moves forward (never back; boards have no delivery receipts,
# though events recorded before they had a kind of their own may still be replayed as plain
# messages). It returns what the receipt of the other participant (`p_notify`) shows: the
# recipient's cursors and the other's last sent message.
_MARK_DELIVERED = text(
    "UPDATE participants SET delivered_message_id = :p_up_to, delivered_at = :p_now"
    " WHERE conversation_id = :p_conversation AND user_id = :p_user AND delivered_message_id < :p_up_to"
    " AND EXISTS (SELECT 1 FROM conversations"
    "  WHERE conversations.id = :p_conversation AND conversations.kind = :p_direct)"
    " RETURNING last_read_message_id, last_read_at, delivered_message_id, delivered_at,"
    " (SELECT other.last_sent_message_id FROM participants AS other"
    "  WHERE other.conversation_id = :p_conversation AND other.user_id = :p_notify) AS notify_last_sent_message_id"
).bindparams(bindparam("p_now", type_=DateTime)).columns(last_read_at=DateTime, delivered_at=DateTime)


def new_client_key():
    return uuid.uuid4().hex


def clean_body(raw, allow_empty=False):
    """The message text as stored: newlines normalised and kept, controls dropped, trimmed.
    `allow_empty`: a message with photos may have no text."""
    text = (raw or "").replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text).strip()
    if not text and not allow_empty:
        raise ChatError("Write a message first.")
    if len(text) > MAX_BODY_CHARS:
        raise ChatError(f"Messages can be at most {MAX_BODY_CHARS:,} characters (this one has {len(text):,}).")
    return text


def screen_contact_details(body):
    """The contact-information guard (contact.py): the `contact_flags` to store with `body`, or a
    ChatError when the policy rejects such messages."""
    kinds = contact.find_contact_details(body)
    if kinds and current_app.config["CONTACT_INFO_POLICY"] == contact.REJECT:
        raise ChatError(contact.refusal(kinds))
    return contact.as_flags(kinds)


def clean_client_key(raw):
    key = (raw or "").strip()
    if not _CLIENT_KEY.match(key):
        # No usable key (e.g. a hand-made form post): each such post is its own message.
        return new_client_key()
    return key


def _insert_ignoring_conflict(model, values, conflict_columns):
    statement = insert_for(db.session, model).values(**values).on_conflict_do_nothing(index_elements=conflict_columns)
    db.session.execute(statement)


def get_or_create_direct_conversation(buyer_id, seller_id):
    """The one conversation of this buyer–seller pair; safe when two first messages race."""
    _insert_ignoring_conflict(
        Conversation,
        {"kind": DIRECT, "buyer_id": buyer_id, "seller_id": seller_id, "created_at": utcnow(),
         "last_message_at": utcnow(), "message_count": 0},
        ["buyer_id", "seller_id"],
    )
    conversation = db.session.scalars(
        select(Conversation).where(Conversation.buyer_id == buyer_id, Conversation.seller_id == seller_id)
    ).one()
    for user_id, role in ((buyer_id, BUYER), (seller_id, SELLER)):
        _insert_ignoring_conflict(
            Participant,
            {"conversation_id": conversation.id, "user_id": user_id, "role": role, "joined_at": utcnow(),
             "last_read_message_id": 0, "delivered_message_id": 0, "last_sent_message_id": 0, "unread_count": 0},
            ["conversation_id", "user_id"],
        )
    return conversation


def contact_seller(buyer, listing, body, client_key):
    """A buyer's message about `listing`: opens (or reuses) their conversation with its seller."""
    if listing.seller_id == buyer.id:
        raise ChatError("This is your own listing.", status=400)
    refused = blocks.contact_refusal(buyer.id, listing.seller_id)
    if refused:
        raise ChatError(refused, status=403)
    body = clean_body(body)
    screen_contact_details(body)  # a refusal must not leave an empty conversation behind
    conversation = get_or_create_direct_conversation(buyer.id, listing.seller_id)
    db.session.commit()
    return send_message(conversation, buyer, body, client_key, listing_id=listing.id)


def send_message(conversation, sender, body, client_key, listing_id=None, *, kind="text", card_id=None,
                 photos=(), _retried=False):
    """Store a message once per client key and deliver it. Returns (message, created).
    The order is the module docstring's: the lock, then what is read and written under it.

    `kind` and `card_id` make it a message of a kind a feature above chat renders (cards.py): its
    body is then that feature's own summary (the inbox preview, a moderator's context), not
    screened for contact details. What the caller wrote in this transaction before the call
    commits with the message, or is rolled back with a refused one.

    `photos`: checked, re-encoded and stored photos (chat/photos.py), rows with the message; the
    caller deletes their files when the send is refused or was a retry (created False)."""
    body = clean_body(body, allow_empty=bool(photos))
    values = {"conversation_id": conversation.id, "sender_id": sender.id, "body": body,
              "client_key": clean_client_key(client_key), "listing_id": listing_id, "created_at": utcnow(),
              "contact_flags": screen_contact_details(body) if kind == "text" else None,
              "kind": kind, "card_id": card_id}
    closed_at = _lock_conversation(conversation.id)
    members = _members(conversation)
    open_to_sender = closed_at is None and sender.id in members
    message_id = _store(values, members, _other_person(conversation, sender.id, members)) if open_to_sender else None
    if message_id is None:  # stored before (a retry), or refused
        db.session.rollback()
        existing = _stored_before(values)
        if existing is not None:  # a retry, also of a message stored before a block or the close
            return existing, False
        refusal = _refusal(conversation, sender.id, members, closed_at)
        if refusal is not None:
            raise refusal
        if _retried:
            raise ChatError("The message could not be sent. Please try again.", status=409)
        # The block that stopped it was lifted in the meantime: send it now.
        if kind != "text":  # the caller's writes went with the rollback: it must start again
            raise ChatError("The conversation changed meanwhile. Please try again.", status=409)
        return send_message(conversation, sender, body, client_key, listing_id=listing_id, photos=photos,
                            _retried=True)
    if photos:
        db.session.execute(insert(MessagePhoto), [
            {"message_id": message_id, "key": photo.key, "width": photo.width, "height": photo.height,
             "position": position} for position, photo in enumerate(photos)])
    recorded = realtime.record(members, BOARD_MESSAGE if conversation.kind == GROUP else MESSAGE,
                               {"conversation_id": conversation.id, "message_id": message_id, "sender_id": sender.id})
    if not photos:  # the live render need not look for photos or reactions (events._sent)
        for event in recorded:
            event.hints = NEW_WITHOUT_PHOTOS
    db.session.commit()
    metrics.observe_send()
    realtime.publish_committed()  # reads the message with its conversation (events._sent)
    return db.session.get(Message, message_id), True  # that same one, from the session


def mark_read(conversation, user, up_to_message_id):
    """Move `user`'s read cursor forward to `up_to_message_id` (never backwards). True if it moved."""
    participant = conversation.participant(user.id)
    up_to = min(int(up_to_message_id), conversation.last_message_id or 0)
    if participant is None or up_to <= participant.last_read_message_id:
        return False
    now = utcnow()
    _lock_conversation(conversation.id)
    moved = db.session.execute(
        update(Participant)
        .where(Participant.conversation_id == conversation.id, Participant.user_id == user.id,
               Participant.left_at.is_(None), Participant.last_read_message_id < up_to)
        .values(last_read_message_id=up_to, last_read_at=now)
    ).rowcount
    if not moved:
        db.session.rollback()
        return False
    unread = db.session.scalar(
        select(func.count()).select_from(Message)
        .where(Message.conversation_id == conversation.id, Message.sender_id != user.id, Message.id > up_to,
               Message.deleted_at.is_(None))  # a deleted message is not waiting to be read (changes.py)
    )
    db.session.execute(
        update(Participant)
        .where(Participant.conversation_id == conversation.id, Participant.user_id == user.id)
        .values(unread_count=unread,
                delivered_message_id=_greatest(Participant.delivered_message_id, up_to), delivered_at=now)
    )
    realtime.record(_read_audience(conversation, user.id), READ, {"conversation_id": conversation.id, "reader_id": user.id})
    db.session.commit()
    realtime.publish_committed()
    return True


def archive_conversation(conversation, user):
    """Put the conversation away from `user`'s inbox, up to its newest message now: a message
    after it brings the conversation back (queries._archived), without the send writing more."""
    _set_archived(conversation, user, select(func.coalesce(Conversation.last_message_id, 0))
                  .where(Conversation.id == conversation.id).scalar_subquery())


def unarchive_conversation(conversation, user):
    """Take the conversation out of `user`'s archive."""
    _set_archived(conversation, user, None)


def _set_archived(conversation, user, value):
    db.session.execute(update(Participant)
                       .where(Participant.conversation_id == conversation.id, Participant.user_id == user.id)
                       .values(archived_message_id=value))
    realtime.record([user.id], ARCHIVE_CHANGED, {"conversation_id": conversation.id})
    db.session.commit()
    realtime.publish_committed()


def mark_delivered(user_id, up_to_by_conversation, notify=None):
    """The messages up to these ids reached one of `user_id`'s streams or pages. Each other
    participant of a conversation whose cursor moved gets a receipt event; `notify`
    ({conversation id: user ids}) names them when the caller knows (the sender of a private
    conversation's message is its one other participant), saving a query per conversation.
    Returns the conversations whose cursor moved."""
    moved = _move_delivery_cursors(user_id, up_to_by_conversation, notify or {})
    db.session.commit()
    realtime.publish_committed()
    return moved


def record_deliveries(deliveries, notify):
    """`mark_delivered` for many recipients at once ({user id: {conversation id: up to}}), in one
    transaction: the realtime watch hands over a round of deliveries at a time."""
    for user_id, up_to_by_conversation in sorted(deliveries.items()):
        _move_delivery_cursors(user_id, up_to_by_conversation, notify.get(user_id, {}))
    db.session.commit()
    realtime.publish_committed()


def _move_delivery_cursors(user_id, up_to_by_conversation, notify):
    """In the open transaction: each conversation's cursor forward, and a receipt for the others
    when it moved; the receipt's live render gets the state it shows as a hint."""
    now, moved = utcnow(), []
    for conversation_id, up_to in sorted(up_to_by_conversation.items()):
        others = notify.get(conversation_id)
        if others is None:
            others = db.session.scalars(
                select(Participant.user_id)
                .where(Participant.conversation_id == conversation_id, Participant.user_id != user_id)
            ).all()
        others = sorted(others)
        row = db.session.connection().execute(_MARK_DELIVERED, {
            "p_conversation": conversation_id, "p_user": user_id, "p_up_to": up_to, "p_now": now,
            "p_direct": DIRECT, "p_notify": others[0] if len(others) == 1 else None}).first()
        if row is None:
            continue
        moved.append(conversation_id)
        receipts = realtime.record(others, RECEIPT, {"conversation_id": conversation_id, "recipient_id": user_id})
        if len(others) == 1 and row.notify_last_sent_message_id is not None:
            receipt = receipt_of(row.notify_last_sent_message_id, [row])
            for event in receipts:
                event.hints = {"receipt": receipt}
    return moved


def _store(values, members, other):
    """The message stored, made the conversation's last and counted for every member (the
    statements above): its id, or None when nothing was inserted."""
    connection = db.session.connection()
    params = {**values, "members": sorted(members), "other": other,
              "notify_due_at": values["created_at"] + timedelta(seconds=current_app.config["NOTIFY_DELAY_S"])}
    if is_postgresql(db.session):
        return connection.execute(_STORE_AT_ONCE, params).scalar()
    insert, *updates = _STORE_STEPS
    message_id = connection.execute(insert, params).scalar()
    if message_id is not None:
        for update_ in updates:
            connection.execute(update_, {**params, "message_id": message_id})
    return message_id


def _members(conversation):
    """The ids of the conversation's current participants. A board's are read again under its row
    lock (members come and go, and a membership change takes the lock too); a private
    conversation's are its buyer and seller, who never change."""
    if conversation.kind == DIRECT:
        return {conversation.buyer_id, conversation.seller_id}
    return set(db.session.scalars(
        select(Participant.user_id).where(Participant.conversation_id == conversation.id, Participant.left_at.is_(None))
    ))


def _other_person(conversation, sender_id, members):
    """The one a block would stand between the sender and: the other person of a private
    conversation; None in a board, where blocks don't stop a send."""
    others = sorted(members - {sender_id})
    return others[0] if conversation.kind == DIRECT and others else None


def _refusal(conversation, sender_id, members, closed_at):
    """Why the sender may not send in the conversation now (a ChatError), or None."""
    if closed_at is not None:
        return ChatError("This board is closed: it takes no new messages.", status=403)
    if sender_id not in members:
        return ChatError("You are no longer a member of this conversation.", status=403)
    refused = blocks.send_refusal(conversation, sender_id, members)
    return ChatError(refused, status=403) if refused else None


def _read_audience(conversation, reader_id):
    """Who gets a read event. In a private conversation both sides (the other sees "Seen"). In a
    board the reader's own tabs and the author of the board's last message, whose "seen by" line
    changed: a read must not cost an event per member in a 500-member board; the others' lines
    are brought up to date by the next message (and on every page load)."""
    if conversation.kind != GROUP:
        return sorted({conversation.buyer_id, conversation.seller_id})
    author_id = db.session.scalar(select(Message.sender_id).where(Message.id == (conversation.last_message_id or 0)))
    return sorted({reader_id} | ({author_id} if conversation.participant(author_id) else set()))


def _stored_before(values):
    """The message these `values` stored before (the same sender's client key), or None."""
    return db.session.scalars(
        select(Message).where(Message.conversation_id == values["conversation_id"],
                              Message.sender_id == values["sender_id"], Message.client_key == values["client_key"])
    ).first()


def _greatest(column, value):
    """SQL max of two values: `greatest()` on PostgreSQL, two-argument `max()` on SQLite."""
    return func.greatest(column, value) if is_postgresql(db.session) else func.max(column, value)


# Built once and run on the session's connection: every send and cursor move takes it.
_LOCK = (update(_conversations).where(_conversations.c.id == bindparam("conversation_id"))
         .values(id=_conversations.c.id).returning(_conversations.c.closed_at))


def _lock_conversation(conversation_id):
    """Take the conversation's row lock for the rest of the transaction (see module docstring).
    Returns the conversation's `closed_at` as of the lock."""
    return db.session.connection().execute(_LOCK, {"conversation_id": conversation_id}).scalar()
