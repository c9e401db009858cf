"""State changes of chat. Each function owns its transaction and publishes after commit.

Every write to a conversation first takes that conversation's row lock (an UPDATE of the row),
so sends and cursor moves on one conversation are serialised: message ids then grow in commit
order inside a conversation, and read/unread counters never lose an update. Per-user event seqs
are allocated by `realtime.record` after that, in ascending user order (no deadlock cycles).
Board membership changes take the same lock (boards/services.py), so a send addresses exactly the
members current when it commits: the member list is read again once the lock is held.
"""
import re
import uuid

from flask import current_app
from sqlalchemy import DateTime, Integer, bindparam, func, select, text, update
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from .. import realtime
from ..database import insert_for, is_postgresql
from ..extensions import db
from ..models_base import utcnow
from ..text import CONTROL_CHARACTERS as _CONTROL
from . import blocks, contact
from .models import BUYER, DIRECT, GROUP, SELLER, Conversation, Message, Participant
from .queries import receipt_of

_conversations, _participants, _messages = Conversation.__table__, Participant.__table__, Message.__table__

MAX_BODY_CHARS = 4000
MESSAGE = "chat.message"
# A board's messages are their own kind: boards have no delivery receipts, so their events have no
# delivery hook, and a member's stream does no work after writing one (500 members, 500 streams).
BOARD_MESSAGE = "chat.board_message"
READ = "chat.read"
RECEIPT = "chat.receipt"

_CLIENT_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class ChatError(ValueError):
    """A send or action was refused; the message is shown where the action was."""

    def __init__(self, message, status=422):
        super().__init__(message)
        self.status = status


# The send's statements, built once: a message's cost is mostly per-statement overhead, and a
# statement built per call is constructed and cache-keyed again every time.
_SEND_LOCK = (
    update(_conversations).where(_conversations.c.id == bindparam("p_conversation"))
    .values(last_message_at=bindparam("p_now"), message_count=_conversations.c.message_count + 1,
            last_listing_id=func.coalesce(bindparam("p_listing", type_=Integer), _conversations.c.last_listing_id))
    .returning(*_conversations.c)
)
# The message, stored once per client key and only if no block stands between the sender and
# `p_other` (the other person of a private conversation; NULL in a board, where blocks don't stop
# a send). It runs after the lock was taken, so it reads every block committed before the lock
# (blocks.py takes the same lock): a send racing a block commits before it or is refused. The
# client key's unique index makes a retry (or a double click that waited for the lock) insert
# nothing; it gets the message stored the first time. Written out because both databases take the
# same ON CONFLICT clause, and SQLAlchemy never caches its dialect INSERTs that can say it: built
# with them, the statement is compiled again for every message. On PostgreSQL the values are cast
# to their columns' types (a NULL in a SELECT list would be text); SQLite needs no casts.
_SEND_COLUMNS = {"conversation_id": "INTEGER", "sender_id": "INTEGER", "body": "TEXT", "client_key": "VARCHAR(64)",
                 "listing_id": "INTEGER", "created_at": "TIMESTAMP", "contact_flags": "VARCHAR(40)"}


def _insert_message_sql(cast):
    values = ", ".join(f"CAST(:{c} AS {t})" if cast else f":{c}" for c, t in _SEND_COLUMNS.items())
    return (f"INSERT INTO messages ({', '.join(_SEND_COLUMNS)}) SELECT {values}"
            f" WHERE {blocks.none_between_sql(':sender_id', ':p_other')}"
            " ON CONFLICT (conversation_id, sender_id, client_key) DO NOTHING RETURNING id")


def _last_message_sql(message_id, source=""):
    """The conversation's last message is the new one (`message_id`: the SQL of its id)."""
    return f"UPDATE conversations SET last_message_id = {message_id}{source} WHERE conversations.id = :conversation_id"


