"""`flask demo seed`: the demo marketplace, deterministic and offline, seeded once."""
import random

import pytest
from PIL import Image

from rentpe.accounts.models import User
from rentpe.extensions import db
from rentpe.listings import demo as listings_demo
from rentpe.listings.models import CATEGORIES, LIVE, Favourite, Listing, ListingPhoto
from tests.helpers import photo_files


@pytest.fixture
def app_overrides(tmp_path):
    return {"UPLOAD_FOLDER": str(tmp_path / "uploads")}


def test_demo_seed_builds_the_marketplace_once(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    assert "Seeded the demo data." in result.output and "seller2@demo.rentpe.test" in result.output

    live = db.session.scalars(db.select(Listing).where(Listing.status == LIVE)).all()
    assert len(live) >= 48
    assert {item.category for item in live} == set(CATEGORIES)
    assert len({item.city for item in live}) >= 5
    sellers = {item.seller.email for item in live}
    assert sellers == {"seller@demo.rentpe.test", "seller2@demo.rentpe.test"}
    assert all(1 <= len(item.photos) <= 3 for item in live)
    assert all(item.price > 0 and len(item.description) >= 20 for item in live)
    assert all(item.capacity for item in live if item.category == "venues")
    photos = db.session.scalars(db.select(ListingPhoto)).all()
    assert len(photo_files(app.config["UPLOAD_FOLDER"])) == 3 * len(photos)
    with Image.open(photo_files_path(app, photos[0])) as image:
        assert image.format == "JPEG" and image.size == (photos[0].width, photos[0].height)
    for item in db.session.scalars(db.select(Listing)):
        saves = db.session.scalar(db.select(db.func.count()).select_from(Favourite).where(Favourite.listing_id == item.id))
        assert item.favourite_count == saves

    counts = listing_count(), user_count()
    again = runner.invoke(args=["demo", "seed"])
    assert again.exit_code == 0 and "nothing seeded" in again.output
    assert (listing_count(), user_count()) == counts


def test_demo_plan_and_photos_are_deterministic():
    first, second = listings_demo.plan(random.Random(listings_demo.SEED)), listings_demo.plan(random.Random(listings_demo.SEED))
    assert first == second and len(first) == 48
    assert first[0]["fields"]["title"] == "Rooftop terrace with city views"
    one = listings_demo.placeholder_photo("Festoon bulbs", "lighting", random.Random(7), 1)
    assert one == listings_demo.placeholder_photo("Festoon bulbs", "lighting", random.Random(7), 1)


def photo_files_path(app, photo):
    from pathlib import Path

    return Path(app.config["UPLOAD_FOLDER"]) / "photos" / photo.key[:2] / f"{photo.key}-large.jpg"


def listing_count():
    return db.session.scalar(db.select(db.func.count()).select_from(Listing))


def user_count():
    return db.session.scalar(db.select(db.func.count()).select_from(User))


def test_demo_seed_has_conversations_with_booking_cards_in_different_states(app):
    from rentpe.bookings.models import Booking
    from rentpe.chat.models import Message

    assert app.test_cli_runner().invoke(args=["demo", "seed"]).exit_code == 0
    states = db.session.scalars(db.select(Booking.status)).all()
    assert {"confirmed", "requested", "quoted", "declined"} <= set(states)
    cards = db.session.scalars(db.select(Message).where(Message.kind == "booking")).all()
    assert len(cards) == len(states) and len({m.conversation_id for m in cards}) == 2
