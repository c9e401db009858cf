"""Listings: a seller creates, edits, publishes, pauses, resumes and deletes; buyers see live ones."""
import pytest

from rentpe.extensions import db
from rentpe.listings import services
from rentpe.listings.models import DRAFT, LIVE, PAUSED, REMOVED, Favourite, Listing
from tests.helpers import jpeg, listing_form, photo_files


@pytest.fixture
def app_overrides(tmp_path):
    return {"UPLOAD_FOLDER": str(tmp_path / "uploads")}


def count_listings():
    return db.session.scalar(db.select(db.func.count()).select_from(Listing))


def test_seller_publishes_a_listing_that_everyone_can_see(client, make_client, seller):
    client.login(seller)
    response = client.post("/listings/new", {**listing_form(), "publish": "Publish"})
    listing = db.session.scalars(db.select(Listing)).one()
    assert response.status_code == 302 and response.headers["Location"] == f"/listings/{listing.id}"
    assert (listing.status, listing.title, listing.price, listing.deposit, listing.capacity) == (LIVE, "Rooftop terrace in Bandra", 25000, 5000, 80)
    assert (listing.city, listing.area, listing.price_unit, listing.seller_id) == ("Mumbai", "Bandra West", "event", seller.id)
    page = make_client().get(f"/listings/{listing.id}").get_data(as_text=True)
    assert "Rooftop terrace in Bandra" in page and "₹25,000" in page and "per event" in page and "₹5,000" in page
    assert "Up to 80 guests" in page


def test_saving_a_draft_keeps_it_private(client, make_client, seller):
    client.login(seller)
    client.post("/listings/new", {**listing_form(), "save": "Save draft"})
    listing = db.session.scalars(db.select(Listing)).one()
    assert listing.status == DRAFT
    assert make_client().get(f"/listings/{listing.id}").status_code == 404
    own_view = client.get(f"/listings/{listing.id}").get_data(as_text=True)
    assert "<strong>Draft.</strong> Only you can see this listing." in own_view


def test_a_buyer_is_sent_to_become_a_seller(client, buyer):
    client.login(buyer)
    for response in (client.get("/listings/new"), client.post("/listings/new", listing_form())):
        assert response.status_code == 403
        assert 'href="/sell"' in response.get_data(as_text=True)
    assert count_listings() == 0


