"""Reads for chat pages and fragments, and the one guard for conversations."""
from dataclasses import dataclass, field

from flask import abort
from flask_login import current_user
from sqlalchemy import bindparam, exists, func, or_, select
from sqlalchemy.orm import joinedload, selectinload

from ..extensions import db
from ..listings.models import Listing
from .models import DIRECT, GROUP, OWNER, SELLER, Conversation, Message, Participant

PAGE_SIZE = 30
INBOX_LIMIT = 100


# The conversation, its people and their accounts in one query (not one per relationship), built
# once: every chat request starts here, and `Session.get` with loader options builds its statement
# and computes the options' cache key again on every call.
_WITH_PEOPLE = (select(Conversation).options(joinedload(Conversation.participants))
                .where(Conversation.id == bindparam("conversation_id")))


def get_conversation_for_participant(conversation_id, user=None):
    """The conversation if `user` (default: the logged-in user) takes part in it, else 404.

    The single guard for a conversation: the page, history paging, every POST and the stream's
    renderers all go through it. Strangers get 404, not 403, so ids reveal nothing.
    """
    user = user or current_user
    if not user.is_authenticated:
        abort(401)
    conversation = db.session.execute(_WITH_PEOPLE, {"conversation_id": conversation_id}).unique().scalar_one_or_none()
    if conversation is None or conversation.participant(user.id) is None:
        abort(404)
    return conversation


@dataclass
class InboxRow:
    conversation: Conversation
    me: Participant
    counterpart: object  # User
    last_message: Message | None
    listing: Listing | None

    @property
    def activity_key(self):
        """Sort key for live re-ordering (numeric string, larger = more recent)."""
        return f"{self.conversation.last_message_id or 0}"


def inbox_rows(user_id, seller_only=False, listing_id=None, limit=INBOX_LIMIT, conversation_ids=None):
    query = (
        select(Participant)
        .join(Conversation, Conversation.id == Participant.conversation_id)
        # Boards are listed from the start (a member was added); private ones from the first message.
        .where(Participant.user_id == user_id, Participant.left_at.is_(None),
               or_(Conversation.message_count > 0, Conversation.kind == GROUP))
        .options(joinedload(Participant.conversation).selectinload(Conversation.participants))
        .order_by(Conversation.last_message_id.desc().nulls_last(), Conversation.id.desc())
        .limit(limit)
    )
    if seller_only:
        query = query.where(Participant.role == SELLER)
    if listing_id is not None:
        query = query.where(exists().where(Message.conversation_id == Conversation.id, Message.listing_id == listing_id))
    if conversation_ids is not None:
        query = query.where(Participant.conversation_id.in_(conversation_ids))
    participants = db.session.scalars(query).unique().all()
    last_ids = [p.conversation.last_message_id for p in participants if p.conversation.last_message_id]
    messages = {m.id: m for m in db.session.scalars(select(Message).where(Message.id.in_(last_ids)))} if last_ids else {}
    listings = _listings_by_id({p.conversation.last_listing_id for p in participants})
    rows = []
    for p in participants:
        others = p.conversation.others(user_id)
        rows.append(InboxRow(p.conversation, p, others[0].user if others else None,
                             messages.get(p.conversation.last_message_id), listings.get(p.conversation.last_listing_id)))
    return rows


def inbox_row(user_id, conversation_id):
    rows = inbox_rows(user_id, conversation_ids=[conversation_id], limit=1)
    return rows[0] if rows else None


def inbox_row_for(conversation, user_id, last_message=None):
    """`inbox_row` for a conversation already loaded with its participants (a stream renderer
    has it): the same row from one query instead of four, which matters because every message
    renders it once per recipient. `last_message` saves a lookup when it is the newest one."""
    me = conversation.participant(user_id)
    # The same rule as `inbox_rows`: boards are listed from the start, private ones from the first message.
    if me is None or not (conversation.message_count or conversation.is_board):
        return None
    if last_message is None or last_message.id != conversation.last_message_id:
        last_message = db.session.get(Message, conversation.last_message_id) if conversation.last_message_id else None
    others = conversation.others(user_id)
    return InboxRow(conversation, me, others[0].user if others else None, last_message,
                    listing_with_photos(conversation.last_listing_id))


_LISTING_WITH_PHOTOS = (select(Listing).options(joinedload(Listing.photos))
                        .where(Listing.id == bindparam("listing_id")))


def listing_with_photos(listing_id):
    """A listing with its photos (an inbox row's thumbnail) in one query; None for none."""
    if listing_id is None:
        return None
    return db.session.execute(_LISTING_WITH_PHOTOS, {"listing_id": listing_id}).unique().scalar_one_or_none()


def _listings_by_id(listing_ids):
    """{id: listing} with their photos (inbox thumbnails), in two queries for all of them."""
    listing_ids = sorted(i for i in listing_ids if i is not None)
    if not listing_ids:
        return {}
    listings = db.session.scalars(select(Listing).where(Listing.id.in_(listing_ids))
                                  .options(selectinload(Listing.photos)))
    return {listing.id: listing for listing in listings}


# Hot reads (every message) as Core statements on the table, built once.
_participants = Participant.__table__
_TOTAL_UNREAD_OF = (select(_participants.c.user_id, func.sum(_participants.c.unread_count))
                    .where(_participants.c.user_id.in_(bindparam("user_ids", expanding=True)))
                    .group_by(_participants.c.user_id))


def total_unread_of(user_ids):
    """{user id: total unread} for these users (absent: none), in one query."""
    if not user_ids:
        return {}
    return dict(db.session.connection().execute(_TOTAL_UNREAD_OF, {"user_ids": sorted(user_ids)}).all())


