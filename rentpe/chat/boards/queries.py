"""Reads for board pages, and the board guards (built on chat's one conversation guard)."""
from dataclasses import dataclass

from flask import abort
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import aliased, selectinload
from werkzeug.exceptions import Forbidden, NotFound

from ...accounts.models import User
from ...extensions import db
from ...listings.models import LIVE, Favourite, Listing
from ..blocks import Block
from ..models import BUYER, DIRECT, GROUP, MODERATED, OWNER, SELLER, Conversation, Participant
from ..queries import get_conversation_for_participant
from .models import BoardInvitation


class BoardGone(Forbidden):
    """A former member asked for their board: 403 with a page that says they left or were removed."""

    def __init__(self, board, departure):
        super().__init__()
        self.board, self.departure = board, departure


def get_board_for_member(board_id, user=None):
    """The board if `user` (default: the logged-in user) is a current member.

    Admission is `get_conversation_for_participant`'s (current participants only). Strangers get
    404 as for any conversation; a former member gets `BoardGone` (403): they knew the board.
    """
    user = user or current_user
    try:
        board = get_conversation_for_participant(board_id, user)
    except NotFound:
        departure = former_membership(board_id, user.id)
        if departure is not None:
            raise BoardGone(departure.conversation, departure) from None
        raise
    if board.kind != GROUP:
        abort(404)
    return board


def get_board_for_owner(board_id, user=None):
    """The board if `user` owns it; a member who doesn't gets 403."""
    user = user or current_user
    board = get_board_for_member(board_id, user)
    if board.owner_id != user.id:
        abort(403)
    return board


def former_membership(board_id, user_id):
    """The participant row of someone who left or was removed from board `board_id`, else None."""
    row = db.session.get(Participant, (board_id, user_id))
    if row is None or row.left_at is None or row.conversation.kind != GROUP:
        return None
    return row


ROLE_LABELS = {OWNER: "Owner", "organiser": "Co-organiser", SELLER: "Seller"}


@dataclass
class Candidate:
    user: User
    reason: str  # why they are offered: "You talked" / "Saved: <listing title>"


def invite_candidates(board, owner_id, limit=100):
    """Sellers the owner may add: those they have a private conversation with (as the buyer) and
    the sellers of listings they saved. Current members are left out."""
    current = {p.user_id for p in board.participants}
    mine, theirs = aliased(Participant), aliased(Participant)
    talked = db.session.scalars(
        select(theirs.user_id)
        .join(mine, mine.conversation_id == theirs.conversation_id)
        .join(Conversation, Conversation.id == theirs.conversation_id)
        .where(mine.user_id == owner_id, mine.role == BUYER, theirs.role == SELLER, Conversation.kind == DIRECT)
        .order_by(Conversation.last_message_id.desc())
        .limit(limit)
    ).all()
    saved = db.session.execute(
        select(Listing.seller_id, Listing.title)
        .join(Favourite, Favourite.listing_id == Listing.id)
        .where(Favourite.user_id == owner_id, Listing.status == LIVE)
        .order_by(Favourite.created_at.desc(), Favourite.id.desc())
        .limit(limit)
    ).all()
    reasons = {}
    for user_id in talked:
        reasons.setdefault(user_id, "You talked")
    for user_id, title in saved:
        reasons.setdefault(user_id, f"Saved: {title}")
    # Not offered: anyone a block stands between the owner and, either way round, and anyone a
    # moderator removed from this board (services refuse them too).
    barred = set(db.session.scalars(select(Block.blocked_id).where(Block.blocker_id == owner_id))) | set(
        db.session.scalars(select(Block.blocker_id).where(Block.blocked_id == owner_id))) | set(
        db.session.scalars(select(Participant.user_id).where(Participant.conversation_id == board.id,
                                                             Participant.left_reason == MODERATED)))
    ids = [u for u in reasons if u not in current and u != owner_id and u not in barred]
    users = {u.id: u for u in db.session.scalars(
        select(User).where(User.id.in_(ids)).options(selectinload(User.seller_profile)))} if ids else {}
    return [Candidate(users[u], reasons[u]) for u in ids if u in users and users[u].is_seller]


def shareable_listings(board, user_id, limit=60):
    """Listings a member is offered to share: their saved ones, then the live listings of the
    board's seller members."""
    sellers = [p.user_id for p in board.participants if p.role == SELLER]
    saved = db.session.scalars(
        select(Listing).join(Favourite, Favourite.listing_id == Listing.id)
        .where(Favourite.user_id == user_id, Listing.status == LIVE)
        .order_by(Favourite.created_at.desc(), Favourite.id.desc()).limit(limit)
    ).all()
    theirs = db.session.scalars(
        select(Listing).where(Listing.seller_id.in_(sellers), Listing.status == LIVE)
        .order_by(Listing.seller_id, Listing.created_at.desc()).limit(limit)
    ).all() if sellers else []
    seen, found = set(), []
    for listing in [*saved, *theirs]:
        if listing.id not in seen:
            seen.add(listing.id)
            found.append(listing)
    return found[:limit]


def boards_of(user_id, limit=50):
    """Ids of the open boards `user_id` is a current member of, most recently active first."""
    return db.session.scalars(
        select(Participant.conversation_id)
        .join(Conversation, Conversation.id == Participant.conversation_id)
        .where(Participant.user_id == user_id, Participant.left_at.is_(None), Conversation.kind == GROUP,
               Conversation.closed_at.is_(None))
        .order_by(Conversation.last_message_id.desc().nulls_last())
        .limit(limit)
    ).all()


def co_members(user_id, limit=50):
    """Everyone who shares an open board with `user_id` (for presence)."""
    boards = boards_of(user_id, limit)
    if not boards:
        return []
    return sorted(set(db.session.scalars(
        select(Participant.user_id)
        .where(Participant.conversation_id.in_(boards), Participant.left_at.is_(None), Participant.user_id != user_id)
    )))


def pending_invitations(user_id, limit=50):
    """The open boards `user_id` is invited to, newest invitation first."""
    return db.session.scalars(
        select(BoardInvitation).join(Conversation, Conversation.id == BoardInvitation.conversation_id)
        .where(BoardInvitation.user_id == user_id, Conversation.closed_at.is_(None))
        .options(selectinload(BoardInvitation.board), selectinload(BoardInvitation.invited_by))
        .order_by(BoardInvitation.created_at.desc()).limit(limit)
    ).all()


def pending_invitation_count(user_id):
    return db.session.scalar(
        select(func.count()).select_from(BoardInvitation)
        .join(Conversation, Conversation.id == BoardInvitation.conversation_id)
        .where(BoardInvitation.user_id == user_id, Conversation.closed_at.is_(None))
    )


def get_invitation_for_invitee(board_id, user=None):
    """The logged-in user's invitation to board `board_id`, else 404 (nobody learns of others')."""
    user = user or current_user
    invitation = db.session.get(BoardInvitation, (board_id, user.id))
    if invitation is None:
        abort(404)
    return invitation
