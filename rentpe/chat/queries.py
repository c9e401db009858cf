"""Reads for chat pages and fragments, and the one guard for conversations."""
from dataclasses import dataclass, field

from flask import abort, current_app
from flask_login import current_user
from sqlalchemy import bindparam, exists, func, or_, select
from sqlalchemy.orm import contains_eager, joinedload, lazyload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from .. import paging
from ..accounts.models import User
from ..extensions import db
from ..listings.models import Listing
from .models import DIRECT, GROUP, OWNER, SELLER, Conversation, Message, MessageReaction, Participant

PAGE_SIZE = 30

# The tables, for the reads built without ORM entities.
_messages, _participants = Message.__table__, Participant.__table__


# The conversation, its people and their accounts in one query (not one per relationship), built
# once: every chat request starts here, and `Session.get` with loader options builds its statement
# and computes the options' cache key again on every call.
_WITH_PEOPLE = (select(Conversation).options(joinedload(Conversation.participants))
                .where(Conversation.id == bindparam("conversation_id")))
# The conversation alone (its participants are read if something asks for them), and the same if
# the user is one of its current participants.
_ALONE = select(Conversation).options(lazyload(Conversation.participants))
_BY_ID = _ALONE.where(Conversation.id == bindparam("conversation_id"))
_IF_PARTICIPANT = _BY_ID.where(
    exists().where(Participant.conversation_id == Conversation.id, Participant.user_id == bindparam("user_id"),
                   Participant.left_at.is_(None)))


def conversation_alone(conversation_id):
    """The conversation without its participants and their accounts (see `people` for those), or
    None: a board has hundreds."""
    return db.session.scalars(_BY_ID, {"conversation_id": conversation_id}).one_or_none()


# What a message shows besides its text: its photos and reactions (with who reacted), one query each
# for all the messages of a page.
WITH_EXTRAS = (selectinload(Message.photos), selectinload(Message.reactions).joinedload(MessageReaction.user))

_WITH_MESSAGE_ONLY = (select(Conversation, Message).options(lazyload(Conversation.participants))
                      .where(Conversation.id == bindparam("conversation_id"), Message.id == bindparam("message_id"),
                             Message.conversation_id == Conversation.id))
_WITH_MESSAGE = _WITH_MESSAGE_ONLY.options(*WITH_EXTRAS)


def conversation_and_message(conversation_id, message_id, new=False):
    """(conversation, message) in one query, without the participants; (None, None) if the
    message is not in that conversation. `new`: the message was just stored without photos (the
    send's live publish says so), so it has neither photos nor reactions: no query for them."""
    statement = _WITH_MESSAGE_ONLY if new else _WITH_MESSAGE
    row = db.session.execute(statement, {"conversation_id": conversation_id, "message_id": message_id}).first()
    if row is None:
        return None, None
    if new:
        set_committed_value(row[1], "photos", [])
        set_committed_value(row[1], "reactions", [])
    return row[0], row[1]


def get_conversation_for_participant(conversation_id, user=None, people=True):
    """The conversation if `user` (default: the logged-in user) takes part in it, else 404.

    The single guard for a conversation: the page, history paging, every POST and the stream's
    renderers all go through it. Strangers get 404, not 403, so ids reveal nothing.
    `people=False` leaves its participants and their accounts unread (until something asks for
    them): a send needs neither, and a board has hundreds.
    """
    user = user or current_user
    if not user.is_authenticated:
        abort(401)
    if not people:
        conversation = db.session.scalars(_IF_PARTICIPANT, {"conversation_id": conversation_id,
                                                            "user_id": user.id}).one_or_none()
        if conversation is None:
            abort(404)
        return conversation
    conversation = db.session.execute(_WITH_PEOPLE, {"conversation_id": conversation_id}).unique().scalar_one_or_none()
    if conversation is None or conversation.participant(user.id) is None:
        abort(404)
    return conversation


