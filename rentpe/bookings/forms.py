"""The fields of a booking request, a quote, a reason: read from a POSTed form, each bad value a
BookingError(400) that says which."""
from datetime import date

from flask import request

from .services import MAX_NOTE_CHARS, Asked, BookingError, clean_text

MAX_GUESTS = 100_000


def day_field(name, label):
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw) if len(raw) == 10 else _bad(label)
    except ValueError:
        return _bad(label)


def _bad(label):
    raise BookingError(f"The {label} date must be a date written YYYY-MM-DD.", status=400)


def int_field(name, label, default=None, required=True):
    raw = (request.form.get(name) or "").replace(",", "").replace("₹", "").strip()
    if not raw:
        if required and default is None:
            raise BookingError(f"Give the {label}.", status=400)
        return default
    if not raw.isdigit() or len(raw) > 12:
        raise BookingError(f"The {label} must be a whole number.", status=400)
    return int(raw)


def asked_from_form(quantity_default=1):
    start = day_field("start", "start")
    end = day_field("end", "end") or start
    quantity = int_field("quantity", "quantity", default=quantity_default)
    guests = int_field("guests", "number of guests", required=False)
    if guests is not None and guests > MAX_GUESTS:
        raise BookingError("That is more guests than we can take a booking for.", status=400)
    return Asked(start=start, end=end, quantity=quantity,
                 event_type=clean_text(request.form.get("event_type"), 60, "event type"),
                 guests=guests or None, note=clean_text(request.form.get("note"), MAX_NOTE_CHARS, "note"))