def _count_sql(message_id, source="", also=""):
    """Every member's counters in one statement: the recipients have one more unread, the sender
    has read up to their own message (`message_id`: the SQL of its id), which is now their last
    sent one. Returns the members' participant rows as updated (and `also`)."""
    mine = "participants.user_id = :sender_id"
    return ("UPDATE participants SET"
            f" unread_count = CASE WHEN {mine} THEN 0 ELSE participants.unread_count + 1 END,"
            f" last_read_message_id = CASE WHEN {mine} THEN {message_id} ELSE participants.last_read_message_id END,"
            f" last_read_at = CASE WHEN {mine} THEN :created_at ELSE participants.last_read_at END,"
            f" last_sent_message_id = CASE WHEN {mine} THEN {message_id} ELSE participants.last_sent_message_id END"
            f"{source} WHERE participants.conversation_id = :conversation_id AND participants.user_id IN :p_members"
            f" RETURNING {', '.join('participants.' + c.name for c in _participants.c)}{also}")


def _send_statement(sql, **columns):
    """`sql` with its message values typed as their columns, the members as a list, and the
    returned `columns` typed."""
    statement = text(sql).bindparams(
        *(bindparam(column, type_=_messages.c[column].type) for column in _SEND_COLUMNS if f":{column}" in sql),
        *([bindparam("p_members", expanding=True)] if ":p_members" in sql else []))
    return statement.columns(**columns) if columns else statement


# SQLite (no data-modifying CTEs): the message, the last message and the counters, one by one.
_SEND_INSERT = _send_statement(_insert_message_sql(cast=False), id=Integer)
_SEND_LAST_MESSAGE = _send_statement(_last_message_sql(":message_id"))
_SEND_COUNTERS = _send_statement(_count_sql(":message_id"), **{c.name: c.type for c in _participants.c})
# PostgreSQL: the three in one statement, returning the counted participant rows and the new
# message's id; no row when nothing was inserted.
_SEND_STORE = _send_statement(
    f"WITH message AS ({_insert_message_sql(cast=True)}),"
    f" last AS ({_last_message_sql('message.id', ' FROM message')})"
    f" {_count_sql('message.id', ' FROM message', also=', message.id AS message_id')}")
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


def clean_body(raw):
    """The message text as stored: newlines normalised and kept, controls dropped, trimmed."""
    text = (raw or "").replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text).strip()
    if not text:
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


