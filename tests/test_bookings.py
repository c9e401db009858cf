"""Bookings: the price arithmetic, the state machine (every allowed and refused transition, by
whom), availability, authorisation, expiry with a controllable clock, and the HTTP surface. Each
test runs on SQLite and PostgreSQL."""
from datetime import timedelta

import pytest

from rentpe.bookings import services
from rentpe.bookings.models import Booking, BookingStock
from rentpe.chat.models import Message
from rentpe.extensions import db
from rentpe.listings.models import PAUSED
from rentpe.models_base import utcnow
from tests.booking_helpers import ask, booking_from, day, reload, request_form


def _request(buyer, listing, start=10, end=None, quantity=1, now=None):
    end = start if end is None else end
    return services.request_booking(buyer, listing, services.Asked(day(start), day(end), quantity), now=now)


def _in_state(state, buyer, seller, listing):
    """A booking of `buyer` for `listing`, brought to `state` through the services."""
    booking = _request(buyer, listing)
    if state == "quoted":
        booking = services.quote(booking, seller, 40000, services.Asked(day(10), day(10), 1), "")
    elif state == "confirmed":
        booking = services.accept(booking, seller)
    elif state == "declined":
        booking = services.decline(booking, seller, "Closed for a wedding")
    elif state == "withdrawn":
        booking = services.withdraw(booking, buyer)
    elif state == "cancelled":
        booking = services.cancel(services.accept(booking, seller), buyer, "Plans changed")
    elif state == "expired":
        db.session.execute(db.update(Booking).where(Booking.id == booking.id)
                           .values(expires_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
        services.expire_due()
        booking = reload(booking)
    assert booking.status == state
    return booking


# Price arithmetic ------------------------------------------------------------------------------


@pytest.mark.parametrize("unit, start, end, quantity, rent", [
    ("day", 10, 10, 1, 25000),      # one day
    ("day", 10, 12, 1, 75000),      # three days
    ("day", 10, 11, 40, 2000000),   # 40 units for two days
    ("event", 10, 12, 1, 25000),    # one event, whatever the days
    ("event", 10, 10, 3, 75000),
])
def test_the_card_works_out_the_price(buyer_client, make_listing, seller, unit, start, end, quantity, rent):
    listing = make_listing(seller=seller, price=25000, price_unit=unit, deposit=5000)
    db.session.add(BookingStock(listing_id=listing.id, units=50, confirmations=0))
    db.session.commit()
    booking = booking_from(ask(buyer_client, listing, day(start), day(end), quantity))
    assert (booking.total, booking.deposit, booking.status) == (rent, 5000 * quantity, "requested")
    page = buyer_client.get(f"/conversations/{booking.conversation_id}").get_data(as_text=True)
    card = page[page.index(f'id="booking-{booking.id}"'):]
    card = card[:card.index("</article>")]
    from rentpe.templating import rupees

    assert rupees(rent) in card and rupees(5000 * quantity) in card
    assert 'data-status="requested"' in page
    assert "payment is arranged between the two of you" in card


def test_indian_grouping_and_date_lines():
    from rentpe.templating import rupees

    assert rupees(2000000) == "₹20,00,000"
    assert services.dates_text(day(0).replace(month=12, day=14), day(0).replace(month=12, day=15)) == "14–15 Dec"
    start = day(0).replace(month=12, day=30)
    assert services.dates_text(start, start + timedelta(days=3)).startswith("30 Dec 20")
    assert services.price_of(1000, "day", day(1), day(3), 2) == 6000
    assert services.price_of(1000, "event", day(1), day(3), 2) == 2000
    assert services.deposit_of(500, 4) == 2000 and services.deposit_of(None, 4) == 0


# The state machine -----------------------------------------------------------------------------

# (state, action, who) -> the answer. Everything not listed is refused: 409 when that side may
# take the action in another state, 403 when that side never takes it.
ALLOWED = {
    ("requested", "accept", "seller"): "confirmed",
    ("requested", "decline", "seller"): "declined",
    ("requested", "quote", "seller"): "quoted",
    ("requested", "withdraw", "buyer"): "withdrawn",
    ("quoted", "accept", "buyer"): "confirmed",
    ("quoted", "decline", "seller"): "declined",
    ("quoted", "quote", "seller"): "quoted",
    ("quoted", "withdraw", "buyer"): "withdrawn",
    ("confirmed", "cancel", "seller"): "cancelled",
    ("confirmed", "cancel", "buyer"): "cancelled",
    ("confirmed", "paid", "seller"): "confirmed",
}
NEVER = {("buyer", "decline"), ("buyer", "quote"), ("buyer", "paid"), ("seller", "withdraw")}
STATES = ["requested", "quoted", "confirmed", "declined", "withdrawn", "cancelled", "expired"]
ACTIONS = ["accept", "decline", "quote", "withdraw", "cancel", "paid"]
FORMS = {"decline": {"reason": "Booked elsewhere"}, "cancel": {"reason": "Rain"},
         "quote": {"price": "42000", "quantity": "1", "note": "Weekday rate"}}


@pytest.mark.parametrize("state", STATES)
def test_every_transition_by_whom(state, buyer, seller, listing, buyer_client, seller_client):
    clients = {"buyer": buyer_client, "seller": seller_client}
    for action in ACTIONS:
        for who in ("buyer", "seller"):
            booking = _in_state(state, buyer, seller, listing)
            form = dict(FORMS.get(action, {}))
            if action == "quote":
                form.update(start=day(10).isoformat(), end=day(10).isoformat())
            lines_before = db.session.scalar(db.select(db.func.count()).select_from(Message)
                                             .where(Message.kind == "booking-line"))
            response = clients[who].post(f"/bookings/{booking.id}/{action}", form)
            after = reload(booking)
            expected = ALLOWED.get((state, action, who))
            lines = db.session.scalar(db.select(db.func.count()).select_from(Message)
                                      .where(Message.kind == "booking-line"))
            if expected is not None:
                assert response.status_code == 303, (state, action, who, response.get_data(as_text=True)[:300])
                assert response.headers["Location"].endswith(
                    f"/conversations/{booking.conversation_id}#booking-{booking.id}")
                assert after.status == expected, (state, action, who)
                assert lines == lines_before + 1
            else:
                assert response.status_code == (403 if (who, action) in NEVER else 409), (state, action, who)
                assert (after.status, after.total, after.paid_at) == (state, booking.total, booking.paid_at)
                assert lines == lines_before
            # Each case on a fresh booking: the confirmed ones would hold the day.
            db.session.execute(db.delete(Booking))
            db.session.commit()


def test_mark_paid_twice_is_refused(buyer, seller, listing, seller_client):
    booking = _in_state("confirmed", buyer, seller, listing)
    assert seller_client.post(f"/bookings/{booking.id}/paid").status_code == 303
    assert reload(booking).paid_at is not None
    assert seller_client.post(f"/bookings/{booking.id}/paid").status_code == 409


def test_a_quote_changes_the_price_dates_and_quantity(buyer, seller, make_listing, seller_client, buyer_client):
    listing = make_listing(seller=seller, price=1000, price_unit="day", deposit=200)
    services.set_units(listing, 10)
    booking = _request(buyer, listing, 10, 11, 4)
    assert (booking.total, booking.deposit) == (8000, 800)
    response = seller_client.post(f"/bookings/{booking.id}/quote", {
        "price": "9,500", "quantity": "5", "start": day(12).isoformat(), "end": day(13).isoformat(),
        "note": "Two more days' notice"})
    assert response.status_code == 303
    quoted = reload(booking)
    assert (quoted.status, quoted.total, quoted.asked_total, quoted.quantity, quoted.deposit) == (
        "quoted", 9500, 8000, 5, 1000)
    assert (quoted.start_day, quoted.end_day, quoted.quote_note) == (day(12), day(13), "Two more days' notice")
    line = db.session.scalars(db.select(Message).where(Message.kind == "booking-line")).one()
    assert line.body.startswith("Ravi sent a quote · ₹9,500 · ")
    assert buyer_client.post(f"/bookings/{booking.id}/accept").status_code == 303
    assert reload(booking).status == "confirmed"
    assert services.free_by_day(listing.id, day(12), day(13)) == {day(12): 5, day(13): 5}


def test_refusals_need_a_reason_and_the_form_right(buyer, seller, listing, seller_client):
    booking = _request(buyer, listing)
    assert seller_client.post(f"/bookings/{booking.id}/decline", {"reason": "  "}).status_code == 400
    assert seller_client.post(f"/bookings/{booking.id}/quote", {"price": "lots"}).status_code == 400
    assert seller_client.post(f"/bookings/{booking.id}/quote", {"price": "100", "start": "14/12/2026"}).status_code == 400
    assert reload(booking).status == "requested"


# Authorisation ---------------------------------------------------------------------------------


def test_strangers_other_sellers_and_moderators_get_404(buyer, seller, listing, make_user, make_seller, make_client,
                                                         moderator):
    booking = _request(buyer, listing)
    for person in (make_user(), make_seller(), moderator):
        client = make_client()
        client.login(person)
        for action in ACTIONS:
            assert client.post(f"/bookings/{booking.id}/{action}", FORMS.get(action, {})).status_code == 404
    assert reload(booking).status == "requested"
    assert make_client().post(f"/bookings/{booking.id}/accept").status_code in (302, 401)  # logged out: log in first
    assert reload(booking).status == "requested"


def test_the_lists_are_each_persons_own(buyer, seller, listing, buyer_client, seller_client, make_user, make_client):
    booking = _request(buyer, listing)
    assert f"#booking-{booking.id}" in buyer_client.get("/bookings").get_data(as_text=True)
    page = seller_client.get("/dashboard/requests").get_data(as_text=True)
    assert f"#booking-{booking.id}" in page and ">1<" in page  # one waiting for an answer
    other = make_client()
    other.login(make_user())
    assert f"#booking-{booking.id}" not in other.get("/bookings").get_data(as_text=True)
    assert other.get("/dashboard/requests").status_code == 403  # not a seller
    assert buyer_client.get(f"/dashboard/listings/{listing.id}/calendar").status_code == 403


def test_requests_tab_orders_answers_first_then_upcoming_then_past(buyer, seller, make_listing, seller_client):
    listings = [make_listing(seller=seller) for _ in range(3)]
    confirmed = services.accept(_request(buyer, listings[0], 20), seller)
    declined = services.decline(_request(buyer, listings[1], 21), seller, "No")
    waiting = _request(buyer, listings[2], 22)
    page = seller_client.get("/dashboard/requests").get_data(as_text=True)
    order = [page.index(f"#booking-{b.id}") for b in (waiting, confirmed, declined)]
    assert order == sorted(order)


# Availability ----------------------------------------------------------------------------------


def test_blocked_day_and_paused_listing_refuse_requests(buyer, seller, listing, buyer_client, seller_client):
    response = seller_client.post(f"/dashboard/listings/{listing.id}/blocked", {"day": day(10).isoformat(),
                                                                              "blocked": "1"})
    assert response.status_code == 303
    response = ask(buyer_client, listing, day(9), day(11))
    assert response.status_code == 409
    assert "not available on" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(Booking)) == 0
    assert booking_from(ask(buyer_client, listing, day(11))).status == "requested"
    listing.status = PAUSED
    db.session.commit()
    response = ask(buyer_client, listing, day(12))
    assert response.status_code == 409 and "paused" in response.get_data(as_text=True)


def test_units_and_the_calendars(buyer, seller, listing, buyer_client, seller_client):
    assert seller_client.post(f"/dashboard/listings/{listing.id}/units", {"units": "3"}).status_code == 303
    assert services.units_of(listing.id) == 3
    services.accept(_request(buyer, listing, 10, 10, 2), seller)
    response = ask(buyer_client, listing, day(10), quantity=2)
    assert response.status_code == 409
    assert "only 1 is free" in response.get_data(as_text=True)
    month = day(10).strftime("%Y-%m")
    page = seller_client.get(f"/dashboard/listings/{listing.id}/calendar?month={month}").get_data(as_text=True)
    assert f'data-day="{day(10).isoformat()}"' in page and "2/3 booked" in page
    page = buyer_client.get(f"/listings/{listing.id}/book?month={month}&quantity=2").get_data(as_text=True)
    cell = page[page.index(f'data-day="{day(10).isoformat()}"') - 80:][:200]
    assert "day-full" in cell and "1 free" in cell
    assert seller_client.post(f"/dashboard/listings/{listing.id}/units", {"units": "0"}).status_code == 400


@pytest.mark.parametrize("form, status", [
    ({"start": "", "end": ""}, 400),
    ({"start": "2026-02-30"}, 400),
    ({"start": "tomorrow"}, 400),
    ({"quantity": "-1"}, 400),
    ({"quantity": "0"}, 400),
    ({"guests": "many"}, 400),
    ({"note": "x" * 1001}, 400),
])
def test_bad_request_forms_are_400(buyer_client, listing, form, status):
    data = {**request_form(day(10)), **form}
    response = buyer_client.post(f"/listings/{listing.id}/bookings", data)
    assert response.status_code == status
    assert db.session.scalar(db.select(db.func.count()).select_from(Booking)) == 0


def test_past_dates_own_listing_and_hourly_listings_are_refused(buyer_client, seller_client, listing, make_listing,
                                                                 seller):
    assert ask(buyer_client, listing, day(-1)).status_code == 400
    assert ask(buyer_client, listing, day(12), day(11)).status_code == 400
    assert ask(seller_client, listing, day(10)).status_code == 400
    hourly = make_listing(seller=seller, price_unit="hour")
    assert ask(buyer_client, hourly, day(10)).status_code == 409


# Expiry with a controllable clock ---------------------------------------------------------------


def test_requests_and_quotes_expire_after_the_configured_hours(app, buyer, seller, listing, seller_client):
    start = utcnow()
    booking = _request(buyer, listing, now=start)
    assert booking.expires_at == start + timedelta(hours=48)
    assert services.expire_due(start + timedelta(hours=47)) == 0
    runner = app.test_cli_runner()
    result = runner.invoke(args=["bookings", "expire", "--now", (start + timedelta(hours=48, seconds=1)).isoformat()])
    assert result.exit_code == 0, result.output
    assert "Expired 1 booking request" in result.output
    expired = reload(booking)
    assert expired.status == "expired"
    line = db.session.scalars(db.select(Message).where(Message.kind == "booking-line")).one()
    assert "the request expired" in line.body and line.sender_id == seller.id
    assert seller_client.post(f"/bookings/{booking.id}/accept").status_code == 409


@pytest.mark.parametrize("state, action", [("confirmed", "cancel"), ("requested", "withdraw"), ("requested", "decline")])
def test_a_booking_still_ends_after_a_block(buyer, seller, listing, state, action):
    """A block stops the thread's lines, not the way out of a booking: cancelling, withdrawing and
    declining still end it (its card shows so); nothing else goes through."""
    from rentpe.chat.blocks import block_user

    booking = _in_state(state, buyer, seller, listing)
    block_user(buyer, seller)
    lines_before = db.session.scalar(db.select(db.func.count()).select_from(Message).where(Message.kind == "booking-line"))
    if action == "cancel":
        ended = services.cancel(booking, buyer, "Plans changed")
    elif action == "withdraw":
        ended = services.withdraw(booking, buyer)
    else:
        ended = services.decline(booking, seller, "Not available")
    assert ended is None or reload(booking).status in ("cancelled", "withdrawn", "declined")
    assert reload(booking).status == {"cancel": "cancelled", "withdraw": "withdrawn", "decline": "declined"}[action]
    assert db.session.scalar(db.select(db.func.count()).select_from(Message)
                             .where(Message.kind == "booking-line")) == lines_before  # no line through the block
    if state == "requested":
        with pytest.raises(services.BookingError):
            services.accept(_request(buyer, listing, start=20), seller)


def test_the_notifications_worker_expires_bookings_in_its_rounds(app, buyer, seller, listing):
    """Where the e-mail worker runs, it expires unanswered requests too: no separate schedule."""
    from rentpe.notifications import worker

    overdue = _request(buyer, listing, now=utcnow() - timedelta(hours=49))
    lines = []
    worker.run(once=True, echo=lines.append, handle_signals=False)
    assert reload(overdue).status == "expired"
    assert any("1 request(s) or quote(s) expired" in line for line in lines)
    worker.run(once=True, echo=lines.append, handle_signals=False)  # a second round: nothing twice
    assert db.session.scalar(db.select(db.func.count()).select_from(Message)
                             .where(Message.kind == "booking-line", Message.body.contains("expired"))) == 1


def test_a_request_past_its_expiry_is_refused_before_the_command_runs(buyer, seller, listing, seller_client):
    booking = _request(buyer, listing, now=utcnow() - timedelta(hours=49))
    assert services.shown_status(booking) == "expired"
    response = seller_client.post(f"/bookings/{booking.id}/accept")
    assert response.status_code == 409 and "expired" in response.get_data(as_text=True)
    assert reload(booking).status == "requested"  # until `bookings expire` writes it
    assert 'data-status="expired"' in seller_client.get(
        f"/conversations/{booking.conversation_id}").get_data(as_text=True)


@pytest.fixture
def app_overrides():
    return {"BOOKING_EXPIRY_HOURS": 48}


def test_expiry_hours_come_from_the_environment(tmp_path):
    from rentpe.config import from_environment

    assert from_environment(str(tmp_path), {"BOOKING_EXPIRY_HOURS": "12"})["BOOKING_EXPIRY_HOURS"] == 12
    assert from_environment(str(tmp_path), {})["BOOKING_EXPIRY_HOURS"] == 48


# htmx: the card in place ------------------------------------------------------------------------


def test_htmx_answers_with_the_card_and_refusals_land_on_it(buyer, seller, listing, seller_client, buyer_client):
    booking = _request(buyer, listing)
    response = seller_client.post(f"/bookings/{booking.id}/accept", htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith(f'<article id="booking-{booking.id}"') and 'data-status="confirmed"' in html
    assert 'name="csrf_token"' not in html  # the page's header token serves both people
    response = buyer_client.post(f"/bookings/{booking.id}/withdraw", htmx=True)
    assert response.status_code == 409
    assert 'role="alert"' in response.get_data(as_text=True) and f'id="booking-{booking.id}"' in response.get_data(
        as_text=True)


# Moderation and safety ----------------------------------------------------------------------


def test_suspending_a_seller_declines_their_pending_requests(buyer, seller, listing, make_listing, moderator):
    from rentpe.moderation import services as moderation

    waiting = _request(buyer, listing, 10)
    quoted = services.quote(_request(buyer, make_listing(seller=seller), 11), seller, 100,
                            services.Asked(day(11), day(11), 1), "")
    confirmed = services.accept(_request(buyer, make_listing(seller=seller), 12), seller)
    moderation.suspend_user(seller, moderator, "Spam")
    assert [reload(b).status for b in (waiting, quoted, confirmed)] == ["declined", "declined", "confirmed"]
    assert "suspended" in reload(waiting).reason
    lines = db.session.scalars(db.select(Message.body).where(Message.kind == "booking-line")
                               .order_by(Message.id)).all()
    assert sum("suspended" in line for line in lines) == 2


def test_a_card_can_be_reported_and_the_moderator_sees_the_bookings(buyer, seller, listing, seller_client,
                                                                    make_client, moderator):
    from rentpe.moderation.models import Report

    booking = _request(buyer, listing)
    card = db.session.scalars(db.select(Message).where(Message.kind == "booking", Message.card_id == booking.id)).one()
    page = seller_client.get(f"/conversations/{booking.conversation_id}").get_data(as_text=True)
    assert f"/report/message/{card.id}" in page
    response = seller_client.post(f"/report/message/{card.id}", {"reason": "scam", "note": "Asks to pay elsewhere"})
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:300]
    report = db.session.scalars(db.select(Report)).one()
    mod = make_client()
    mod.login(moderator)
    page = mod.get(f"/admin/reports/{report.id}").get_data(as_text=True)
    assert 'id="reported-bookings"' in page and listing.title in page


def test_the_buyer_can_request_from_the_conversation(buyer_client, seller_client, listing):
    booking = booking_from(ask(buyer_client, listing, day(10)))
    page = buyer_client.get(f"/conversations/{booking.conversation_id}").get_data(as_text=True)
    assert f'href="/listings/{listing.id}/book"' in page
    assert f'href="/listings/{listing.id}/book"' not in seller_client.get(
        f"/conversations/{booking.conversation_id}").get_data(as_text=True)


def test_an_event_board_holds_booking_cards_for_its_sellers_listings(app, buyer, seller, listing, make_seller,
                                                                     buyer_client, seller_client, make_client):
    from rentpe.bookings.events import render_card_event
    from rentpe.realtime.models import StreamEvent
    from tests.board_helpers import make_board

    lights = make_seller(display_name="Lights Co")
    board_id = make_board(buyer, sellers=[seller, lights])
    page = buyer_client.get(f"/listings/{listing.id}/book").get_data(as_text=True)
    assert f'<option value="{board_id}">' in page
    booking = booking_from(ask(buyer_client, listing, day(10), board_id=str(board_id)))
    assert booking.conversation_id == board_id
    card = db.session.scalars(db.select(Message).where(Message.kind == "booking")).one()
    assert card.conversation_id == board_id
    assert f'id="booking-{booking.id}"' in buyer_client.get(f"/boards/{board_id}").get_data(as_text=True)
    # Every member sees the card change; only its two people act on it.
    other = make_client()
    other.login(lights)
    assert other.post(f"/bookings/{booking.id}/accept").status_code == 404
    assert seller_client.post(f"/bookings/{booking.id}/accept").status_code == 303
    [event] = db.session.scalars(db.select(StreamEvent).where(StreamEvent.user_id == lights.id,
                                                              StreamEvent.kind == "bookings.card")).all()
    with app.test_request_context():
        html = render_card_event(event)
    assert 'data-status="confirmed"' in html and "booking-requests-count" not in html


def test_a_board_request_needs_both_people_in_the_board(buyer, seller, listing, make_seller, make_user, buyer_client):
    from tests.board_helpers import make_board

    without_the_seller = make_board(buyer, sellers=[make_seller()])
    assert ask(buyer_client, listing, day(10), board_id=str(without_the_seller)).status_code == 409
    not_mine = make_board(make_user(), sellers=[seller])
    assert ask(buyer_client, listing, day(10), board_id=str(not_mine)).status_code == 404
    assert ask(buyer_client, listing, day(10), board_id="999999").status_code == 404
    assert db.session.scalar(db.select(db.func.count()).select_from(Booking)) == 0


def test_a_note_with_contact_details_warns_the_seller(buyer_client, seller_client, listing):
    booking = booking_from(ask(buyer_client, listing, day(10), note="Call me on 98765 43210"))
    page = seller_client.get(f"/conversations/{booking.conversation_id}").get_data(as_text=True)
    card = page[page.index(f'id="booking-{booking.id}"'):page.index("</article>")]
    assert 'class="msg-safety for-seller"' in card and "phone number" in card


@pytest.mark.parametrize("app_overrides", [{"CONTACT_INFO_POLICY": "reject"}])
def test_a_note_with_contact_details_is_refused_under_reject(buyer_client, listing):
    response = ask(buyer_client, listing, day(10), note="Pay me on upi: ravi@okbank")
    assert response.status_code == 400
    assert db.session.scalar(db.select(db.func.count()).select_from(Booking)) == 0


def test_the_listing_page_shows_the_next_free_days(buyer, seller, listing, client, seller_client):
    services.set_blocked(listing, day(1), True)
    services.accept(_request(buyer, listing, 2), seller)
    page = client.get(f"/listings/{listing.id}").get_data(as_text=True)
    strip = page[page.index('class="booking-strip-days"'):]
    strip = strip[:strip.index("</ol>")]
    assert strip.count("<li") == 14 and strip.count('class="day-full"') == 2
    assert "Check dates and request to book" in page