@dataclass
class InboxRow:
    conversation: Conversation
    me: Participant
    last_message: Message | None
    listing: Listing | None
    # [(user id, display name)] of the current participants in their order; read from the
    # conversation's participants when not given (a new message's row gets them as plain rows).
    names: list | None = None

    @property
    def people(self):
        if self.names is None:
            self.names = [(p.user_id, p.user.display_name) for p in self.conversation.participants]
        return self.names

    @property
    def activity_key(self):
        """Sort key for live re-ordering (numeric string, larger = more recent)."""
        return f"{self.conversation.last_message_id or 0}"


# Inbox filters (`GET /inbox?filter=…`); None is every conversation not put away.
UNREAD, ARCHIVED = "unread", "archived"
FILTERS = (UNREAD, ARCHIVED)
# Past any real inbox (30 × 10,000 conversations); a page further shows the last rows there are.
MAX_INBOX_PAGE = 10_000


def _archived():
    """Put away by the participant and no newer message since (a new message brings it back)."""
    return Participant.archived_message_id.is_not(None) & (
        Participant.archived_message_id >= func.coalesce(Conversation.last_message_id, 0))


def _activity():
    """Newest activity first: the conversation's last message id (a board without messages last),
    then the newest conversation."""
    return func.coalesce(Conversation.last_message_id, 0)


@dataclass(frozen=True)
class InboxCursor:
    """Where a page of the inbox ends (`?after=<last message id>-<conversation id>`): the next
    page starts after it, whatever moved to the top since the page was read."""

    activity: int
    conversation_id: int

    def __str__(self):
        return f"{self.activity}-{self.conversation_id}"

    @classmethod
    def parse(cls, raw):
        """The cursor in `raw`, or None for anything else."""
        parts = (raw or "").split("-")
        if len(parts) != 2 or not all(p.isdecimal() and len(p) < 19 for p in parts):
            return None
        return cls(int(parts[0]), int(parts[1]))

    @classmethod
    def of(cls, row):
        return cls(row.conversation.last_message_id or 0, row.conversation.id)


def inbox_page(user_id, filter=None, page=1, after=None, seller_only=False, listing_id=None, per_page=None):
    """One page of a person's inbox, newest activity first (a `Page` of `InboxRow`s): page
    `page` by offset (links), or the rows after the cursor `after` (the "More" button)."""
    per_page = per_page or current_app.config["INBOX_PAGE_SIZE"]
    query = _inbox_query(user_id, filter, seller_only, listing_id)
    if after is not None:
        query = query.where(or_(_activity() < after.activity,
                                (_activity() == after.activity) & (Conversation.id < after.conversation_id)))
    else:
        query = query.offset((page - 1) * per_page)
    page = paging.Page.of_rows(_rows_of(query.limit(per_page + 1)), page, per_page)
    # Where the next page starts (the "More" button), whatever order the rows are shown in.
    page.query = InboxCursor.of(page.items[-1]) if page.items else None
    if seller_only:
        # Buyers waiting for an answer first, each group newest first (the order is stable); live
        # rows keep it by the rule for `.unread` in static/css/chat.css.
        page.items.sort(key=lambda row: not row.me.unread_count)
    return page


def inbox_list_id(base, filter, page, listing_id=None):
    """The element id of an inbox list on a page: live rows go to the lists they belong to by it
    (templates/chat/events/inbox_row.html). Only a list that starts at the top gets new rows."""
    if page > 1:
        return f"{base}-page"
    if filter == ARCHIVED:
        return f"{base}-archived"
    if listing_id is not None:
        return f"seller-inbox-listing-{listing_id}"
    return f"{base}-{filter}" if filter else base


def inbox_rows(user_id, seller_only=False, listing_id=None, limit=30, conversation_ids=None,
               filter=None):
    query = _inbox_query(user_id, filter, seller_only, listing_id)
    if conversation_ids is not None:
        query = query.where(Participant.conversation_id.in_(conversation_ids))
    return _rows_of(query.limit(limit))


