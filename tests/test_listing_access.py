"""Who may do what to a listing: anonymous, a buyer, another seller, the owner, a moderator.

The rule (rentpe/listings/guards.py): live listings are public; drafts and paused ones only for
their seller and moderators (404 for everyone else, so they don't leak). Only the seller changes a
listing: anonymous people are sent to log in; someone who can see it gets 403, anyone else 404.
"""
import pytest

from rentpe.extensions import db
from rentpe.listings import services
from rentpe.listings.models import DRAFT, LIVE, PAUSED, ListingPhoto
from tests.helpers import fetch, jpeg, listing_form, upload

ROLES = ["anonymous", "buyer", "other_seller", "owner", "moderator"]


@pytest.fixture
def app_overrides(tmp_path):
    return {"UPLOAD_FOLDER": str(tmp_path / "uploads")}


@pytest.fixture
def client_as(make_client, seller, buyer, moderator, make_seller):
    people = {"buyer": buyer, "other_seller": make_seller(), "owner": seller, "moderator": moderator}

    def client_as(role):
        client = make_client()
        if role != "anonymous":
            client.login(people[role])
        return client

    return client_as


@pytest.fixture
def listing_in(make_listing, seller):
    """A listing of `seller` in the given status, with two photos."""
    def make(status):
        item = make_listing(seller=seller, status=status)
        services.add_photos(item, [jpeg((64, 48)), jpeg((64, 48), color=(0, 90, 200))])
        return item

    return make


def snapshot(listing):
    db.session.refresh(listing)
    return (listing.status, listing.title, listing.price, [p.key for p in listing.photos])


# --- reading -------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_everyone_sees_a_live_listing_and_its_photos(client_as, listing_in, role):
    item = listing_in(LIVE)
    client = client_as(role)
    assert client.get(f"/listings/{item.id}").status_code == 200
    response = fetch(client, f"/photos/large/{item.photos[0].key}")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize("status", [DRAFT, PAUSED])
@pytest.mark.parametrize("role, expected", [
    ("anonymous", 404), ("buyer", 404), ("other_seller", 404), ("owner", 200), ("moderator", 200),
])
def test_only_the_owner_and_moderators_see_drafts_and_paused_listings(client_as, listing_in, status, role, expected):
    item = listing_in(status)
    client = client_as(role)
    page = client.get(f"/listings/{item.id}")
    assert page.status_code == expected
    photo = fetch(client, f"/photos/thumb/{item.photos[0].key}")
    assert photo.status_code == expected
    if expected == 200:
        assert photo.headers["Cache-Control"] == "max-age=31536000, immutable, private"
    if role == "moderator":
        assert "<strong>Moderator view.</strong>" in page.get_data(as_text=True)


# --- changing ------------------------------------------------------------------------------

def edit_page(client, item):
    return client.get(f"/listings/{item.id}/edit")


def edit(client, item):
    return client.post(f"/listings/{item.id}/edit", listing_form(title="Taken over"))


def publish(client, item):
    return client.post(f"/listings/{item.id}/publish")


def pause(client, item):
    return client.post(f"/listings/{item.id}/pause")


def resume(client, item):
    return client.post(f"/listings/{item.id}/resume")


def delete_page(client, item):
    return client.get(f"/listings/{item.id}/delete")


def delete(client, item):
    return client.post(f"/listings/{item.id}/delete")


def add_photo(client, item):
    return client.post(f"/listings/{item.id}/photos", {"photos": [upload(jpeg())]})


def remove_photo(client, item):
    return client.post(f"/listings/{item.id}/photos/{item.photos[0].id}/delete")


def make_cover(client, item):
    return client.post(f"/listings/{item.id}/photos/{item.photos[1].id}/cover")


# action, the status the listing starts in, what the owner gets
ACTIONS = [
    (edit_page, LIVE, 200), (edit, LIVE, 302), (edit, DRAFT, 302), (edit, PAUSED, 302),
    (publish, DRAFT, 302), (pause, LIVE, 302), (resume, PAUSED, 302),
    (delete_page, LIVE, 200), (delete, LIVE, 302), (delete, DRAFT, 302), (delete, PAUSED, 302),
    (add_photo, LIVE, 302), (add_photo, DRAFT, 302), (remove_photo, LIVE, 302), (remove_photo, PAUSED, 302),
    (make_cover, LIVE, 302),
]


def expected_status(role, start, owner_gets):
    if role == "anonymous":
        return 302  # to the log-in page
    if role == "owner":
        return owner_gets
    can_see = start == LIVE or role == "moderator"
    return 403 if can_see else 404


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action, start, owner_gets", ACTIONS, ids=lambda v: getattr(v, "__name__", v))
def test_only_the_owner_changes_a_listing(client_as, listing_in, role, action, start, owner_gets):
    item = listing_in(start)
    before = snapshot(item)
    response = action(client_as(role), item)
    assert response.status_code == expected_status(role, start, owner_gets)
    if role == "anonymous":
        assert response.headers["Location"].startswith("/login?next=")
    after = snapshot(item)
    if role == "owner" and response.request.method == "POST":
        assert after != before
    else:
        assert after == before


def test_a_photo_of_another_listing_is_not_found_through_yours(client_as, listing_in, make_listing, make_seller):
    mine = listing_in(LIVE)
    theirs = make_listing(seller=make_seller())
    services.add_photos(theirs, [jpeg()])
    their_photo = theirs.photos[0]
    owner = client_as("owner")
    assert owner.post(f"/listings/{mine.id}/photos/{their_photo.id}/delete").status_code == 404
    assert db.session.get(ListingPhoto, their_photo.id) is not None