def total_unread(user_id):
    return db.session.scalar(
        select(func.coalesce(func.sum(Participant.unread_count), 0)).where(Participant.user_id == user_id)
    )


def history(conversation_id, before=None, limit=PAGE_SIZE):
    """Up to `limit` messages before message id `before` (newest page when None), oldest first,
    and whether older ones exist."""
    query = (
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .options(joinedload(Message.listing).selectinload(Listing.photos))
        .order_by(Message.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(Message.id < before)
    newest_first = db.session.scalars(query).unique().all()
    return list(reversed(newest_first[:limit])), len(newest_first) > limit


def message_in(conversation_id, message_id):
    return db.session.scalars(
        select(Message).where(Message.id == message_id, Message.conversation_id == conversation_id)
        .options(joinedload(Message.listing).selectinload(Listing.photos))
    ).unique().first()


@dataclass
class Receipt:
    """What the viewer sees under their last message: sent → delivered → seen."""

    message_id: int | None
    status: str | None  # "sent" | "delivered" | "seen" | None (no message of mine)
    at: object = None

    @property
    def order(self):
        """Grows with every step of every message (a newer message's "sent" is after an older one's
        "seen"): a page never lets a receipt that arrives late replace a later one (static/js/chat.js)."""
        return (self.message_id or 0) * 4 + _RECEIPT_STEPS.index(self.status)


_RECEIPT_STEPS = (None, "sent", "delivered", "seen")


def receipt_for(conversation, viewer_id):
    """The receipt line of either kind: a private conversation's for the viewer, a board's "seen
    by" (the same for every member)."""
    if conversation.kind == GROUP:
        return seen_by(conversation)
    return receipts_for(conversation, [viewer_id])[viewer_id]


def members(board):
    """A board's current members, owner first, then by name."""
    return sorted(board.participants, key=lambda p: (p.role != OWNER, p.user.display_name.lower(), p.user_id))


@dataclass
class SeenBy:
    """Read state of a board's last message: which of the other members have seen it."""

    message_id: int | None
    seen: list = field(default_factory=list)  # Users
    unseen: list = field(default_factory=list)
    status = None  # (private conversations' receipts have one)

    @property
    def audience(self):
        return len(self.seen) + len(self.unseen)


def seen_by(board):
    last = board.last_message_id
    if not last:
        return SeenBy(None)
    author_id = db.session.scalar(select(Message.sender_id).where(Message.id == last))
    others = [p for p in members(board) if p.user_id != author_id]
    return SeenBy(last, [p.user for p in others if p.last_read_message_id >= last],
                  [p.user for p in others if p.last_read_message_id < last])


def receipts_for(conversation, viewer_ids):
    """{viewer id: `receipt_for(conversation, viewer)`} for a private conversation, from its
    loaded participants (a new message renders the receipt of both people)."""
    return {viewer_id: _receipt(conversation.participant(viewer_id), conversation.others(viewer_id))
            for viewer_id in viewer_ids}


_CURSORS = (select(_participants.c.user_id, _participants.c.last_read_message_id, _participants.c.last_read_at,
                   _participants.c.delivered_message_id, _participants.c.delivered_at,
                   _participants.c.last_sent_message_id)
            .where(_participants.c.conversation_id == bindparam("conversation_id"), _participants.c.left_at.is_(None)))


def private_receipt(conversation_id, viewer_id):
    """`receipt_for` a private conversation from one query that reads only the cursors (not the
    conversation, its participants and their accounts); None when the viewer is not a participant."""
    rows = db.session.connection().execute(_CURSORS, {"conversation_id": conversation_id}).all()
    me = next((row for row in rows if row.user_id == viewer_id), None)
    return _receipt(me, [row for row in rows if row.user_id != viewer_id]) if me is not None else None


def _receipt(me, others):
    """The receipt of `me`'s last sent message, from the cursors of the `others` (participants or rows)."""
    return receipt_of(me.last_sent_message_id if me is not None else 0, others)


def receipt_of(my_last, others):
    """The receipt of the message `my_last` (0: none), from the cursors of the `others`: their
    read and delivered message ids and times (participants or rows)."""
    if not my_last:
        return Receipt(None, None)
    if others and all(p.last_read_message_id >= my_last for p in others):
        return Receipt(my_last, "seen", max(p.last_read_at for p in others if p.last_read_at))
    if others and all(p.delivered_message_id >= my_last for p in others):
        return Receipt(my_last, "delivered", max(p.delivered_at for p in others if p.delivered_at))
    return Receipt(my_last, "sent")


def counterpart_conversations(user_id, limit=200):
    """(counterpart user id, conversation id) pairs of a user's private conversations, most recent
    first (boards tell their members through boards/events.py)."""
    mine = select(Participant.conversation_id).where(Participant.user_id == user_id)
    return db.session.execute(
        select(Participant.user_id, Participant.conversation_id)
        .join(Conversation, Conversation.id == Participant.conversation_id)
        .where(Participant.conversation_id.in_(mine), Participant.user_id != user_id, Conversation.kind == DIRECT)
        .order_by(Conversation.last_message_id.desc())
        .limit(limit)
    ).all()


def has_direct_conversation_about(buyer_id, listing_id):
    """Whether this buyer already has a private conversation with the seller of this listing."""
    return db.session.scalar(
        select(exists().where(Conversation.kind == DIRECT, Conversation.buyer_id == buyer_id,
                              Conversation.seller_id == Listing.seller_id, Listing.id == listing_id,
                              Conversation.message_count > 0))
    )