def _inbox_query(user_id, filter, seller_only, listing_id):
    query = (
        select(Participant)
        .join(Conversation, Conversation.id == Participant.conversation_id)
        # Boards are listed from the start (a member was added); private ones from the first message.
        .where(Participant.user_id == user_id, Participant.left_at.is_(None),
               or_(Conversation.message_count > 0, Conversation.kind == GROUP))
        # The conversation from the join above (a second, eager join would be made for every one
        # of the person's conversations before the page is cut); the person's own account unread.
        .options(contains_eager(Participant.conversation).selectinload(Conversation.participants),
                 lazyload(Participant.user))
        .order_by(_activity().desc(), Conversation.id.desc())
    )
    if filter == ARCHIVED:
        query = query.where(_archived())
    elif filter != "any":
        query = query.where(~_archived())
    if filter == UNREAD:
        query = query.where(Participant.unread_count > 0)
    if seller_only:
        query = query.where(Participant.role == SELLER)
    if listing_id is not None:
        # Not correlated: the listing's messages are read once from their index (a check per
        # conversation would read each conversation's messages).
        query = query.where(Participant.conversation_id.in_(
            select(Message.conversation_id).where(Message.listing_id == listing_id)))
    return query


def _rows_of(query):
    participants = db.session.scalars(query).unique().all()
    last_ids = [p.conversation.last_message_id for p in participants if p.conversation.last_message_id]
    messages = {m.id: m for m in db.session.scalars(select(Message).where(Message.id.in_(last_ids)))} if last_ids else {}
    listings = _listings_by_id({p.conversation.last_listing_id for p in participants})
    return [InboxRow(p.conversation, p, messages.get(p.conversation.last_message_id),
                     listings.get(p.conversation.last_listing_id)) for p in participants]


# Built once and run on the connection (no ORM entities): every new message's live inbox row reads it.
_LISTING_IDS = (select(_messages.c.listing_id).distinct()
                .where(_messages.c.conversation_id == bindparam("conversation_id"), _messages.c.listing_id.is_not(None)))


def listing_ids_of(conversation_id):
    """The listings a conversation's messages asked about (the dashboard's inbox by listing)."""
    return db.session.connection().execute(_LISTING_IDS, {"conversation_id": conversation_id}).scalars().all()


def inbox_row(user_id, conversation_id):
    rows = inbox_rows(user_id, conversation_ids=[conversation_id], limit=1, filter="any")
    return rows[0] if rows else None


