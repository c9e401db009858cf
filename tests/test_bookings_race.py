"""Never double-booked: confirmations racing for the last units, each in its own thread with its
own database connection (on PostgreSQL, separate server sessions), on SQLite and PostgreSQL.
Exactly as many win as the units allow; every other one is refused with the day and what is left,
and changes nothing."""
import threading

import pytest

from rentpe.accounts.models import User
from rentpe.bookings import services
from rentpe.bookings.models import CONFIRMED, Booking
from rentpe.extensions import db
from tests.booking_helpers import day

pytestmark = pytest.mark.slow


def run_at_once(app, targets):
    """Every target in its own thread and app context (its own session and connection), released
    together by a barrier. Returns their results in order (a value, or the exception raised)."""
    barrier, results = threading.Barrier(len(targets)), [None] * len(targets)

    def run(index, target):
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                results[index] = target()
            except Exception as exc:  # noqa: BLE001 (the caller asserts on it)
                results[index] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def _accepting(booking_id, seller_id):
    def accept():
        booking = db.session.get(Booking, booking_id)
        return services.accept(booking, db.session.get(User, seller_id)).status
    return accept


@pytest.mark.parametrize("units, racers, quantity", [(1, 6, 1), (5, 6, 2)])
def test_confirmations_racing_for_the_last_units(app, make_user, seller, listing, units, racers, quantity):
    services.set_units(listing, units)
    # Requests overlap on day 11 (each asks 10–11 or 11–12): together they want more than there is.
    bookings = [services.request_booking(make_user(), listing,
                                         services.Asked(day(10 + i % 2), day(11 + i % 2), quantity)).id
                for i in range(racers)]
    db.session.remove()
    results = run_at_once(app, [_accepting(booking_id, seller.id) for booking_id in bookings])
    db.session.remove()
    winners = [r for r in results if r == CONFIRMED]
    losers = [r for r in results if r != CONFIRMED]
    assert len(winners) == units // quantity, results
    for refusal in losers:
        assert isinstance(refusal, services.BookingError) and refusal.status == 409, refusal
        assert "Already booked on" in str(refusal)
    statuses = db.session.scalars(db.select(Booking.status).order_by(Booking.id)).all()
    assert statuses.count(CONFIRMED) == len(winners) and statuses.count("requested") == len(losers)
    taken = services.taken_by_day(listing.id, day(10), day(12))
    assert max(taken.values()) <= units and taken[day(11)] == len(winners) * quantity


def test_a_buyer_accepting_a_quote_races_the_seller_accepting_another_request(app, make_user, seller, listing):
    first = services.request_booking(make_user(), listing, services.Asked(day(10), day(10), 1))
    second = services.request_booking(make_user(), listing, services.Asked(day(10), day(10), 1))
    quoted = services.quote(first, seller, 20000, services.Asked(day(10), day(10), 1), "")
    buyer_id, first_id, second_id = quoted.buyer_id, first.id, second.id
    db.session.remove()

    def buyer_accepts():
        return services.accept(db.session.get(Booking, first_id), db.session.get(User, buyer_id)).status

    results = run_at_once(app, [buyer_accepts, _accepting(second_id, seller.id)])
    db.session.remove()
    assert sorted(map(str, results)).count(CONFIRMED) == 1, results
    assert sum(isinstance(r, services.BookingError) and r.status == 409 for r in results) == 1
    assert db.session.scalar(db.select(db.func.count()).select_from(Booking).where(Booking.status == CONFIRMED)) == 1


def test_two_answers_racing_on_one_booking_apply_once(app, buyer, seller, listing):
    """The seller accepts while the buyer withdraws: one of them applies, the other is told the
    booking's state now (409), and the thread has exactly one line."""
    from rentpe.chat.models import Message

    booking_id = services.request_booking(buyer, listing, services.Asked(day(10), day(10), 1)).id
    db.session.remove()

    def withdraw():
        return services.withdraw(db.session.get(Booking, booking_id), db.session.get(User, buyer.id)).status

    results = run_at_once(app, [_accepting(booking_id, seller.id), withdraw])
    db.session.remove()
    applied = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, services.BookingError)]
    assert len(applied) == 1 and len(refused) == 1 and refused[0].status == 409, results
    assert db.session.get(Booking, booking_id).status == applied[0]
    assert db.session.scalar(db.select(db.func.count()).select_from(Message)
                             .where(Message.kind == "booking-line")) == 1
