"""Listings the browser tests can count on, added next to the demo data.

    python -m tests.e2e.seed      (with the server's DATABASE_URL)

The demo data is for people and may change; these two listings (one per demo seller) keep the
scenarios independent of it. They are dated a year back so the demo's own listings come first
on the home page and in the screenshots.
"""
from datetime import timedelta

from sqlalchemy import select

from app import app
from rentpe.accounts.models import User
from rentpe.extensions import db
from rentpe.models_base import utcnow
from tests.e2e.browser import DEMO_SELLER
from tests.factories import ListingFactory

LISTINGS = [
    (DEMO_SELLER, dict(title="Rooftop terrace for birthday parties", category="venues", city="Mumbai",
                       area="Bandra West", price=18000, price_unit="event", deposit=5000, capacity=60,
                       description="An open rooftop with a sea view, fairy lights and seating for sixty.")),
    ("seller2@demo.rentpe.test", dict(title="Warm white fairy light curtain", category="lighting", city="Bengaluru",
                                      area="Indiranagar", price=900, price_unit="day", deposit=500, capacity=None,
                                      description="Three by three metres of warm white lights for a stage backdrop.")),
]


def seed():
    a_year_ago = utcnow() - timedelta(days=365)
    for email, fields in LISTINGS:
        seller = db.session.scalar(select(User).where(User.email == email))
        ListingFactory(seller=seller, created_at=a_year_ago, updated_at=a_year_ago, **fields)


if __name__ == "__main__":
    with app.app_context():
        seed()
