"""The dashboard tells the truth: its totals and tab counts follow a pause, a resume, a publish and
a deletion without a reload; a paused or removed listing's page tells a visitor it is not
available now, with the seller's other listings and the right status code."""
import re

import pytest

from rentpe.listings.models import DRAFT, LIVE, PAUSED, REMOVED, SUSPENDED, TAKEN_DOWN
from tests.stream_helpers import Stream, broker_overrides


@pytest.fixture
def broker():
    return "memory"


@pytest.fixture
def app_overrides(broker):
    return broker_overrides(broker)


def totals(html):
    """{id: number} of every total and tab count in `html`."""
    return {key: int(value) for key, value in
            re.findall(r'id="dashboard-(?:total|count)-(\w+)"[^>]*>(\d+)<', html)}


def oob_totals(html):
    return {key: int(value) for key, value in
            re.findall(r'id="dashboard-(?:total|count)-(\w+)" hx-swap-oob="true">(\d+)<', html)}


@pytest.fixture
def seller_client(make_client, seller):
    c = make_client()
    c.login(seller)
    return c


def test_totals_and_tab_counts_follow_every_change_of_status(seller_client, seller, make_listing):
    hall = make_listing(seller=seller, title="Banquet hall", status=LIVE)
    lights = make_listing(seller=seller, title="Fairy lights", status=DRAFT)
    page = totals(seller_client.get("/dashboard").get_data(as_text=True))
    assert {k: page[k] for k in ("live", "draft", "paused", "all")} == {"live": 1, "draft": 1, "paused": 0, "all": 2}

    steps = [
        (f"/listings/{hall.id}/pause", {"live": 0, "draft": 1, "paused": 1, "all": 2}),
        (f"/listings/{lights.id}/publish", {"live": 1, "draft": 0, "paused": 1, "all": 2}),
        (f"/listings/{hall.id}/resume", {"live": 2, "draft": 0, "paused": 0, "all": 2}),
        (f"/listings/{lights.id}/delete", {"live": 1, "draft": 0, "paused": 0, "all": 1}),
    ]
    for url, expected in steps:
        answer = seller_client.post(url, htmx=True).get_data(as_text=True)
        swapped = oob_totals(answer)
        # Every total and every tab count comes back out of band, the row itself in place.
        assert {k: swapped[k] for k in expected} == expected, url
        assert set(swapped) == {"live", "draft", "paused", "views", "saves", "all"}
        # What the answer shows is what a reload shows.
        reloaded = totals(seller_client.get("/dashboard").get_data(as_text=True))
        assert {k: reloaded[k] for k in expected} == expected


@pytest.mark.parametrize("status, code, says", [
    (PAUSED, 404, "may be back later"), (SUSPENDED, 404, "may be back later"),
    (TAKEN_DOWN, 404, "may be back later"),  # a moderator may lift it
    (REMOVED, 410, "won't come back"),
])
def test_a_paused_or_removed_listing_tells_a_visitor_and_shows_the_sellers_other_listings(
        client, make_client, make_user, seller, make_listing, status, code, says):
    gone = make_listing(seller=seller, title="Banquet hall", status=status)
    other = make_listing(seller=seller, title="Fairy lights", status=LIVE)
    hidden = make_listing(seller=seller, title="Secret draft", status=DRAFT)
    buyer = make_client()
    buyer.login(make_user(display_name="Visitor"))
    for visitor in (client, buyer):
        response = visitor.get(f"/listings/{gone.id}")
        html = response.get_data(as_text=True)
        assert response.status_code == code
        assert "“Banquet hall” is not available now" in html and says in html
        assert "Fairy lights" in html and f'/listings/{other.id}"' in html and "Secret draft" not in html
        assert "couldn&#39;t find" not in html and "noindex" in html


def test_a_draft_stays_a_plain_404(client, seller, make_listing):
    draft = make_listing(seller=seller, title="Unfinished", status=DRAFT)
    response = client.get(f"/listings/{draft.id}")
    assert response.status_code == 404 and "Unfinished" not in response.get_data(as_text=True)
    assert client.get("/listings/987654").status_code == 404


def test_the_owner_still_sees_their_paused_listing(seller_client, seller, make_listing):
    paused = make_listing(seller=seller, title="Banquet hall", status=PAUSED)
    response = seller_client.get(f"/listings/{paused.id}")
    assert response.status_code == 200 and "not available now" not in response.get_data(as_text=True)


@pytest.mark.parametrize("broker", ["memory", "redis"])
def test_every_open_dashboard_follows_the_totals_live_a_moderators_decision_too(
        make_client, seller, moderator, make_listing, broker, app):
    hall = make_listing(seller=seller, title="Banquet hall", status=LIVE)
    make_listing(seller=seller, title="Fairy lights", status=LIVE)
    other_tab, mod = make_client(), make_client()
    other_tab.login(seller)
    mod.login(moderator)
    stream = Stream(other_tab, "/events?after=0")
    try:
        other_tab.post(f"/listings/{hall.id}/pause", htmx=True)  # as if from another tab
        assert stream.read_until(lambda s: 'id="dashboard-count-paused" hx-swap-oob="true">1<' in s.text)
        assert 'id="dashboard-total-live" hx-swap-oob="true">1<' in stream.text
        assert mod.post(f"/admin/listings/{hall.id}/remove", {"reason": "Not a real hall"}).status_code == 303
        assert stream.read_until(lambda s: 'id="dashboard-count-paused" hx-swap-oob="true">0<' in s.text)
        assert 'id="dashboard-count-all" hx-swap-oob="true">2<' in stream.text  # taken down: still the seller's
    finally:
        stream.close()
