"""Booking pages and actions. HTTP adapters only.

The stable surface: POST /listings/<id>/bookings (start, end, quantity, note, …) → 303 to the
conversation; POST /bookings/<id>/accept, /decline (reason), /quote (price, quantity, start, end,
note), /withdraw, /cancel (reason), /paid → 303 to the conversation, or for htmx the updated
card; GET /bookings (the buyer's), GET /dashboard/requests (the seller's). Refusals: 409 (the
state or the dates), 403 (the other side's action), 404 (not theirs), 400 (the form).
"""
from datetime import date, timedelta

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from .. import ratelimits
from ..errors import render_error
from ..extensions import db
from ..http import int_arg, is_htmx
from ..listings.guards import get_listing_for_owner, get_listing_for_viewer
from ..listings.models import DRAFT, LIVE, REMOVED, Listing
from ..models_base import utcnow
from . import events, queries, services
from ..chat.models import Conversation
from .forms import asked_from_form, day_field, int_field
from .services import BookingError

bp = Blueprint("bookings", __name__)


def _month_arg():
    raw = request.args.get("month", "")
    today = utcnow().date()
    try:
        year, month = (int(part) for part in raw.split("-")) if raw else (today.year, today.month)
        return date(year, month, 1) if 2000 <= year <= 2100 else date(today.year, today.month, 1)
    except ValueError:
        return date(today.year, today.month, 1)


def _shift(first, months):
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def render_book_page(listing, error=None, status=200):
    first = _month_arg()
    quantity = int_arg("quantity") or (int(request.form.get("quantity", "1")) if request.form.get(
        "quantity", "").isdigit() and len(request.form.get("quantity")) < 7 else 1)
    units, weeks = queries.month(listing.id, first.year, first.month)
    boards = queries.shared_boards(current_user.id, listing.seller_id)
    return render_template("bookings/book.html", boards=boards, listing=listing, units=units, weeks=weeks, month=first,
                           previous=_shift(first, -1), next=_shift(first, 1), quantity=quantity, error=error,
                           form=request.form, today=utcnow().date()), status


@bp.get("/listings/<int:listing_id>/book")
@login_required
def book(listing_id):
    listing = get_listing_for_viewer(listing_id)
    return render_book_page(listing)


def _listing_to_request(listing_id):
    """The listing a request is for. One that was public and is paused now (by its seller, a
    moderator, or a suspension) answers with the service's clear 409, not a 404: the buyer may
    have asked about it before; drafts and deleted ones stay 404."""
    listing = db.session.get(Listing, listing_id)
    if listing is None or listing.status in (DRAFT, REMOVED):
        abort(404)
    return listing if listing.status != LIVE else get_listing_for_viewer(listing_id)


def request_refused(message):
    listing = _listing_to_request(request.view_args["listing_id"])
    return render_book_page(listing, error=message)[0]


@bp.post("/listings/<int:listing_id>/bookings")
@login_required
@ratelimits.limit(ratelimits.BOOKING_REQUESTS_PER_USER, ratelimits.per_user, count=ratelimits.accepted,
                  refused=request_refused)
def create(listing_id):
    listing = _listing_to_request(listing_id)
    board_id = int_arg("board_id")
    board = db.session.get(Conversation, board_id) if board_id else None
    if board_id and board is None:
        abort(404)
    try:
        booking = services.request_booking(current_user, listing, asked_from_form(), board=board)
    except BookingError as exc:
        return render_book_page(listing, error=str(exc), status=exc.status)
    return redirect(_in_conversation(booking), code=303)


def _in_conversation(booking):
    return url_for("chat.conversation", conversation_id=booking.conversation_id) + f"#booking-{booking.id}"


def _answer(booking_id, act):
    booking = queries.booking_for_party(booking_id, current_user)
    try:
        booking = act(booking)
    except BookingError as exc:
        if exc.status == 404:
            abort(404)
        if is_htmx():
            booking = queries.booking_for_party(booking_id, current_user)
            return events.card_html(booking, error=str(exc)), exc.status
        return render_error(exc.status, str(exc))
    if is_htmx():
        return events.card_html(booking)
    return redirect(_in_conversation(booking), code=303)