def inbox_row_for(conversation, user_id, last_message=None):
    """`inbox_row` for a loaded conversation (a stream renderer has it), its people read as rows
    (a board has hundreds). `last_message` saves a lookup when it is the newest one."""
    me = conversation.participant(user_id)
    # The same rule as `inbox_rows`: boards are listed from the start, private ones from the first message.
    if me is None or not (conversation.message_count or conversation.is_board):
        return None
    if last_message is None or last_message.id != conversation.last_message_id:
        last_message = db.session.get(Message, conversation.last_message_id) if conversation.last_message_id else None
    # A board's people as rows (hundreds); a private conversation's two come with `participant`.
    names = None if not conversation.is_board else [
        (row.user_id, row.display_name) for row in people(conversation.id).values()]
    return InboxRow(conversation, me, last_message, listing_with_photos(conversation.last_listing_id), names)


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
_users = User.__table__


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
        .options(joinedload(Message.listing).selectinload(Listing.photos), *WITH_EXTRAS)
        .order_by(Message.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(Message.id < before)
    newest_first = db.session.scalars(query).unique().all()
    return list(reversed(newest_first[:limit])), len(newest_first) > limit


@dataclass
class Window:
    """A page of a thread: its messages (oldest first), whether older and newer ones exist, and
    whether it is the newest page (the one that marks the thread read and follows it live)."""

    messages: list
    has_older: bool
    has_newer: bool
    before: int | None = None

    @property
    def is_newest(self):
        return not self.has_newer and self.before is None


def window(conversation_id, before=None, after=None, around=None):
    """The page of a thread a link asks for: the newest (nothing given), the one ending before
    message id `before`, the one ending with message `around` (a search result), or the one
    starting after message id `after` (the way back to newer messages)."""
    if around is not None:
        before = around + 1
    if after is not None and before is None:
        newer = db.session.scalars(
            select(Message).where(Message.conversation_id == conversation_id, Message.id > after)
            .options(joinedload(Message.listing).selectinload(Listing.photos))
            .order_by(Message.id).limit(PAGE_SIZE + 1)).unique().all()
        has_newer = len(newer) > PAGE_SIZE
        return Window(newer[:PAGE_SIZE], True, has_newer, before=after + 1 if has_newer else None)
    messages, has_older = history(conversation_id, before=before)
    has_newer = before is not None and db.session.scalar(select(exists().where(
        Message.conversation_id == conversation_id, Message.id >= before)))
    return Window(messages, has_older, bool(has_newer), before=before)


def message_in(conversation_id, message_id):
    return db.session.scalars(
        select(Message).where(Message.id == message_id, Message.conversation_id == conversation_id)
        .options(joinedload(Message.listing).selectinload(Listing.photos), *WITH_EXTRAS)
    ).unique().first()


def get_message_for_participant(message_id, user=None):
    """(conversation, message) if `user` (default: the logged-in user) is a current participant of
    the message's conversation, else 404 (401 when logged out): the one guard of a message's own
    routes (edit, delete, reactions, its photos)."""
    user = user or current_user
    if not user.is_authenticated:
        abort(401)
    conversation_id = db.session.scalar(select(Message.conversation_id).where(Message.id == message_id))
    if conversation_id is None:
        abort(404)
    conversation = get_conversation_for_participant(conversation_id, user, people=False)
    return conversation, message_in(conversation.id, message_id)


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
    return receipts_of(people(conversation.id), [viewer_id])[viewer_id]


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


def seen_by(board, rows=None, author_id=None):
    """Who of the other members has seen the board's last message (rows of `people` with their
    `display_name`), in the members' order: the owner first, then by name. `rows` (what
    `people(board.id)` returns) and the last message's `author_id` when the caller has them."""
    last = board.last_message_id
    if not last:
        return SeenBy(None)
    rows = rows if rows is not None else people(board.id)
    if author_id is None:
        author_id = db.session.scalar(select(Message.sender_id).where(Message.id == last))
    others = sorted((row for row in rows.values() if row.user_id != author_id),
                    key=lambda row: (row.role != OWNER, row.display_name.lower(), row.user_id))
    return SeenBy(last, [row for row in others if row.last_read_message_id >= last],
                  [row for row in others if row.last_read_message_id < last])


# The current participants' names, roles, unread counts and cursors as plain rows, in the order of
# `Conversation.participants`: what a new message's fragments show (the inbox row's names, each
# recipient's unread count, a private conversation's receipts, a board's seen-by line), without
# the participants and their accounts as objects: a board has hundreds.
_mine = _participants.alias("mine")
_PEOPLE = (select(_participants.c.user_id, _users.c.display_name, _participants.c.role,
                  _participants.c.unread_count, _participants.c.last_read_message_id, _participants.c.last_read_at,
                  _participants.c.delivered_message_id, _participants.c.delivered_at,
                  _participants.c.last_sent_message_id, _participants.c.archived_message_id,
                  # The person's unread messages in all their conversations (the badge in the header).
                  select(func.coalesce(func.sum(_mine.c.unread_count), 0)).where(_mine.c.user_id == _participants.c.user_id)
                  .scalar_subquery().label("total_unread"))
           .join(_users, _users.c.id == _participants.c.user_id)
           .where(_participants.c.conversation_id == bindparam("conversation_id"), _participants.c.left_at.is_(None))
           .order_by(_participants.c.joined_at, _participants.c.user_id))


def people(conversation_id):
    """{user id: row} of the conversation's current participants (`_PEOPLE`, their unread total
    across all their conversations included), in one query."""
    return {row.user_id: row for row in db.session.connection().execute(_PEOPLE, {"conversation_id": conversation_id})}


def receipts_of(people_rows, viewer_ids):
    """{viewer id: their receipt in a private conversation} from `people(…)`."""
    return {viewer_id: _receipt(people_rows.get(viewer_id),
                                [row for user_id, row in people_rows.items() if user_id != viewer_id])
            for viewer_id in viewer_ids}


def private_receipt(conversation_id, viewer_id):
    """`receipt_for` a private conversation from one query that reads only the cursors (not the
    conversation, its participants and their accounts); None when the viewer is not a participant."""
    rows = people(conversation_id)
    return receipts_of(rows, [viewer_id])[viewer_id] if viewer_id in rows else None


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
