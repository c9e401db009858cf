"""Reads of bookings: one for its two people, the buyer's and the seller's lists, a month of a
listing's calendar."""
import calendar
from dataclasses import dataclass
from datetime import date

from flask import abort
from sqlalchemy import func, select

from ..chat.models import GROUP, Conversation, Participant
from ..extensions import db
from ..models_base import utcnow
from .models import CONFIRMED, PENDING, BlockedDay, Booking
from .services import shown_status, taken_by_day, units_of


def booking_for_party(booking_id, user):
    """The booking, if `user` is its buyer or its seller; 404 for anyone else (moderators too:
    they see bookings in a report's context, never act on them)."""
    booking = db.session.get(Booking, booking_id)
    if booking is None or booking.role_of(user.id) is None:
        abort(404)
    return booking


def shared_boards(user_id, seller_id):
    """The open event boards `user_id` and the seller are both members of (where a request may go)."""
    if user_id == seller_id:
        return []
    mine = select(Participant.conversation_id).where(Participant.user_id == user_id, Participant.left_at.is_(None))
    return db.session.scalars(
        select(Conversation).join(Participant, Participant.conversation_id == Conversation.id)
        .where(Conversation.kind == GROUP, Conversation.closed_at.is_(None), Participant.user_id == seller_id,
               Participant.left_at.is_(None), Conversation.id.in_(mine))
        .order_by(Conversation.id.desc()).limit(20)).all()


def of_buyer(user_id):
    return db.session.scalars(select(Booking).where(Booking.buyer_id == user_id)
                              .order_by(Booking.start_day.desc(), Booking.id.desc()).limit(200)).all()


@dataclass
class Requests:
    needs_answer: list
    upcoming: list
    past: list


def of_seller(user_id, now=None):
    """The seller's Requests tab: needing an answer first (soonest expiry first), then upcoming
    confirmed bookings (soonest first), then the past and the closed (newest first)."""
    now = now or utcnow()
    rows = db.session.scalars(select(Booking).where(Booking.seller_id == user_id)
                              .order_by(Booking.updated_at.desc()).limit(300)).all()
    today = now.date()
    needs = [b for b in rows if shown_status(b, now) in PENDING and b.status != "quoted"]
    quoted = [b for b in rows if shown_status(b, now) in PENDING and b.status == "quoted"]
    upcoming = [b for b in rows if b.status == CONFIRMED and b.end_day >= today]
    past = [b for b in rows if b not in needs and b not in quoted and b not in upcoming]
    return Requests(sorted(needs, key=lambda b: b.expires_at) + sorted(quoted, key=lambda b: b.expires_at),
                    sorted(upcoming, key=lambda b: (b.start_day, b.id)), past)


def pending_count(seller_id, now=None):
    """Requests waiting for the seller's answer (the count on the Requests tab)."""
    now = now or utcnow()
    return db.session.scalar(select(func.count()).select_from(Booking).where(
        Booking.seller_id == seller_id, Booking.status == "requested", Booking.expires_at > now)) or 0


def in_conversation(conversation_id):
    return db.session.scalars(select(Booking).where(Booking.conversation_id == conversation_id)
                              .order_by(Booking.id)).all()


@dataclass
class Day:
    day: date
    in_month: bool
    blocked: bool
    booked: int
    free: int
    past: bool


def month(listing_id, year, month_, today=None):
    """The weeks of a month (Monday first) for the listing's calendar: each day's booked and free
    units, and whether it is blocked."""
    today = today or utcnow().date()
    weeks = calendar.Calendar(firstweekday=0).monthdatescalendar(year, month_)
    first, last = weeks[0][0], weeks[-1][-1]
    units = units_of(listing_id)
    taken = taken_by_day(listing_id, first, last)
    blocked = set(db.session.scalars(select(BlockedDay.day).where(
        BlockedDay.listing_id == listing_id, BlockedDay.day >= first, BlockedDay.day <= last)))
    return units, [[Day(d, d.month == month_, d in blocked, taken[d], 0 if d in blocked else max(0, units - taken[d]),
                        d < today) for d in week] for week in weeks]