@bp.post("/bookings/<int:booking_id>/accept")
@login_required
def accept(booking_id):
    return _answer(booking_id, lambda b: services.accept(b, current_user))


@bp.post("/bookings/<int:booking_id>/decline")
@login_required
def decline(booking_id):
    return _answer(booking_id, lambda b: services.decline(b, current_user, request.form.get("reason")))


@bp.post("/bookings/<int:booking_id>/quote")
@login_required
def quote(booking_id):
    def act(booking):
        services.allowed_states("quote", booking, current_user.id)  # the other side's form is a 403 before a 400
        price = int_field("price", "price")
        asked = asked_from_form(quantity_default=booking.quantity)
        asked.start = asked.start or booking.start_day
        asked.end = day_field("end", "end") or (booking.end_day if asked.start == booking.start_day else asked.start)
        return services.quote(booking, current_user, price, asked, request.form.get("note"))

    return _answer(booking_id, act)


@bp.post("/bookings/<int:booking_id>/withdraw")
@login_required
def withdraw(booking_id):
    return _answer(booking_id, lambda b: services.withdraw(b, current_user))


@bp.post("/bookings/<int:booking_id>/cancel")
@login_required
def cancel(booking_id):
    return _answer(booking_id, lambda b: services.cancel(b, current_user, request.form.get("reason")))


@bp.post("/bookings/<int:booking_id>/paid")
@login_required
def paid(booking_id):
    return _answer(booking_id, lambda b: services.mark_paid(b, current_user))


@bp.get("/bookings")
@login_required
def mine():
    return render_template("bookings/mine.html", bookings=queries.of_buyer(current_user.id))


@bp.get("/dashboard/requests")
@login_required
def requests_tab():
    if not current_user.is_seller:
        abort(403)
    return render_template("bookings/requests.html", requests=queries.of_seller(current_user.id),
                           count=queries.pending_count(current_user.id))


@bp.get("/dashboard/listings/<int:listing_id>/calendar")
@login_required
def calendar(listing_id):
    listing = get_listing_for_owner(listing_id)
    return render_calendar(listing)


def render_calendar(listing, error=None, status=200):
    first = _month_arg()
    units, weeks = queries.month(listing.id, first.year, first.month)
    return render_template("bookings/calendar.html", listing=listing, units=units, weeks=weeks, month=first,
                           previous=_shift(first, -1), next=_shift(first, 1), error=error,
                           today=utcnow().date()), status


@bp.post("/dashboard/listings/<int:listing_id>/units")
@login_required
def set_units(listing_id):
    listing = get_listing_for_owner(listing_id)
    try:
        services.set_units(listing, int_field("units", "number of units"))
    except BookingError as exc:
        return render_calendar(listing, error=str(exc), status=exc.status)
    return redirect(url_for("bookings.calendar", listing_id=listing.id, month=request.form.get("month")), code=303)


@bp.post("/dashboard/listings/<int:listing_id>/blocked")
@login_required
def set_blocked(listing_id):
    listing = get_listing_for_owner(listing_id)
    try:
        day = day_field("day", "")
        if day is None:
            raise BookingError("Choose a day.", status=400)
    except BookingError as exc:
        return render_calendar(listing, error=str(exc), status=exc.status)
    services.set_blocked(listing, day, request.form.get("blocked") == "1")
    return redirect(url_for("bookings.calendar", listing_id=listing.id, month=day.strftime("%Y-%m")), code=303)


def requests_count():
    if not (current_user.is_authenticated and current_user.is_seller):
        return ""
    return events.requests_count(current_user.id)


@bp.record_once
def booking_template_globals(state):
    """Bookings' helpers for every template, set once as Jinja globals (see chat's)."""
    state.app.jinja_env.globals.update({
        "booking_dates": services.dates_text, "booking_requests_count": requests_count,
        "booking_status": services.shown_status, "booking_contact_flags": services.contact_flags,
        "booking_next_days": next_days})


def next_days(listing_id, days=14):
    """[(day, free units)] for the next `days` days from today: the strip on a listing's page."""
    today = utcnow().date()
    free = services.free_by_day(listing_id, today, today + timedelta(days=days - 1))
    return sorted(free.items())
