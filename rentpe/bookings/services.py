"""State changes of bookings: availability, requests and their answers, expiry. Each function owns
its transaction and publishes after its commit (through chat's send, which commits).

The state machine (who may do what, from which state):

    requested --seller accept--> confirmed      requested --seller quote--> quoted
    requested/quoted --seller decline (reason)--> declined
    quoted --buyer accept--> confirmed          quoted --seller quote--> quoted (a new quote)
    requested/quoted --buyer withdraw--> withdrawn
    requested/quoted --no answer by expires_at--> expired (`expire_due`, or shown so at once)
    confirmed --either cancel (reason)--> cancelled
    confirmed --seller mark paid--> confirmed, paid

An action the person's side never takes is a 403; one their side may take, but not from this
state (already answered, expired, not yet quoted), a 409. Every transition is one conditional
UPDATE (`WHERE status IN …`), so two answers racing on one booking cannot both apply.

A change is one transaction: the booking's row, a `bookings.card` event for both people (their
open cards update in place), and a line in the thread (a chat message of kind `booking-line`,
delivered like any message), committed by chat's send.

Never double-booked: a confirmation (`accept`) first locks the listing's stock row (see
models.py), then counts the units confirmed bookings hold on each day, then confirms. Two
confirmations for the last units run one after the other: the second sees the first's booking
and is refused (409) with the day and what is left.
"""
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from flask import current_app
from sqlalchemy import select, update

from .. import realtime
from ..chat import blocks, contact
from ..chat import services as chat
from ..chat.models import GROUP, Conversation, Participant
from ..database import insert_for
from ..extensions import db
from ..listings.models import LIVE, Listing
from ..models_base import utcnow
from ..templating import rupees
from ..text import CONTROL_CHARACTERS
from .models import (CANCELLED, CARD, CONFIRMED, DECLINED, EXPIRED, LINE, PENDING, QUOTED, REQUESTED, WITHDRAWN,
                     BlockedDay, Booking, BookingStock)

CARD_CHANGED = "bookings.card"

# Price units a booking by dates can price: per day (× days) and per event (one event, whatever
# the days). Hourly listings agree their hours in the conversation.
BOOKABLE_UNITS = ("day", "event")
MAX_DAYS = 31  # one request covers at most a month
MAX_AHEAD_DAYS = 730  # and starts within two years
MAX_UNITS = 100_000
MAX_PRICE = 1_000_000_000
MAX_NOTE_CHARS = 1000
MAX_REASON_CHARS = 500

SELLER, BUYER = "seller", "buyer"
# action -> (the side that may take it, the states it may be taken from)
RULES = {
    "accept": None,  # the seller a request, the buyer a quote (see `_may`)
    "decline": ({SELLER}, PENDING),
    "quote": ({SELLER}, PENDING),
    "withdraw": ({BUYER}, PENDING),
    "cancel": ({SELLER, BUYER}, (CONFIRMED,)),
    "paid": ({SELLER}, (CONFIRMED,)),
}


class BookingError(ValueError):
    """A request or an answer was refused: 400 (the form), 403 (not this side's), 409 (the state or
    the dates), 404 (not theirs to see)."""

    def __init__(self, message, status=409):
        super().__init__(message)
        self.status = status


# Price arithmetic --------------------------------------------------------------------------------


def count_of(price_unit, start, end):
    """How many times the unit price applies: days for a per-day price, one for a per-event one."""
    return (end - start).days + 1 if price_unit == "day" else 1


def price_of(unit_price, price_unit, start, end, quantity):
    """The rent: unit price × days (or events) × quantity, in whole rupees."""
    return unit_price * count_of(price_unit, start, end) * quantity


def deposit_of(deposit, quantity):
    """The refundable deposit: the listing's deposit per unit × quantity."""
    return (deposit or 0) * quantity


def dates_text(start, end):
    """"14 Dec", "14–15 Dec", "30 Dec – 2 Jan" (and the years when they differ from each other)."""
    if start == end:
        return f"{start.day} {start:%b}"
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}–{end.day} {end:%b}"
    if start.year == end.year:
        return f"{start.day} {start:%b} – {end.day} {end:%b}"
    return f"{start.day} {start:%b %Y} – {end.day} {end:%b %Y}"


