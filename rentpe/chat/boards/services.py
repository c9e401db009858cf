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

from sqlalchemy import delete, select, update

from ... import realtime
from ...database import insert_for
from ...extensions import db
from ...listings.services import normalise_city
from ...models_base import utcnow
from ..blocks import block_state
from ..hiding import BY_OWNER, hide_message
from ..models import GROUP, LEFT, MODERATED, ORGANISER, OWNER, REMOVED, SELLER, Conversation, Participant
from ..services import ChatError, _lock_conversation
from .models import BoardInvitation

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
    """Add `invites` ([(user, role)…], role `seller` or `organiser`) as members at once: for sellers
    the owner already talks with (the route offers only those), or someone accepting an invitation.
    People who are members already are skipped; former members come back (with the whole history,
    read up to now). Nobody is added across a block, either way round, nor back after a moderator
    removed them. Returns the users added."""
    invites = [(user, role) for user, role in invites if user is not None]
    if any(role not in ROLES for _, role in invites):
        raise ValueError("members are invited as sellers or co-organisers")
    last_message_id = _lock_for_owner(board, actor, open_only=True)
    rows = {p.user_id: p for p in db.session.scalars(select(Participant).where(Participant.conversation_id == board.id))}
    current = {uid for uid, p in rows.items() if p.left_at is None}
    adding = {}
    for user, role in invites:
        if user.id not in current and user.id not in adding:
            refusal = _admission_refusal(board.owner_id, user, rows.get(user.id))
            if refusal:
                db.session.rollback()
                raise BoardError(refusal, status=409)
            adding[user.id] = (user, role)
    if not adding:
        db.session.rollback()
        return []
    if len(current) + len(adding) > MAX_MEMBERS:
        db.session.rollback()
        raise BoardError(f"A board can have at most {MAX_MEMBERS} members.")
    for user_id, (user, role) in adding.items():
        _admit(board.id, user_id, role, last_message_id, user_id in rows)
    db.session.execute(delete(BoardInvitation).where(BoardInvitation.conversation_id == board.id,
                                                     BoardInvitation.user_id.in_(list(adding))))
    _changed(board.id)
    return [user for user, _ in adding.values()]


def invite_by_email(board, actor, user, role=ORGANISER):
    """The owner invites whoever uses an e-mail address (`user`, None when nobody does). The
    invited person becomes a member only if they accept. Nothing is said back either way (the
    form answers the same whether the address has an account): no invitation is made to nobody,
    to the owner, to a member, across a block or to someone a moderator removed."""
    _lock_for_owner(board, actor, open_only=True)
    if user is None or user.id == actor.id:
        db.session.rollback()
        return False
    row = db.session.get(Participant, (board.id, user.id))
    if (row is not None and row.left_at is None) or _admission_refusal(board.owner_id, user, row):
        db.session.rollback()
        return False
    made = db.session.execute(
        insert_for(db.session, BoardInvitation).values(conversation_id=board.id, user_id=user.id, role=role,
                                                        invited_by_id=actor.id, created_at=utcnow())
        .on_conflict_do_nothing()
    ).rowcount
    db.session.commit()
    return bool(made)


def accept_invitation(invitation, user):
    """The invited person joins the board (with its history, read up to now)."""
    board_id = invitation.conversation_id
    _lock_conversation(board_id)
    last_message_id = _last_message_id(board_id)
    invitation = db.session.get(BoardInvitation, (board_id, user.id), populate_existing=True)
    if invitation is None:
        db.session.rollback()
        raise BoardError("This invitation is no longer open.", status=404)
    board = db.session.get(Conversation, board_id)
    row = db.session.get(Participant, (board_id, user.id))
    refusal = ("This board is closed." if board.closed_at is not None
               else _admission_refusal(board.owner_id, user, row, joining=True))
    if refusal is None and len(_current_member_ids(board_id)) >= MAX_MEMBERS:
        refusal = f"This board already has {MAX_MEMBERS} members."
    db.session.delete(invitation)
    if refusal:
        db.session.commit()  # the invitation goes: it can't be accepted
        raise BoardError(refusal, status=409)
    if row is None or row.left_at is not None:
        _admit(board_id, user.id, invitation.role, last_message_id, row is not None)
    _changed(board_id)
    return board


def decline_invitation(invitation):
    db.session.delete(invitation)
    db.session.commit()


def _admission_refusal(owner_id, user, row, joining=False):
    """Why `user` can't be made a member of this owner's board, or None."""
    if row is not None and row.left_reason == MODERATED:
        return (f"A moderator removed {user.display_name} from this board." if not joining
                else "A moderator removed you from this board.")
    if block_state(owner_id, user.id) is not None:
        return (f"You can't add {user.display_name} to a board." if not joining
                else "You can't join this board.")
    return None


def _admit(board_id, user_id, role, last_message_id, existed):
    now = utcnow()
    fresh = dict(role=role, joined_at=now, left_at=None, left_reason=None, unread_count=0,
                 last_read_message_id=last_message_id, last_read_at=now,
                 delivered_message_id=last_message_id, delivered_at=now)
    if existed:
        db.session.execute(update(Participant).where(Participant.conversation_id == board_id,
                                                     Participant.user_id == user_id).values(**fresh))
    else:
        db.session.add(Participant(conversation_id=board_id, user_id=user_id, **fresh))


def _last_message_id(board_id):
    return db.session.scalar(select(Conversation.last_message_id).where(Conversation.id == board_id)) or 0


def check_shareable(listing):
    """Only a live listing can be shared into a board: a draft or paused one is the seller's own."""
    if not listing.is_live:
        raise BoardError("Only live listings can be shared. Publish it first.", status=409)


def remove_member(board, actor, user_id):
    """The owner removes a member. False if they weren't one."""
    _lock_for_owner(board, actor)
    if user_id == actor.id:
        db.session.rollback()
        raise BoardError("You own this board: close it instead of removing yourself.", status=409)
    return _depart(board.id, user_id, REMOVED)


def remove_member_as_moderator(board, user_id):
    """A moderator removes a member (the owner can't add them back, nor invite them again). False
    if they weren't a member. The owner can't be removed: a moderator closes the board instead."""
    _lock_conversation(board.id)
    if user_id == board.owner_id:
        db.session.rollback()
        raise BoardError("The owner can't be removed from their board.", status=409)
    db.session.execute(delete(BoardInvitation).where(BoardInvitation.conversation_id == board.id,
                                                     BoardInvitation.user_id == user_id))
    return _depart(board.id, user_id, MODERATED)


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
