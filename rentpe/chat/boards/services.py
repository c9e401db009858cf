"""State changes of event boards. Each function owns its transaction and publishes after commit.

Every change first takes the board's row lock, the one `chat.services.send_message` takes, and
reads the member list again under it. So a send and a removal racing each other are ordered: a
send that commits first addressed the member (and the removal's event follows theirs in their
stream); a send that commits after it never records an event for them. Renderers check membership
again when they render, so nothing of the board reaches a former member after their removal
committed, not even an event recorded just before it.

One durable event, `chat.board`, whenever the board's details or members change: to every current
member (their open pages swap the header, member list and read line; their inbox shows the row)
and to the one who left or was removed (their open tabs replace the board with a notice and drop
its inbox row). One `record` call per transaction: `record` takes the recipients' seq counters in
ascending user order, and a second call could take them out of order and deadlock with a send.
"""
from datetime import date, timedelta

from sqlalchemy import select, update

from ... import realtime
from ...extensions import db
from ...listings.services import normalise_city
from ...models_base import utcnow
from ..hiding import BY_OWNER, hide_message
from ..models import GROUP, LEFT, ORGANISER, OWNER, REMOVED, SELLER, Conversation, Participant
from ..services import ChatError, _lock_conversation

BOARD = "chat.board"
# Every message is one event row per member and a render per member (bench/README.md measures a
# board of this size): beyond it a send would hold the board's lock for too long.
MAX_MEMBERS = 500
TITLE_MAX, CITY_MAX = 80, 60
ROLES = (ORGANISER, SELLER)


class BoardError(ChatError):
    """A board action was refused; the message is shown where the action was."""


def clean_details(title, event_date, city, today=None):
    title = " ".join((title or "").split())
    city = normalise_city(city)
    if not title:
        raise BoardError("Give the board a name.")
    if len(title) > TITLE_MAX:
        raise BoardError(f"A board's name can be at most {TITLE_MAX} characters.")
    if not city:
        raise BoardError("Which city is the event in?")
    if len(city) > CITY_MAX:
        raise BoardError(f"A city can be at most {CITY_MAX} characters.")
    if not isinstance(event_date, date):
        raise BoardError("When is the event? Pick a date.")
    # A day of slack: "today" in India is still yesterday in UTC for five and a half hours.
    if event_date < (today or utcnow().date()) - timedelta(days=1):
        raise BoardError("The event date is in the past.")
    return title, event_date, city


def create_board(owner, title, event_date, city):
    title, event_date, city = clean_details(title, event_date, city)
    now = utcnow()
    board = Conversation(kind=GROUP, title=title, event_date=event_date, city=city, owner_id=owner.id,
                         created_at=now, last_message_at=now, message_count=0)
    db.session.add(board)
    db.session.flush()
    db.session.add(Participant(conversation_id=board.id, user_id=owner.id, role=OWNER, joined_at=now,
                               last_read_message_id=0, delivered_message_id=0, unread_count=0))
    realtime.record([owner.id], BOARD, {"conversation_id": board.id})
    db.session.commit()
    realtime.publish_committed()
    return board


def update_board(board, actor, title, event_date, city):
    """The owner renames the board or moves its date or city."""
    title, event_date, city = clean_details(title, event_date, city)
    _lock_for_owner(board, actor, open_only=True)
    db.session.execute(update(Conversation).where(Conversation.id == board.id)
                       .values(title=title, event_date=event_date, city=city))
    _changed(board.id)
    return True