# Availability ----------------------------------------------------------------------------------


def units_of(listing_id):
    units = db.session.scalar(select(BookingStock.units).where(BookingStock.listing_id == listing_id))
    return units or 1


def set_units(listing, units):
    if not 1 <= units <= MAX_UNITS:
        raise BookingError(f"Units must be between 1 and {MAX_UNITS:,}.", status=400)
    _ensure_stock(listing.id)
    db.session.execute(update(BookingStock).where(BookingStock.listing_id == listing.id).values(units=units))
    db.session.commit()


def set_blocked(listing, day, blocked):
    """Close (or open again) one day of the listing's calendar. Bookings already confirmed on it stay."""
    if blocked:
        db.session.execute(insert_for(db.session, BlockedDay).values(listing_id=listing.id, day=day)
                           .on_conflict_do_nothing(index_elements=["listing_id", "day"]))
    else:
        db.session.execute(BlockedDay.__table__.delete().where(BlockedDay.listing_id == listing.id,
                                                               BlockedDay.day == day))
    db.session.commit()


def _days(start, end):
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def taken_by_day(listing_id, start, end, excluding=None):
    """{day: units held by confirmed bookings} over start..end."""
    query = select(Booking.start_day, Booking.end_day, Booking.quantity).where(
        Booking.listing_id == listing_id, Booking.status == CONFIRMED,
        Booking.start_day <= end, Booking.end_day >= start)
    if excluding is not None:
        query = query.where(Booking.id != excluding)
    taken = dict.fromkeys(_days(start, end), 0)
    for first, last, quantity in db.session.execute(query):
        for day in _days(max(first, start), min(last, end)):
            taken[day] += quantity
    return taken


def blocked_days(listing_id, start, end):
    return set(db.session.scalars(select(BlockedDay.day).where(
        BlockedDay.listing_id == listing_id, BlockedDay.day >= start, BlockedDay.day <= end)))


def free_by_day(listing_id, start, end, excluding=None):
    """{day: units free} over start..end: the listing's units less what confirmed bookings hold;
    none on a blocked day."""
    units, blocked = units_of(listing_id), blocked_days(listing_id, start, end)
    return {day: 0 if day in blocked else max(0, units - taken)
            for day, taken in taken_by_day(listing_id, start, end, excluding).items()}


def availability_refusal(listing_id, start, end, quantity, excluding=None):
    """Why `quantity` units can't be had over start..end (a sentence), or None."""
    blocked = sorted(blocked_days(listing_id, start, end))
    if blocked:
        return f"The listing is not available on {dates_text(blocked[0], blocked[0])}: the seller has closed that day."
    units = units_of(listing_id)
    if quantity > units:
        return f"This listing has {units} unit{'s' if units != 1 else ''}: ask for {units} at most."
    for day, free in sorted(free_by_day(listing_id, start, end, excluding).items()):
        if free < quantity:
            left = "none is" if free == 0 else f"only {free} {'is' if free == 1 else 'are'}"
            return f"Already booked on {dates_text(day, day)}: {left} free for those dates."
    return None


# Requests --------------------------------------------------------------------------------------


@dataclass
class Asked:
    """What a request (or a quote) asks for, checked."""
    start: date
    end: date
    quantity: int
    event_type: str = ""
    guests: int | None = None
    note: str = ""


def clean_text(raw, limit, what):
    """A note or reason as stored. It goes through chat's contact-information guard like a message:
    refused under CONTACT_INFO_POLICY=reject; under `warn` the card shows the other side a safety
    notice (bookings/_card.html)."""
    text = CONTROL_CHARACTERS.sub("", (raw or "").replace("\r\n", "\n")).strip()
    if len(text) > limit:
        raise BookingError(f"The {what} can be at most {limit:,} characters.", status=400)
    try:
        chat.screen_contact_details(text)
    except chat.ChatError as exc:
        raise BookingError(str(exc), status=400) from exc
    return text