def test_anonymous_must_log_in_to_add_a_listing(client):
    response = client.get("/listings/new")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("field, value, error", [
    ("title", "   ", "Give your listing a title."),
    ("title", "Hall", "Field must be between 5 and 120 characters long."),
    ("title", "x" * 121, "Field must be between 5 and 120 characters long."),
    ("category", "", "Choose a category."),
    ("category", "spaceships", "Not a valid choice."),
    ("description", "Too short", "Field must be between 20 and 5000 characters long."),
    ("city", "", "Which city is it in?"),
    ("price", "", "Set a price."),
    ("price", "abc", "Not a valid integer value."),
    ("price", "-5", "Enter a price from ₹1 to ₹1,00,00,000."),
    ("price", "0", "Enter a price from ₹1 to ₹1,00,00,000."),
    ("price", "99999999999999999999", "Enter a price from ₹1 to ₹1,00,00,000."),
    ("price_unit", "week", "Not a valid choice."),
    ("deposit", "-1", "Enter a deposit from ₹0 to ₹1,00,00,000."),
    ("capacity", "", "Venues need a capacity: how many guests fit?"),
    ("capacity", "0", "Enter 1 to 100,000 guests."),
    ("capacity", "1e3", "Not a valid integer value."),
])
def test_invalid_listing_form_re_renders_with_the_field_error(client, seller, field, value, error):
    client.login(seller)
    response = client.post("/listings/new", {**listing_form(**{field: value}), "publish": "Publish"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'id="field-{field}"' in page and error.replace("'", "&#39;") in page
    assert count_listings() == 0


def test_prices_may_be_typed_with_commas_and_rupee_sign(client, seller):
    client.login(seller)
    client.post("/listings/new", listing_form(price="₹ 1,20,000", deposit="20,000"))
    listing = db.session.scalars(db.select(Listing)).one()
    assert (listing.price, listing.deposit) == (120000, 20000)


def test_capacity_is_only_kept_for_venues_and_city_is_normalised(client, seller):
    client.login(seller)
    client.post("/listings/new", listing_form(category="lighting", capacity="80", city="  navi   mumbai "))
    listing = db.session.scalars(db.select(Listing)).one()
    assert (listing.category, listing.capacity, listing.city) == ("lighting", None, "Navi Mumbai")


def test_edit_changes_the_listing_and_keeps_its_status(client, seller, listing):
    client.login(seller)
    form_page = client.get(f"/listings/{listing.id}/edit").get_data(as_text=True)
    assert f'value="{listing.title}"' in form_page
    response = client.post(f"/listings/{listing.id}/edit", listing_form(title="Sunlit banquet hall", price="30000"))
    assert response.status_code == 302
    db.session.refresh(listing)
    assert (listing.title, listing.price, listing.status) == ("Sunlit banquet hall", 30000, LIVE)


def test_invalid_edit_changes_nothing(client, seller, listing):
    client.login(seller)
    response = client.post(f"/listings/{listing.id}/edit", listing_form(title="", price="12"))
    assert response.status_code == 422
    db.session.refresh(listing)
    assert listing.title.startswith("Banquet hall") and listing.price == 25000


def test_saving_a_draft_with_publish_puts_it_live(client, seller, make_listing):
    draft = make_listing(seller=seller, status=DRAFT)
    client.login(seller)
    client.post(f"/listings/{draft.id}/edit", {**listing_form(), "publish": "Save and publish"})
    db.session.refresh(draft)
    assert draft.status == LIVE


def test_status_flow_publish_pause_resume(client, make_client, seller, make_listing):
    draft = make_listing(seller=seller, status=DRAFT)
    client.login(seller)
    steps = [("publish", LIVE, 200), ("pause", PAUSED, 404), ("resume", LIVE, 200)]
    for action, status, public in steps:
        response = client.post(f"/listings/{draft.id}/{action}")
        assert response.status_code == 302 and response.headers["Location"] == "/dashboard"
        db.session.refresh(draft)
        assert draft.status == status
        assert make_client().get(f"/listings/{draft.id}").status_code == public


def test_repeating_a_status_change_is_harmless(client, seller, listing):
    client.login(seller)
    assert client.post(f"/listings/{listing.id}/pause").status_code == 302
    assert client.post(f"/listings/{listing.id}/pause").status_code == 302
    db.session.refresh(listing)
    assert listing.status == PAUSED


@pytest.mark.parametrize("start, action, message", [
    (DRAFT, "pause", "A draft listing can&#39;t be paused."),
    (DRAFT, "resume", "A draft listing can&#39;t be resumed."),
    (PAUSED, "publish", "A paused listing can&#39;t be published."),
])
def test_impossible_status_changes_are_refused(client, seller, make_listing, start, action, message):
    item = make_listing(seller=seller, status=start)
    client.login(seller)
    response = client.post(f"/listings/{item.id}/{action}")
    assert response.status_code == 409 and message in response.get_data(as_text=True)
    db.session.refresh(item)
    assert item.status == start


def test_the_owner_banner_offers_the_next_step(client, seller, make_listing):
    client.login(seller)
    for status, text, button in [(DRAFT, "<strong>Draft.</strong>", "Publish"), (PAUSED, "<strong>Paused.</strong>", "Resume"),
                                 (LIVE, "Your listing is live.", "Pause")]:
        item = make_listing(seller=seller, status=status)
        page = client.get(f"/listings/{item.id}").get_data(as_text=True)
        assert text in page and f">{button}</button>" in page


def test_delete_removes_listing_photos_and_favourites(app, client, make_client, seller, buyer, listing):
    services.add_photos(listing, [jpeg(), jpeg()])
    services.set_favourite(buyer, listing, True)
    assert len(photo_files(app.config["UPLOAD_FOLDER"])) == 6
    client.login(seller)
    assert client.get(f"/listings/{listing.id}/delete").status_code == 200
    response = client.post(f"/listings/{listing.id}/delete")
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard"
    db.session.refresh(listing)
    assert (listing.status, listing.favourite_count, listing.photos) == (REMOVED, 0, [])
    assert photo_files(app.config["UPLOAD_FOLDER"]) == []
    assert db.session.scalar(db.select(db.func.count()).select_from(Favourite)) == 0
    # Gone for good: its page says so (410), for its seller as for anyone.
    assert client.get(f"/listings/{listing.id}").status_code == 410
    assert client.get(f"/listings/{listing.id}/edit").status_code == 404
    assert make_client().get(f"/listings/{listing.id}").status_code == 410
    assert listing.title not in client.get("/dashboard").get_data(as_text=True)


def test_views_are_counted_once_per_visitor_and_never_for_the_owner(client, make_client, seller, listing):
    visitor = make_client()
    visitor.get(f"/listings/{listing.id}")
    visitor.get(f"/listings/{listing.id}")
    make_client().get(f"/listings/{listing.id}")
    client.login(seller)
    client.get(f"/listings/{listing.id}")
    db.session.refresh(listing)
    assert listing.view_count == 2


def test_description_keeps_newlines_and_is_escaped(client, make_listing):
    item = make_listing(description="Line one <script>alert(1)</script>\nLine two")
    page = client.get(f"/listings/{item.id}").get_data(as_text=True)
    assert '<div class="description">Line one &lt;script&gt;alert(1)&lt;/script&gt;\nLine two</div>' in page


def test_listing_page_shows_the_seller_card_and_room_for_the_chat(client, seller, listing):
    page = client.get(f"/listings/{listing.id}").get_data(as_text=True)
    profile = seller.seller_profile
    assert f'<a href="/sellers/{seller.id}">{profile.shop_name}</a>' in page
    assert f"{profile.city} · member since {seller.created_at.strftime('%B %Y')}" in page
    assert "1 live listing" in page
    assert '<section class="contact-seller" id="contact-seller" aria-label="Contact the seller">' in page


def test_unknown_listing_is_a_404_page(client):
    response = client.get("/listings/424242")
    assert response.status_code == 404 and "We couldn&#39;t find that page." in response.get_data(as_text=True)


def test_service_refuses_bad_data_even_without_the_form(app, seller):
    with pytest.raises(services.ListingError):
        services.create_listing(seller, **{**listing_form(), "price": 25000, "deposit": 0, "capacity": 80, "category": "boats"})
    with pytest.raises(services.ListingError):
        services.create_listing(seller, **{**listing_form(), "price": -1, "deposit": 0, "capacity": 80})
    assert count_listings() == 0