def add_members(board, actor, invites):
    """Add `invites` ([(user, role)…], role `seller` or `organiser`) as members. People who are
    members already are skipped; former members come back (with the whole history, read up to
    now). Returns the users added."""
    invites = [(user, role) for user, role in invites if user is not None]
    if any(role not in ROLES for _, role in invites):
        raise ValueError("members are invited as sellers or co-organisers")
    last_message_id = _lock_for_owner(board, actor, open_only=True)
    rows = {p.user_id: p for p in db.session.scalars(select(Participant).where(Participant.conversation_id == board.id))}
    current = {uid for uid, p in rows.items() if p.left_at is None}
    adding = {}
    for user, role in invites:
        if user.id not in current and user.id not in adding:
            adding[user.id] = (user, role)
    if not adding:
        db.session.rollback()
        return []
    if len(current) + len(adding) > MAX_MEMBERS:
        db.session.rollback()
        raise BoardError(f"A board can have at most {MAX_MEMBERS} members.")
    now = utcnow()
    for user_id, (user, role) in adding.items():
        fresh = dict(role=role, joined_at=now, left_at=None, left_reason=None, unread_count=0,
                     last_read_message_id=last_message_id, last_read_at=now,
                     delivered_message_id=last_message_id, delivered_at=now)
        if user_id in rows:
            db.session.execute(update(Participant).where(Participant.conversation_id == board.id,
                                                         Participant.user_id == user_id).values(**fresh))
        else:
            db.session.add(Participant(conversation_id=board.id, user_id=user_id, **fresh))
    _changed(board.id)
    return [user for user, _ in adding.values()]


def remove_member(board, actor, user_id):
    """The owner removes a member. False if they weren't one."""
    _lock_for_owner(board, actor)
    if user_id == actor.id:
        db.session.rollback()
        raise BoardError("You own this board: close it instead of removing yourself.", status=409)
    return _depart(board.id, user_id, REMOVED)


def leave_board(board, user):
    """A member leaves. The owner can't (they close the board instead)."""
    if board.owner_id == user.id:
        raise BoardError("You own this board: close it instead of leaving.", status=409)
    _lock_conversation(board.id)
    return _depart(board.id, user.id, LEFT)


def close_board(board, actor):
    """No new messages, members or details from now on; the history stays readable."""
    _lock_for_owner(board, actor)
    closed = db.session.execute(update(Conversation).where(Conversation.id == board.id, Conversation.closed_at.is_(None))
                                .values(closed_at=utcnow())).rowcount
    if not closed:
        db.session.rollback()
        return False
    _changed(board.id)
    return True


def remove_message(board, actor, message):
    """The owner takes a message in their board out of view (for every member, live)."""
    if board.owner_id != actor.id or message.conversation_id != board.id:
        raise BoardError("Only the board's owner can remove messages here.", status=403)
    return hide_message(message, actor, BY_OWNER)


# Under the board's lock -------------------------------------------------------------------------

def _lock_for_owner(board, actor, open_only=False):
    """Take the board's row lock; refuse unless `actor` owns it (and it is open, if asked).
    Returns the board's last message id."""
    _lock_conversation(board.id)
    owner_id, closed_at, last_message_id = db.session.execute(
        select(Conversation.owner_id, Conversation.closed_at, Conversation.last_message_id)
        .where(Conversation.id == board.id)
    ).one()
    if owner_id != actor.id:
        db.session.rollback()
        raise BoardError("Only the board's owner can do that.", status=403)
    if open_only and closed_at is not None:
        db.session.rollback()
        raise BoardError("This board is closed.", status=409)
    return last_message_id or 0


def _current_member_ids(board_id):
    return db.session.scalars(
        select(Participant.user_id).where(Participant.conversation_id == board_id, Participant.left_at.is_(None))
    ).all()


def _depart(board_id, user_id, reason):
    gone = db.session.execute(
        update(Participant)
        .where(Participant.conversation_id == board_id, Participant.user_id == user_id, Participant.left_at.is_(None))
        .values(left_at=utcnow(), left_reason=reason, unread_count=0)
    ).rowcount
    if not gone:
        db.session.rollback()
        return False
    _changed(board_id, departed=user_id)
    return True


def _changed(board_id, departed=None):
    """Tell every current member (and one who just left) that the board changed; commit; publish."""
    audience = {*_current_member_ids(board_id), *([departed] if departed else [])}
    realtime.record(audience, BOARD, {"conversation_id": board_id})
    db.session.commit()
    realtime.publish_committed()