def contact_flags(text):
    """The off-platform contact details in `text`, as chat stores them for a message (None: none)."""
    return contact.as_flags(contact.find_contact_details(text or ""))


def check_dates(start, end, today):
    if start is None or end is None:
        raise BookingError("Choose the dates (a start and an end, YYYY-MM-DD).", status=400)
    if end < start:
        raise BookingError("The end date is before the start date.", status=400)
    if start < today:
        raise BookingError("The dates have passed: choose dates from today on.", status=400)
    if start > today + timedelta(days=MAX_AHEAD_DAYS):
        raise BookingError("Bookings open up to two years ahead.", status=400)
    if (end - start).days + 1 > MAX_DAYS:
        raise BookingError(f"One request covers at most {MAX_DAYS} days.", status=400)


def _now(now):
    return now or utcnow()


def _expiry(now):
    return now + timedelta(hours=current_app.config.get("BOOKING_EXPIRY_HOURS", 48))


def request_booking(buyer, listing, asked, now=None, board=None):
    """A buyer's request: a booking in state requested, and its card in their conversation with
    the seller (opened if need be), or in an event board (`board`) both of them are members of,
    where every member sees the card and only the two of them act on it. Returns the booking."""
    now = _now(now)
    if listing.seller_id == buyer.id:
        raise BookingError("This is your own listing.", status=400)
    if listing.status != LIVE:
        raise BookingError("This listing is paused: it takes no booking requests now.")
    if listing.price_unit not in BOOKABLE_UNITS:
        raise BookingError("This listing is priced per hour: agree the hours with the seller in a message.")
    check_dates(asked.start, asked.end, now.date())
    if not 1 <= asked.quantity <= MAX_UNITS:
        raise BookingError("Ask for at least one unit.", status=400)
    refused = availability_refusal(listing.id, asked.start, asked.end, asked.quantity)
    if refused:
        raise BookingError(refused)
    refused = blocks.contact_refusal(buyer.id, listing.seller_id)
    if refused:
        raise BookingError(refused, status=403)
    if board is not None:
        if board.kind != GROUP or board.participant(buyer.id) is None:
            raise BookingError("You are not a member of this board.", status=404)
        if board.closed_at is not None:
            raise BookingError("This board is closed: it takes no new requests.", status=409)
        if board.participant(listing.seller_id) is None:
            raise BookingError("The seller of this listing is not a member of this board.", status=409)
        conversation = board
    else:
        conversation = chat.get_or_create_direct_conversation(buyer.id, listing.seller_id)
        db.session.commit()
    booking = Booking(
        listing_id=listing.id, conversation_id=conversation.id, buyer_id=buyer.id, seller_id=listing.seller_id,
        start_day=asked.start, end_day=asked.end, quantity=asked.quantity, event_type=asked.event_type,
        guests=asked.guests, note=asked.note, price_unit=listing.price_unit, unit_price=listing.price,
        total=price_of(listing.price, listing.price_unit, asked.start, asked.end, asked.quantity),
        deposit=deposit_of(listing.deposit, asked.quantity), status=REQUESTED, expires_at=_expiry(now),
        created_at=now, updated_at=now)
    db.session.add(booking)
    db.session.flush()
    booking_id = booking.id
    # The seller's Requests count moves (their open dashboards); the card comes with the message.
    realtime.record([listing.seller_id], CARD_CHANGED, {"booking_id": booking_id, "new": True})
    # The card's text where a card can't be shown: the inbox preview, a moderator's context.
    summary = (f"Booking request: {listing.title} · {dates_text(asked.start, asked.end)} · "
               f"{asked.quantity} unit{'' if asked.quantity == 1 else 's'} · {rupees(booking.total)}")
    try:
        chat.send_message(conversation, buyer, summary, uuid.uuid4().hex, listing_id=listing.id,
                          kind=CARD, card_id=booking_id)
    except chat.ChatError as exc:
        raise BookingError(str(exc), status=exc.status) from exc
    return db.session.get(Booking, booking_id)


# Answers ---------------------------------------------------------------------------------------


