"""Favourites: hearting a listing with htmx or a plain form, the saved list, exact counts."""
import re

import pytest

from rentpe.extensions import db
from rentpe.listings import services
from rentpe.listings.models import DRAFT, PAUSED, Favourite


def favourite_rows():
    return db.session.scalars(db.select(Favourite.listing_id).order_by(Favourite.id)).all()


def count_of(listing):
    db.session.refresh(listing)
    return listing.favourite_count


def heart(fragment):
    """(pressed, the state the next click asks for) of a rendered heart button."""
    pressed = re.search(r'aria-pressed="(\w+)"', fragment).group(1)
    wanted = re.search(r'name="saved" value="(\d)"', fragment).group(1)
    return pressed, wanted


def test_htmx_heart_swaps_itself_and_counts(client, buyer, listing):
    client.login(buyer)
    page = client.get(f"/listings/{listing.id}").get_data(as_text=True)
    assert f'<form id="fav-{listing.id}" class="fav"' in page and f'hx-target="#fav-{listing.id}"' in page
    response = client.post(f"/listings/{listing.id}/favourite", {"saved": "1"}, htmx=True)
    assert response.status_code == 200
    fragment = response.get_data(as_text=True).strip()
    assert fragment.startswith(f'<form id="fav-{listing.id}" class="fav is-saved"')
    assert heart(fragment) == ("true", "0")
    assert favourite_rows() == [listing.id] and count_of(listing) == 1
    response = client.post(f"/listings/{listing.id}/favourite", {"saved": "0"}, htmx=True)
    assert heart(response.get_data(as_text=True)) == ("false", "1")
    assert favourite_rows() == [] and count_of(listing) == 0


def test_without_js_the_heart_redirects_back(client, buyer, listing):
    client.login(buyer)
    response = client.post(f"/listings/{listing.id}/favourite", {"saved": "1", "next": "/search?category=venues"})
    assert response.status_code == 302 and response.headers["Location"] == "/search?category=venues"
    assert "Saved to your list." in client.get("/saved").get_data(as_text=True)


def test_redirect_back_never_leaves_the_site(client, buyer, listing):
    client.login(buyer)
    response = client.post(f"/listings/{listing.id}/favourite", {"saved": "1", "next": "https://evil.example/"})
    assert response.headers["Location"] == f"/listings/{listing.id}"


def test_a_double_click_or_second_tab_does_not_double_count(client, make_client, buyer, listing):
    client.login(buyer)
    other_tab = make_client()
    other_tab.login(buyer)
    client.post(f"/listings/{listing.id}/favourite", {"saved": "1"}, htmx=True)
    other_tab.post(f"/listings/{listing.id}/favourite", {"saved": "1"}, htmx=True)
    assert favourite_rows() == [listing.id] and count_of(listing) == 1
    client.post(f"/listings/{listing.id}/favourite", {"saved": "0"})
    other_tab.post(f"/listings/{listing.id}/favourite", {"saved": "0"})
    assert favourite_rows() == [] and count_of(listing) == 0


def test_without_a_wanted_state_the_heart_toggles(client, buyer, listing):
    client.login(buyer)
    client.post(f"/listings/{listing.id}/favourite", htmx=True)
    assert count_of(listing) == 1
    client.post(f"/listings/{listing.id}/favourite", {"saved": "garbage"}, htmx=True)
    assert count_of(listing) == 0


def test_counts_add_up_across_people(make_client, make_user, listing):
    people = [make_user() for _ in range(3)]
    for person in people:
        services.set_favourite(person, listing, True)
    services.set_favourite(people[0], listing, False)
    assert count_of(listing) == 2


def test_anonymous_heart_goes_to_log_in_and_back_to_the_listing(client, listing):
    page = client.get(f"/listings/{listing.id}").get_data(as_text=True)
    assert f'<a id="fav-{listing.id}" class="fav" title="Log in to save listings"' in page
    response = client.post(f"/listings/{listing.id}/favourite", {"saved": "1"})
    assert response.status_code == 302 and response.headers["Location"] == f"/login?next=/listings/{listing.id}"
    htmx = client.post(f"/listings/{listing.id}/favourite", {"saved": "1"}, htmx=True)
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"] == f"/login?next=/listings/{listing.id}"
    assert favourite_rows() == []


def test_anonymous_saved_page_asks_to_log_in(client):
    response = client.get("/saved")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")


def test_sellers_cannot_heart_their_own_listing(client, seller, listing):
    client.login(seller)
    assert f'id="fav-{listing.id}"' not in client.get(f"/listings/{listing.id}").get_data(as_text=True)
    response = client.post(f"/listings/{listing.id}/favourite", {"saved": "1"})
    assert response.status_code == 403 and "You can&#39;t save your own listing." in response.get_data(as_text=True)
    assert count_of(listing) == 0


@pytest.mark.parametrize("status", [DRAFT, PAUSED])
def test_listings_you_cannot_see_cannot_be_hearted(client, buyer, make_listing, status):
    hidden = make_listing(status=status)
    client.login(buyer)
    assert client.post(f"/listings/{hidden.id}/favourite", {"saved": "1"}).status_code == 404
    assert favourite_rows() == []


def test_saved_page_lists_live_saved_listings_newest_first(client, buyer, make_listing):
    first, second, paused = make_listing(title="Lawn in Pune"), make_listing(title="Fairy lights"), make_listing(title="Paused tent")
    for item in (first, second, paused):
        services.set_favourite(buyer, item, True)
    services.pause_listing(paused)
    client.login(buyer)
    page = client.get("/saved").get_data(as_text=True)
    assert page.index("Fairy lights") < page.index("Lawn in Pune")
    assert "Paused tent" not in page
    assert page.count('aria-pressed="true"') == 2
    services.resume_listing(paused)
    assert "Paused tent" in client.get("/saved").get_data(as_text=True)


def test_saved_page_paginates_and_shrugs_off_bad_page_numbers(client, buyer, make_listing):
    items = [make_listing(title=f"Item number {n}") for n in range(26)]
    for item in items:
        services.set_favourite(buyer, item, True)
    client.login(buyer)
    first = client.get("/saved").get_data(as_text=True)
    assert first.count('class="listing-card"') == 24 and 'rel="next" href="/saved?page=2"' in first
    second = client.get("/saved?page=2").get_data(as_text=True)
    assert second.count('class="listing-card"') == 2 and 'rel="prev" href="/saved?page=1"' in second
    for page in ("0", "-3", "abc", "99999999999999999999", "%E0%A5%A7"):
        assert client.get(f"/saved?page={page}").status_code == 200
    assert client.get("/saved?page=%00").status_code == 400


def test_empty_saved_page_invites_browsing(client, buyer):
    client.login(buyer)
    assert "Nothing saved yet." in client.get("/saved").get_data(as_text=True)


def test_hearts_on_cards_show_what_you_saved(client, buyer, make_listing):
    saved, other = make_listing(), make_listing()
    services.set_favourite(buyer, saved, True)
    client.login(buyer)
    home = client.get("/").get_data(as_text=True)
    assert f'<form id="fav-{saved.id}" class="fav is-saved"' in home
    assert f'<form id="fav-{other.id}" class="fav"' in home
