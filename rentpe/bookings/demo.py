"""Demo bookings: the demo buyer's conversations with both demo sellers, with cards in different
states (confirmed and paid, waiting for an answer, quoted, declined), so `./run` shows them."""
from datetime import timedelta

from sqlalchemy import select

from ..extensions import db
from ..listings.models import LIVE, Listing
from ..models_base import utcnow
from . import services


def _bookable(seller, category=None):
    query = select(Listing).where(Listing.seller_id == seller.id, Listing.status == LIVE,
                                  Listing.price_unit.in_(services.BOOKABLE_UNITS)).order_by(Listing.id)
    if category:
        query = query.where(Listing.category == category)
    return db.session.scalars(query).all()


def seed(users):
    buyer = users["buyer@demo.rentpe.test"]
    ravi, meera = users["seller@demo.rentpe.test"], users["seller2@demo.rentpe.test"]
    today = utcnow().date()
    ravis, meeras = _bookable(ravi), _bookable(meera)
    if len(ravis) < 2 or len(meeras) < 2:
        return
    venue, furniture = ravis[0], (_bookable(ravi, "furniture") or ravis[1:])[0]
    services.set_units(furniture, 40)
    services.set_blocked(venue, today + timedelta(days=20), True)

    def ask(listing, start, days, quantity=1, **extra):
        asked = services.Asked(today + timedelta(days=start), today + timedelta(days=start + days - 1), quantity,
                               **extra)
        return services.request_booking(buyer, listing, asked)

    confirmed = ask(venue, 9, 2, event_type="Wedding reception", guests=180,
                    note="We need the lawn from 4 pm on the first day.")
    confirmed = services.accept(confirmed, ravi)
    services.mark_paid(confirmed, ravi)
    ask(furniture, 9, 2, quantity=25, event_type="Wedding reception", guests=180,
        note="Chairs with white covers, please.")
    lights, other = meeras[0], meeras[1]
    quoted = ask(lights, 9, 1, event_type="Sangeet", guests=120)
    services.quote(quoted, meera, max(0, quoted.total - quoted.total // 10),
                   services.Asked(quoted.start_day, quoted.end_day, quoted.quantity),
                   "10% off if you also take the stage lights.")
    declined = ask(other, 30, 1, event_type="Birthday")
    services.decline(declined, meera, "Already out on a wedding that weekend.")