def shown_status(booking, now=None):
    """The state as it stands now: a request or quote past its expiry is expired, even before
    `expire_due` has written so."""
    if booking.status in PENDING and booking.expires_at is not None and booking.expires_at <= _now(now):
        return EXPIRED
    return booking.status


def allowed_states(action, booking, user_id):
    """Raise BookingError(403) when `user_id`'s side never takes `action`, (409) when not now."""
    side = booking.role_of(user_id)
    if side is None:
        raise BookingError("This booking is not yours.", status=404)
    if action == "accept":
        sides, states = ({SELLER, BUYER}, (REQUESTED,) if side == SELLER else (QUOTED,))
    else:
        sides, states = RULES[action]
    if side not in sides:
        raise BookingError("Only the other side can do that.", status=403)
    return states


def _first_name(user):
    return (user.display_name or "Someone").split()[0]


_LINES = {
    "accept": "{name} accepted · {dates}",
    "decline": "{name} declined · {dates}",
    "quote": "{name} sent a quote · {price} · {dates}",
    "withdraw": "{name} withdrew the request · {dates}",
    "cancel": "{name} cancelled the booking · {dates}",
    "paid": "{name} marked it paid · {dates}",
}


def _refusal_after(booking_id, now):
    """Why a conditional update found nothing to change: the booking as it stands now."""
    db.session.rollback()
    booking = db.session.get(Booking, booking_id)
    db.session.refresh(booking)
    status = shown_status(booking, now)
    if status == EXPIRED:
        return BookingError("This request has expired: ask again with a new request.")
    return BookingError(f"This booking is {booking.status_label.lower()} now: that can't be done any more.")


# Ways out of a booking: they hold even where the conversation takes no more lines (one of the
# two blocked the other, a board was closed); the card shows the change, the thread has no line.
ENDING = frozenset({"decline", "withdraw", "cancel"})


def _apply(booking, actor, action, values, now, *, from_states, line_values=None):
    """The transition: one conditional UPDATE, the card event, the line in the thread; committed
    by chat's send. Refused (409) when the booking is no longer in `from_states` or has expired."""
    def change():
        return db.session.execute(
            update(Booking).where(Booking.id == booking.id, Booking.status.in_(from_states),
                                  (Booking.expires_at.is_(None)) | (Booking.expires_at > now)
                                  if set(from_states) <= set(PENDING) else Booking.id == booking.id)
            .values(updated_at=now, **values).returning(Booking.id)).scalar()

    if change() is None:
        raise _refusal_after(booking.id, now)
    try:
        _finish(booking, actor, action, now, line_values)
    except BookingError:
        if action not in ENDING:
            raise
        # The conversation refused the line, and rolled the change back with it: change it alone.
        if change() is None:
            raise _refusal_after(booking.id, now) from None
        realtime.record(audience(booking), CARD_CHANGED, {"booking_id": booking.id})
        db.session.commit()
        realtime.publish_committed()


def audience(booking):
    """Who sees the card: its two people, and in an event board every current member."""
    people = {booking.buyer_id, booking.seller_id}
    members = db.session.scalars(select(Participant.user_id).join(
        Conversation, Conversation.id == Participant.conversation_id).where(
        Participant.conversation_id == booking.conversation_id, Participant.left_at.is_(None),
        Conversation.kind == GROUP)).all()
    return sorted(people | set(members))


def _finish(booking, actor, action, now, line_values=None):
    booking_id = booking.id
    realtime.record(audience(booking), CARD_CHANGED, {"booking_id": booking_id})
    line = _LINES[action].format(name=_first_name(actor), dates=dates_text(booking.start_day, booking.end_day),
                                 **(line_values or {}))
    conversation = db.session.get(Conversation, booking.conversation_id)
    try:
        chat.send_message(conversation, actor, line, uuid.uuid4().hex, kind=LINE, card_id=booking_id)
    except chat.ChatError as exc:
        raise BookingError(str(exc), status=exc.status) from exc
    booking = db.session.get(Booking, booking_id)
    db.session.refresh(booking)
    return booking


