"""How board events look in a member's stream, and the board hooks `realtime` calls back.

Messages, reads, hidden messages and typing are chat's own events (chat/events.py renders them,
board variants come from the templates). This module renders the board's own events and sends presence
changes to co-members. Like every renderer, these build from the current state and check
membership when they render: a former member gets nothing of the board but the notice that they
left or were removed.
"""
from flask import render_template

from ... import realtime
from ...accounts.models import User
from ...extensions import db
from .. import queries as chat_queries
from ..events import render_inbox_rows
from ..models import GROUP, SELLER, Conversation
from . import queries
from .services import BOARD


def _board(event):
    board = db.session.get(Conversation, event.data.get("conversation_id"))
    return board if board is not None and board.kind == GROUP else None


def render_board_event(event):
    board = _board(event)
    if board is None:
        return None
    if board.participant(event.user_id) is None:
        return render_departure(board, event.user_id)
    members = chat_queries.members(board)
    return [
        render_inbox_rows(board, event.user_id),
        render_template("chat/events/board.html", board=board, conversation=board, viewer_id=event.user_id,
                        members=members, receipt=chat_queries.seen_by(board),
                        online_ids=realtime.presence.online([p.user_id for p in members])),
    ]


def render_departure(board, user_id):
    """A former member: the board leaves their inbox and open pages. Anyone else: nothing."""
    departure = queries.former_membership(board.id, user_id)
    if departure is None:
        return None
    return render_template("chat/events/board_left.html", board=board, reason=departure.left_reason,
                           unread=chat_queries.total_unread(user_id))


def on_presence_changed(user_id, online):
    """Tell the members of `user_id`'s open boards that they came online or left."""
    others = queries.co_members(user_id)
    person = db.session.get(User, user_id)
    if not others or person is None:
        return
    html = render_template("chat/_presence.html", person=person, online=online, last_seen=None, oob=True)
    realtime.ephemeral(others, html)


def board_role(participant):
    label = queries.ROLE_LABELS.get(participant.role, participant.role)
    profile = participant.user.seller_profile
    return f"{label} · {profile.shop_name}" if participant.role == SELLER and profile else label


def init_app(app):
    realtime.register_renderer(BOARD, render_board_event)
    realtime.register_presence_hook(on_presence_changed)
    app.add_template_filter(board_role, "board_role")
