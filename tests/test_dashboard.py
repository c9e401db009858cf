"""The seller dashboard (my listings, actions in place with htmx) and public seller pages."""
from rentpe.extensions import db
from rentpe.listings import services
from rentpe.listings.models import DRAFT, LIVE, PAUSED, REMOVED


def test_non_sellers_get_a_403_with_a_way_to_become_one(client, buyer):
    client.login(buyer)
    response = client.get("/dashboard")
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "The seller dashboard is for sellers." in page and '<a class="button primary" href="/sell">Become a seller</a>' in page


def test_anonymous_dashboard_asks_to_log_in(client):
    response = client.get("/dashboard")
    assert response.status_code == 302 and response.headers["Location"] == "/login?next=%2Fdashboard"


def test_dashboard_lists_my_listings_with_status_and_counts(client, seller, make_listing, make_seller, buyer):
    live = make_listing(seller=seller, title="Lawn for sangeet", view_count=12)
    make_listing(seller=seller, title="Tent draft", status=DRAFT)
    make_listing(seller=seller, title="Old chairs", status=PAUSED)
    make_listing(seller=seller, title="Gone for good", status=REMOVED)
    make_listing(seller=make_seller(), title="Someone else's hall")
    services.set_favourite(buyer, live, True)
    client.login(seller)
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Lawn for sangeet" in page and "Tent draft" in page and "Old chairs" in page
    assert "Gone for good" not in page and "Someone else" not in page
    assert '<span class="status status-live">Live</span>' in page and '<span class="status status-draft">Draft</span>' in page
    assert "12 views" in page and "1 save<" in page
    assert '<a class="button primary" href="/listings/new">+ Add listing</a>' in page
    # The inbox comes before the listing table (first on a phone's screen), as one labelled region.
    assert page.index('id="dashboard-inbox"') < page.index('id="my-listings"')
    assert page.count('aria-labelledby="seller-inbox-title"') == 1
    drafts = client.get("/dashboard?status=draft").get_data(as_text=True)
    assert "Tent draft" in drafts and "Lawn for sangeet" not in drafts
    assert "Lawn for sangeet" in client.get("/dashboard?status=nonsense").get_data(as_text=True)


def test_htmx_pause_and_resume_swap_the_row(client, seller, listing):
    client.login(seller)
    row = client.post(f"/listings/{listing.id}/pause", htmx=True)
    assert row.status_code == 200
    html = row.get_data(as_text=True).strip()
    assert html.startswith(f'<li class="dash-row" id="dashboard-row-{listing.id}">')
    assert '<span class="status status-paused">Paused</span>' in html and ">Resume</button>" in html
    html = client.post(f"/listings/{listing.id}/resume", htmx=True).get_data(as_text=True)
    assert '<span class="status status-live">Live</span>' in html and ">Pause</button>" in html
    db.session.refresh(listing)
    assert listing.status == LIVE


def test_htmx_delete_asks_first_and_leaves_a_deleted_row(client, seller, listing):
    client.login(seller)
    page = client.get("/dashboard").get_data(as_text=True)
    assert f'hx-post="/listings/{listing.id}/delete"' in page and "hx-confirm=\"Delete “" in page
    assert f'href="/listings/{listing.id}/delete"' in page  # the no-JS confirmation page
    html = client.post(f"/listings/{listing.id}/delete", htmx=True).get_data(as_text=True).strip()
    assert html.startswith(f'<li class="dash-row is-removed" id="dashboard-row-{listing.id}"><p>“{listing.title}” is deleted.</p></li>')
    # The totals come with it, out of band (tests/test_dashboard_truth.py).
    assert 'id="dashboard-count-all" hx-swap-oob="true">0<' in html


def test_without_js_actions_redirect_back_where_they_came_from(client, seller, listing):
    client.login(seller)
    response = client.post(f"/listings/{listing.id}/pause", {"next": f"/listings/{listing.id}"})
    assert response.headers["Location"] == f"/listings/{listing.id}"
    assert "is paused: buyers won&#39;t see it until you resume it." in client.get(f"/listings/{listing.id}").get_data(as_text=True)


def test_empty_dashboard_invites_the_first_listing(client, seller):
    client.login(seller)
    assert "You have no listings yet." in client.get("/dashboard").get_data(as_text=True)


def test_seller_page_shows_shop_and_live_listings_only(client, seller, make_listing):
    make_listing(seller=seller, title="Live lawn")
    make_listing(seller=seller, title="Secret draft", status=DRAFT)
    page = client.get(f"/sellers/{seller.id}").get_data(as_text=True)
    profile = seller.seller_profile
    assert f"<h1>{profile.shop_name}</h1>" in page
    assert f"{profile.city} · member since {seller.created_at.strftime('%B %Y')}" in page and "1 live listing" in page
    assert "Live lawn" in page and "Secret draft" not in page


def test_seller_page_of_a_non_seller_or_unknown_id_is_404(client, buyer):
    assert client.get(f"/sellers/{buyer.id}").status_code == 404
    assert client.get("/sellers/987654").status_code == 404