def accept(booking, actor, now=None):
    """The seller accepts a request, or the buyer a quote: confirmed, and the units are taken."""
    now = _now(now)
    states = allowed_states("accept", booking, actor.id)
    _lock_stock(booking.listing_id)  # the first write: see the module docstring
    current = db.session.execute(select(Booking.status, Booking.expires_at, Booking.start_day, Booking.end_day,
                                        Booking.quantity).where(Booking.id == booking.id)).one()
    if current.status not in states or (current.expires_at is not None and current.expires_at <= now):
        raise _refusal_after(booking.id, now)
    listing_status = db.session.scalar(select(Listing.status).where(Listing.id == booking.listing_id))
    if listing_status != LIVE:
        db.session.rollback()
        raise BookingError("This listing is paused: it takes no bookings now.")
    refused = availability_refusal(booking.listing_id, current.start_day, current.end_day, current.quantity,
                                   excluding=booking.id)
    if refused:
        db.session.rollback()
        raise BookingError(refused)
    _apply(booking, actor, "accept", {"status": CONFIRMED, "expires_at": None}, now, from_states=states)
    return _reloaded(booking.id)


def decline(booking, actor, reason, now=None):
    now = _now(now)
    states = allowed_states("decline", booking, actor.id)
    reason = clean_text(reason, MAX_REASON_CHARS, "reason")
    if not reason:
        raise BookingError("Say why you decline: the buyer sees it on the card.", status=400)
    _apply(booking, actor, "decline", {"status": DECLINED, "reason": reason, "closed_by_id": actor.id}, now,
           from_states=states)
    return _reloaded(booking.id)


def quote(booking, actor, price, asked, note, now=None):
    """The seller's quote: a changed price (the rent, in rupees), quantity or dates, with a note.
    Waits for the buyer's answer, with a new expiry."""
    now = _now(now)
    states = allowed_states("quote", booking, actor.id)
    if price is None or not 0 <= price <= MAX_PRICE:
        raise BookingError("Give the price in whole rupees.", status=400)
    check_dates(asked.start, asked.end, now.date())
    if not 1 <= asked.quantity <= MAX_UNITS:
        raise BookingError("Quote at least one unit.", status=400)
    note = clean_text(note, MAX_NOTE_CHARS, "note")
    refused = availability_refusal(booking.listing_id, asked.start, asked.end, asked.quantity, excluding=booking.id)
    if refused:
        raise BookingError(refused)
    unit_deposit = db.session.scalar(select(Listing.deposit).where(Listing.id == booking.listing_id)) or 0
    values = {"status": QUOTED, "total": price, "start_day": asked.start, "end_day": asked.end,
              "quantity": asked.quantity, "deposit": deposit_of(unit_deposit, asked.quantity), "quote_note": note,
              "expires_at": _expiry(now)}
    if booking.asked_total is None:
        values["asked_total"] = booking.total
    _apply(booking, actor, "quote", values, now, from_states=states, line_values={"price": rupees(price)})
    return _reloaded(booking.id)


def withdraw(booking, actor, now=None):
    now = _now(now)
    states = allowed_states("withdraw", booking, actor.id)
    _apply(booking, actor, "withdraw", {"status": WITHDRAWN, "closed_by_id": actor.id}, now, from_states=states)
    return _reloaded(booking.id)


def cancel(booking, actor, reason, now=None):
    now = _now(now)
    states = allowed_states("cancel", booking, actor.id)
    reason = clean_text(reason, MAX_REASON_CHARS, "reason")
    if not reason:
        raise BookingError("Say why you cancel: the other person sees it on the card.", status=400)
    _apply(booking, actor, "cancel", {"status": CANCELLED, "reason": reason, "closed_by_id": actor.id}, now,
           from_states=states)
    return _reloaded(booking.id)


def mark_paid(booking, actor, now=None):
    now = _now(now)
    states = allowed_states("paid", booking, actor.id)
    if booking.paid_at is not None:
        raise BookingError("This booking is already marked paid.")
    _apply(booking, actor, "paid", {"paid_at": now}, now, from_states=states)
    return _reloaded(booking.id)