def send_message(conversation, sender, body, client_key, listing_id=None, *, _retried=False):
    """Store a message once per client key and deliver it. Returns (message, created)."""
    body = clean_body(body)
    contact_flags = screen_contact_details(body)
    client_key = clean_client_key(client_key)
    now = utcnow()
    locked = db.session.connection().execute(
        _SEND_LOCK, {"p_conversation": conversation.id, "p_now": now, "p_listing": listing_id}).one()
    try:
        members = _members_open_to(conversation, sender.id, locked.closed_at)
    except ChatError:
        db.session.rollback()
        existing = _message_by_key(conversation.id, sender.id, client_key)
        if existing is not None:  # a retry of a message stored before the conversation closed to them
            return existing, False
        raise
    # Core statements on the tables: the send path needs no unit of work and no ORM bookkeeping.
    values = dict(conversation_id=conversation.id, sender_id=sender.id, body=body, client_key=client_key,
                  listing_id=listing_id, created_at=now, contact_flags=contact_flags)
    stored = _store(conversation, members, values)
    if stored is None:  # stored before (a retry), or refused by a block
        db.session.rollback()
        existing = _message_by_key(conversation.id, sender.id, client_key)
        if existing is not None:  # a retry, also of a message stored before a block came about
            return existing, False
        refused = blocks.send_refusal(conversation, sender.id, members)
        if refused:
            raise ChatError(refused, status=403)
        if _retried:
            raise ChatError("The message could not be sent. Please try again.", status=409)
        # The block that stopped it was lifted in the meantime: send it now.
        return send_message(conversation, sender, body, client_key, listing_id=listing_id, _retried=True)
    message_id, counted = stored
    realtime.record(
        members, BOARD_MESSAGE if conversation.kind == GROUP else MESSAGE,
        {"conversation_id": conversation.id, "message_id": message_id, "sender_id": sender.id},
    )
    if conversation.kind == DIRECT:
        # The statements above returned, under the lock, every row the publish renders from (the
        # conversation and its two people): they become the loaded state, kept through the commit
        # rather than read again. (A board's members can change before the lock: a board is re-read.)
        _load_rows(conversation, locked, last_message_id=message_id)
        for row in counted:
            _load_rows(conversation.participant(row.user_id), row)
        _commit_keeping_loaded()
    else:
        db.session.commit()
    # The stored message as it is, without reading it back: the publish and the answer render it.
    message = Message(id=message_id, hidden_at=None, hidden_by_id=None, hidden_reason=None, **values)
    make_transient_to_detached(message)
    db.session.add(message)
    realtime.publish_committed()
    return message, True


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
        .where(Message.conversation_id == conversation.id, Message.sender_id != user.id, Message.id > up_to)
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
        row = db.session.execute(_MARK_DELIVERED, {
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


def _store(conversation, members, values):
    """Insert the message unless its client key was stored before or a block stands between the
    two people of a private conversation, make it the conversation's last message, and count it
    for every member: (message id, the members' participant rows as updated), or None when
    nothing was inserted. One statement on PostgreSQL, three on SQLite."""
    others = sorted(members - {values["sender_id"]})
    params = {**values, "p_other": others[0] if conversation.kind == DIRECT and others else None}
    connection = db.session.connection()
    if is_postgresql(db.session):
        rows = connection.execute(_SEND_STORE, {**params, "p_members": sorted(members)}).all()
        return (rows[0].message_id, rows) if rows else None
    message_id = connection.execute(_SEND_INSERT, params).scalar()
    if message_id is None:
        return None
    connection.execute(_SEND_LAST_MESSAGE, {"conversation_id": conversation.id, "message_id": message_id})
    counted = connection.execute(_SEND_COUNTERS,
                                 {**params, "p_members": sorted(members), "message_id": message_id}).all()
    return message_id, counted


def _members_open_to(conversation, sender_id, closed_at):
    """The ids of the conversation's current participants; a ChatError when the sender is no
    longer one of them or the conversation is closed. A board's members are read
    again under its row lock (members come and go); a private conversation's two people never
    change, so the ones the guard loaded are still them."""
    if conversation.kind == DIRECT:
        members = {p.user_id for p in conversation.participants}
    else:
        members = set(db.session.scalars(
            select(Participant.user_id)
            .where(Participant.conversation_id == conversation.id, Participant.left_at.is_(None))
        ))
    if sender_id not in members or closed_at is not None:
        if closed_at is not None:
            raise ChatError("This board is closed: it takes no new messages.", status=403)
        raise ChatError("You are no longer a member of this conversation.", status=403)
    return members


def _read_audience(conversation, reader_id):
    """Who gets a read event. In a private conversation both sides (the other sees "Seen"). In a
    board the reader's own tabs and the author of the board's last message, whose "seen by" line
    changed: a read must not cost an event per member in a 500-member board; the others' lines
    are brought up to date by the next message (and on every page load)."""
    if conversation.kind != GROUP:
        return sorted(p.user_id for p in conversation.participants)
    author_id = db.session.scalar(select(Message.sender_id).where(Message.id == (conversation.last_message_id or 0)))
    return sorted({reader_id} | ({author_id} if conversation.participant(author_id) else set()))


def _message_by_key(conversation_id, sender_id, client_key):
    return db.session.scalars(
        select(Message).where(Message.conversation_id == conversation_id, Message.sender_id == sender_id,
                              Message.client_key == client_key)
    ).first()


def _greatest(column, value):
    """SQL max of two values: `greatest()` on PostgreSQL, two-argument `max()` on SQLite."""
    return func.greatest(column, value) if is_postgresql(db.session) else func.max(column, value)


def _load_rows(obj, row, **values):
    """Make `row` (a RETURNING row of `obj`'s table, plus `values`) the loaded state of `obj`;
    what else the row carries (say, the id of the message that was counted) is left out."""
    columns = obj.__mapper__.column_attrs
    for key, value in {**row._mapping, **values}.items():
        if key in columns:
            set_committed_value(obj, key, value)


def _commit_keeping_loaded():
    """Commit without expiring what the session holds (its state was just read back under the
    lock), so the publish that follows renders it without reading it again."""
    session = db.session()
    session.expire_on_commit, expire = False, session.expire_on_commit
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


def _lock_conversation(conversation_id):
    """Take the conversation's row lock for the rest of the transaction (see module docstring).
    Returns the conversation's `closed_at` as of the lock. (A send takes it with its own UPDATE.)"""
    return db.session.execute(
        update(_conversations).where(_conversations.c.id == conversation_id).values(id=_conversations.c.id)
        .returning(_conversations.c.closed_at)
    ).scalar()
