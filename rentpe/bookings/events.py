"""How bookings look in a conversation and in a stream: the card (a chat message of its own kind,
chat/cards.py), the lines in the thread, and the `bookings.card` event that updates every open
copy of a card in place.

A card is rendered once, whoever receives it: it carries `data-buyer` and `data-seller`, and the
page's viewer rules (chat/_viewer_style.html) show each side its own buttons (`for-buyer`,
`for-seller`). Forms in a card carry the CSRF token only when the card is part of a page the
viewer asked for (a GET); a card sent through the stream has none, and htmx sends the page's
token as a header (`hx-headers` on `<body>`), so one text serves both people.
"""
from flask import g, render_template, request
from markupsafe import Markup

from .. import realtime
from ..chat import cards
from ..chat.models import Conversation
from ..extensions import db
from ..models_base import utcnow
from .models import CARD, LINE, Booking
from .queries import pending_count
from .services import CARD_CHANGED, shown_status


def forms_carry_token():
    """A page the viewer asked for (not a stream's replay, not a publish in someone's POST)."""
    return request.method == "GET" and request.endpoint not in (None, "realtime.events")


def card_html(booking, oob=False, error=None):
    """`bookings/_card.html`, rendered once per request and state (every recipient shares it)."""
    rendered = g.setdefault("booking_cards", {})
    key = (booking.id, booking.status, booking.updated_at, oob, error)
    if key not in rendered:
        rendered[key] = Markup(render_template("bookings/_card.html", booking=booking, oob=oob, error=error,
                                               status=shown_status(booking), with_token=forms_carry_token()))
    return rendered[key]


def render_card_message(message):
    booking = db.session.get(Booking, message.card_id)
    if booking is None:
        return Markup('<p class="booking-gone">This booking is no longer available.</p>')
    return card_html(booking)


def render_line(message):
    return render_template("bookings/_line.html", message=message)


def render_card_event(event):
    """The card, replaced in place (`hx-swap-oob`), and the seller's Requests count."""
    booking = db.session.get(Booking, event.data.get("booking_id"))
    if booking is None or not may_see(booking, event.user_id):
        return None  # gone, or not theirs: send nothing
    html = Markup("") if event.data.get("new") else card_html(booking, oob=True)
    if event.user_id == booking.seller_id:
        html += requests_count(event.user_id, oob=True)
    return html


def may_see(booking, user_id):
    """Its two people, and the current members of the board it is in."""
    if booking.role_of(user_id) is not None:
        return True
    conversation = db.session.get(Conversation, booking.conversation_id)
    return conversation is not None and conversation.is_board and conversation.participant(user_id) is not None


def requests_count(seller_id, oob=False):
    count = pending_count(seller_id, utcnow())
    return Markup(render_template("bookings/_requests_count.html", count=count, oob=oob))


def init_app(app):
    cards.register(CARD, render_card_message)
    cards.register(LINE, render_line)
    realtime.register_renderer(CARD_CHANGED, render_card_event)