def _reloaded(booking_id):
    booking = db.session.get(Booking, booking_id)
    db.session.refresh(booking)
    return booking


# Expiry and suspension -------------------------------------------------------------------------


def expire_due(now=None):
    """Every request or quote past its expiry becomes expired, with its line in the thread (in the
    name of the side that did not answer) and its card updated. Returns how many expired."""
    now = _now(now)
    due = db.session.scalars(select(Booking.id).where(Booking.status.in_(PENDING), Booking.expires_at <= now)
                             .order_by(Booking.id)).all()
    db.session.rollback()
    expired = 0
    for booking_id in due:
        booking = db.session.get(Booking, booking_id)
        was = booking.status
        waiting_on = booking.seller if was == REQUESTED else booking.buyer
        changed = db.session.execute(
            update(Booking).where(Booking.id == booking_id, Booking.status.in_(PENDING), Booking.expires_at <= now)
            .values(status=EXPIRED, updated_at=now).returning(Booking.id)).scalar()
        if changed is None:  # answered meanwhile
            db.session.rollback()
            continue
        realtime.record(audience(booking), CARD_CHANGED, {"booking_id": booking_id})
        line = f"No answer in time: the {'request' if was == REQUESTED else 'quote'} expired · "
        line += dates_text(booking.start_day, booking.end_day)
        try:
            chat.send_message(db.session.get(Conversation, booking.conversation_id), waiting_on, line,
                              uuid.uuid4().hex, kind=LINE, card_id=booking_id)
        except chat.ChatError:
            # The conversation refuses lines (a block): the booking expires all the same.
            db.session.execute(update(Booking).where(Booking.id == booking_id, Booking.status.in_(PENDING))
                               .values(status=EXPIRED, updated_at=now))
            realtime.record(audience(booking), CARD_CHANGED, {"booking_id": booking_id})
            db.session.commit()
            realtime.publish_committed()
        expired += 1
    return expired


SUSPENDED_REASON = "Declined automatically: the seller's account is suspended."


def decline_pending_of_seller(seller_id, now=None):
    """A suspended seller's requests and quotes are declined, each with a notice on its card and
    in the thread. Returns how many."""
    now = _now(now)
    pending = db.session.scalars(select(Booking.id).where(Booking.seller_id == seller_id,
                                                          Booking.status.in_(PENDING))).all()
    for booking_id in pending:
        booking = db.session.get(Booking, booking_id)
        changed = db.session.execute(
            update(Booking).where(Booking.id == booking_id, Booking.status.in_(PENDING))
            .values(status=DECLINED, reason=SUSPENDED_REASON, updated_at=now).returning(Booking.id)).scalar()
        if changed is None:
            db.session.rollback()
            continue
        realtime.record(audience(booking), CARD_CHANGED, {"booking_id": booking_id})
        line = f"Declined automatically (the seller's account is suspended) · {dates_text(booking.start_day, booking.end_day)}"
        try:
            chat.send_message(db.session.get(Conversation, booking.conversation_id), booking.seller, line,
                              uuid.uuid4().hex, kind=LINE, card_id=booking_id)
        except chat.ChatError:
            db.session.execute(update(Booking).where(Booking.id == booking_id, Booking.status.in_(PENDING))
                               .values(status=DECLINED, reason=SUSPENDED_REASON, updated_at=now))
            realtime.record(audience(booking), CARD_CHANGED, {"booking_id": booking_id})
            db.session.commit()
            realtime.publish_committed()
    return len(pending)


def _ensure_stock(listing_id):
    db.session.execute(insert_for(db.session, BookingStock).values(listing_id=listing_id, units=1, confirmations=0)
                       .on_conflict_do_nothing(index_elements=["listing_id"]))


def _lock_stock(listing_id):
    """The listing's stock row lock, held to the end of the transaction (see models.py)."""
    _ensure_stock(listing_id)
    db.session.execute(update(BookingStock).where(BookingStock.listing_id == listing_id)
                       .values(confirmations=BookingStock.confirmations + 1))
