"""Browse and search: full-text keywords, filters, sorts, pages, and the htmx page around them.

Every test runs on SQLite (FTS5) and PostgreSQL (tsvector) alike.
"""
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from rentpe import create_app
from rentpe.extensions import db
from rentpe.accounts.models import User
from rentpe.listings.models import DRAFT, LIVE, PAUSED, REMOVED
from rentpe.listings.search import search_listings
from rentpe.models_base import utcnow
from tests.conftest import _overrides, scratch_database

PAGE_SIZE = 3


@pytest.fixture
def app_overrides():
    # Small pages, so a handful of listings spans several.
    return {"SEARCH_PAGE_SIZE": PAGE_SIZE}


CARD_TITLE = re.compile(r'<article class="listing-card" id="listing-card-\d+">.*?<h3>(.*?)</h3>', re.S)


def titles_on(response):
    return CARD_TITLE.findall(response.get_data(as_text=True))


def found(**params):
    return [listing.title for listing in search_listings(per_page=100, **params).items]


@pytest.fixture
def hours_ago():
    now = utcnow()
    return lambda hours: now - timedelta(hours=hours)


@pytest.fixture
def shop(make_listing, hours_ago):
    """A small market: the newest listing first in this dict."""
    specs = [
        dict(title="Fairy lights, warm white", category="lighting", city="Pune", area="Baner", price=800,
             description="Two hundred metres of string lights for a garden wedding or a birthday."),
        dict(title="Banquet hall with lawn", category="venues", city="Mumbai", area="Andheri", price=90000,
             description="Seats 300 for weddings and receptions; valet parking and catering kitchen."),
        dict(title="Golden chiavari chairs", category="furniture", city="Pune", area="Kothrud", price=45,
             description="Stackable chairs with cushions, delivered and collected."),
        dict(title="Round banquet tables", category="furniture", city="Mumbai", area="Bandra", price=300,
             description="Seat eight guests each; pairs well with our chairs and linen."),
        dict(title="DJ console and speakers", category="electronics", city="Delhi", area="Saket", price=12000,
             description="Pioneer decks, two speakers and a wireless microphone."),
        dict(title="Marigold flower arch", category="decoration", city="Bengaluru", area="Indiranagar", price=6500,
             description="Fresh marigold and rose entrance arch for a mehendi or sangeet."),
    ]
    return {
        spec["title"]: make_listing(**spec, capacity=None, created_at=hours_ago(hour + 1))
        for hour, spec in enumerate(specs)
    }


# ---------------------------------------------------------------------------------------------
# Keywords

def test_a_title_match_ranks_above_newer_description_matches(make_listing):
    make_listing(title="Golden chairs", description="Stackable, with cushions.")
    make_listing(title="Banquet tables for hire", description="Seat eight guests; pairs well with chairs.")
    make_listing(title="Linen and napkins", description="Chair covers, runners and napkins in six colours.")

    assert found(q="chairs")[0] == "Golden chairs"
    assert set(found(q="chairs")) == {"Golden chairs", "Banquet tables for hire", "Linen and napkins"}
    assert found(q="chairs", sort="newest") == ["Linen and napkins", "Banquet tables for hire", "Golden chairs"]


def test_the_place_counts_more_than_the_description(make_listing):
    make_listing(title="Sound system", city="Delhi", area="Saket", description="Speakers for a sangeet in Pune.")
    make_listing(title="Sound system", city="Pune", area="Baner", description="Speakers for a sangeet.")

    assert [listing.city for listing in search_listings(q="sound pune").items] == ["Pune", "Delhi"]


def test_every_word_must_match_in_some_field(shop):
    assert set(found(q="banquet")) == {"Banquet hall with lawn", "Round banquet tables"}
    assert found(q="banquet lawn") == ["Banquet hall with lawn"]
    assert found(q="banquet Bandra") == ["Round banquet tables"]
    assert found(q="banquet marigold") == []


def test_words_are_stemmed(shop):
    both = {"Fairy lights, warm white", "Banquet hall with lawn"}
    assert set(found(q="wedding")) == set(found(q="weddings")) == both
    assert found(q="chair") == ["Golden chiavari chairs", "Round banquet tables"]
    assert set(found(q="seating")) == set(found(q="seat")) == {"Banquet hall with lawn", "Round banquet tables"}


def test_the_last_word_matches_as_a_prefix_while_typing(shop):
    assert found(q="fairy lig") == ["Fairy lights, warm white"]
    assert found(q="mari") == ["Marigold flower arch"]
    # Not the earlier words, and not one or two letters: those would match nearly everything.
    assert found(q="mari flower") == []
    assert found(q="ma") == []


def test_stop_words_and_case_are_ignored(shop):
    assert found(q="The Hall FOR a wedding") == ["Banquet hall with lawn"]


def test_words_in_any_script(make_listing):
    make_listing(title="शादी हॉल", description="बड़ा हॉल, 500 मेहमान")
    make_listing(title="Café tables", description="Bistro sets.")

    assert found(q="हॉल") == ["शादी हॉल"]
    assert found(q="CAFÉ") == ["Café tables"]


def test_a_query_without_searchable_words_lists_everything(client, shop):
    for q in ["the", '"', "!!!", "--", "   "]:
        assert len(found(q=q)) == len(shop)

    page = client.get("/search", query_string={"q": "!!!"}).get_data(as_text=True)
    assert "“!!!” has no words we can search for, so all listings are shown." in page


HOSTILE = [
    '"', "'", '""', '"chairs', "chairs\"", "'; DROP TABLE listings; --", "NEAR(chairs golden)", "NEAR",
    "chairs NEAR/2 golden", "*", "chairs*", "*chairs", "-", "-chairs", "chairs -golden", "golden OR chairs",
    "golden AND chairs", "NOT chairs", "AND", "OR", "title:chairs", "{title}: chairs", "^chairs", "chairs^2",
    "(((chairs", "chairs)))", "&|!:*", "chairs & golden | !x", "chairs:*", "\\", "\\\"chairs\\\"", "%_%",
    "\x00", "chairs\x00golden", "\x00\x00\x00", "golden\u200bchairs", "🎉 chairs 🎉", "ＣＨＡＩＲＳ",
    "chairs " * 2000, "x" * 10_000, "golden " + "chairs" * 2000, "<script>alert(1)</script> chairs",
]


@pytest.mark.parametrize("q", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_queries_never_break_the_search(client, shop, q):
    response = client.get("/search", query_string={"q": q})
    # The app answers 400 to any request carrying a NUL byte, before the search sees it.
    assert response.status_code == (400 if "\x00" in q else 200)
    assert "<script>alert" not in response.get_data(as_text=True)
    # The search itself copes with all of them too (it is also called from elsewhere).
    results = search_listings(q=q, per_page=100)
    assert results.total == len(results.items) <= len(shop)


@pytest.mark.parametrize("q", ['"golden chairs', "golden* chairs*", "golden OR chairs", "golden AND chairs",
                               "-golden -chairs", "golden\x00chairs", "🎉 golden chairs 🎉", "golden\u200bchairs",
                               "golden:chairs", "(golden) | chairs!"])
def test_operators_are_read_as_plain_words(shop, q):
    assert found(q=q) == ["Golden chiavari chairs"]


@pytest.mark.parametrize("q", ["NEAR(golden chairs)", "title:chairs", "chairs NEAR golden"])
def test_operator_words_are_words_too(shop, q):
    """NEAR and column names are searched for like any other word (and these match nothing)."""
    assert found(q=q) == []


# ---------------------------------------------------------------------------------------------
# Only live listings, always up to date

def test_only_live_listings_are_found(make_listing):
    for status in (DRAFT, LIVE, PAUSED, REMOVED):
        make_listing(title=f"Mirror ball {status}", status=status)

    assert found(q="mirror ball") == ["Mirror ball live"]
    assert found() == ["Mirror ball live"]


def _save(listing, **changes):
    for name, value in changes.items():
        setattr(listing, name, value)
    db.session.commit()


def test_pausing_hides_a_listing_at_once_and_resuming_brings_it_back(client, listing):
    assert titles_on(client.get("/search?q=banquet")) == [listing.title]

    _save(listing, status=PAUSED)
    assert titles_on(client.get("/search?q=banquet")) == []
    assert titles_on(client.get("/search")) == []

    _save(listing, status=LIVE)
    assert titles_on(client.get("/search?q=banquet")) == [listing.title]


def test_an_edited_listing_is_found_by_its_new_words_only(listing):
    _save(listing, title="Rooftop terrace", description="Open sky, city views.", city="Goa", area="Anjuna")

    assert found(q="rooftop") == found(q="views") == found(q="anjuna") == ["Rooftop terrace"]
    assert found(q="banquet") == found(q="catering") == found(q="andheri") == []


def test_a_deleted_listing_is_gone_from_results(listing, make_listing):
    other = make_listing(title="Banquet lawn")
    db.session.delete(listing)
    db.session.commit()

    assert found(q="banquet") == [other.title]


def test_deleting_a_seller_removes_their_listings_from_results(seller, make_listing):
    make_listing(seller=seller, title="Tent house canopy")
    # The database cascades the delete to the listings; the index follows.
    db.session.execute(sa.delete(User).where(User.id == seller.id))
    db.session.commit()

    assert found(q="canopy") == []


def test_the_index_stays_exactly_in_step_with_the_table(backend, make_listing):
    listings = [make_listing(title=f"Stage lights {n}") for n in range(5)]
    _save(listings[0], title="Smoke machine")
    _save(listings[1], status=PAUSED, view_count=9)
    db.session.delete(listings[2])
    db.session.commit()

    if backend == "sqlite":
        # Compares every indexed row with the listings table; raises if they differ.
        db.session.execute(sa.text("INSERT INTO listings_fts (listings_fts, rank) VALUES ('integrity-check', 1)"))
        assert db.session.scalar(sa.text("SELECT count(*) FROM listings_fts_docsize")) == 4
    assert found(q="stage lights") == ["Stage lights 4", "Stage lights 3"]


def test_listings_already_there_are_indexed_by_the_migration(backend, _tmpdir):
    """Upgrading a database that has listings (0001 -> 0002) makes them searchable."""
    from flask_migrate import downgrade, upgrade

    with scratch_database(backend, _tmpdir, "search") as url, create_app(_overrides(url, _tmpdir)).app_context():
        upgrade(revision="0001")
        now = utcnow()
        with db.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO users (id, email, display_name, password_hash, is_moderator, is_suspended,"
                " session_generation, created_at) VALUES (1, 'old@example.test', 'Old', 'x', false, false, 0, :now)"
            ), {"now": now})
            conn.execute(sa.text(
                "INSERT INTO listings (seller_id, title, category, description, city, area, price, price_unit,"
                " deposit, status, view_count, favourite_count, created_at, updated_at) VALUES"
                " (1, 'Vintage gramophone', 'other', 'Plays 78s.', 'Kochi', 'Fort', 900, 'day', 0, 'live', 0, 0,"
                " :now, :now)"
            ), {"now": now})
        upgrade()
        try:
            assert [listing.title for listing in search_listings(q="gramophone").items] == ["Vintage gramophone"]
            assert search_listings(q="kochi").total == 1
            db.session.remove()
            # And the way back down works too.
            downgrade(revision="0001")
            upgrade()
            assert search_listings(q="gramophone").total == 1
        finally:
            db.session.remove()
            db.engine.dispose()


# ---------------------------------------------------------------------------------------------
# Filters, sorts, pages

def test_category_filter(shop):
    assert found(category="furniture") == ["Golden chiavari chairs", "Round banquet tables"]
    assert found(category="furniture", q="banquet") == ["Round banquet tables"]


def test_city_filter_ignores_case_and_spaces(shop):
    assert found(city="pune") == found(city="  PUNE ") == ["Fairy lights, warm white", "Golden chiavari chairs"]
    assert found(city="Pun") == []


@pytest.mark.parametrize("price_min, price_max, expected", [
    ("1000", None, ["Banquet hall with lawn", "DJ console and speakers", "Marigold flower arch"]),
    (None, "300", ["Golden chiavari chairs", "Round banquet tables"]),
    ("300", "6500", ["Fairy lights, warm white", "Round banquet tables", "Marigold flower arch"]),
    ("6500", "300", ["Fairy lights, warm white", "Round banquet tables", "Marigold flower arch"]),
    ("₹ 6,500", "6,500", ["Marigold flower arch"]),
    ("0", "44", []),
])
def test_price_range(shop, price_min, price_max, expected):
    assert found(price_min=price_min, price_max=price_max) == expected


def test_filters_combine(shop):
    assert found(q="chairs", city="mumbai", category="furniture", price_max="500") == ["Round banquet tables"]
    assert found(q="chairs", city="pune", category="furniture", price_min="100") == []


def test_newest_first_without_keywords(shop):
    assert found() == list(shop)


@pytest.mark.parametrize("sort, expected", [
    ("price_asc", ["Golden chiavari chairs", "Round banquet tables", "Fairy lights, warm white",
                   "Marigold flower arch", "DJ console and speakers", "Banquet hall with lawn"]),
    ("price_desc", ["Banquet hall with lawn", "DJ console and speakers", "Marigold flower arch",
                    "Fairy lights, warm white", "Round banquet tables", "Golden chiavari chairs"]),
    ("newest", None),
    ("relevance", None),  # without keywords there is nothing to rank: newest first
    ("cheapest", None),
    ("", None),
])
def test_sorts(shop, sort, expected):
    assert found(sort=sort) == (expected or list(shop))


def test_sorting_keyword_results_by_price(shop):
    assert found(q="chairs", sort="price_desc") == ["Round banquet tables", "Golden chiavari chairs"]
    assert found(q="chairs", sort="price_asc") == ["Golden chiavari chairs", "Round banquet tables"]


def test_pages_cover_every_result_once(shop):
    pages = [search_listings(page=n) for n in (1, 2)]
    assert [p.total for p in pages] == [6, 6]
    assert [p.pages for p in pages] == [2, 2]
    assert [listing.title for p in pages for listing in p.items] == list(shop)


@pytest.mark.parametrize("page, shown", [
    ("2", 2), ("1", 1), ("0", 1), ("-5", 1), ("abc", 1), ("", 1), ("2.5", 1), ("99", 2),
    (str(10**20), 2), ("9" * 5000, 2), ("٢", 1),
])
def test_page_numbers_are_clamped(shop, page, shown):
    results = search_listings(page=page)
    assert results.number == shown
    assert len(results.items) == PAGE_SIZE


@pytest.mark.parametrize("q", ["", "banquet"])
def test_a_page_far_past_the_end_shows_the_last_page(shop, q):
    # (page - 1) * per_page must stay a valid OFFSET: PostgreSQL refuses one beyond bigint.
    results = search_listings(q=q, page="9" * 20, per_page=100)
    assert results.number == results.pages


def test_pager_links_keep_the_filters(client, shop):
    page = client.get("/search?category=furniture&city=Pune&price_max=99999").get_data(as_text=True)
    assert 'class="pager"' not in page  # one page only

    page = client.get("/search?q=&sort=price_asc&page=1").get_data(as_text=True)
    assert 'href="/search?sort=price_asc&amp;page=2" hx-get="/search?sort=price_asc&amp;page=2"' in page
    assert 'rel="next"' in page and 'rel="prev"' not in page
    assert '<a href="/search?sort=price_asc" hx-get="/search?sort=price_asc"' in page

    second = client.get("/search?sort=price_asc&page=2")
    assert titles_on(second) == ["Marigold flower arch", "DJ console and speakers", "Banquet hall with lawn"]
    assert 'rel="prev"' in second.get_data(as_text=True)


def test_the_page_window_skips_far_pages(make_listing):
    for n in range(PAGE_SIZE * 9):
        make_listing(title=f"Speaker {n}")

    results = search_listings(q="speaker", page=5)
    assert results.pages == 9
    assert results.window() == [1, None, 3, 4, 5, 6, 7, None, 9]
    assert search_listings(page=1).window() == [1, 2, 3, None, 9]


@pytest.mark.parametrize("params, shown", [
    ({"price_min": "abc", "price_max": "-5"}, PAGE_SIZE),
    ({"price_min": "1e99", "price_max": "99999999999999999999999"}, PAGE_SIZE),
    ({"page": "-5"}, PAGE_SIZE), ({"page": str(10**20)}, PAGE_SIZE), ({"page": "1" * 10_000}, PAGE_SIZE),
    ({"sort": "bogus"}, PAGE_SIZE), ({"category": "bogus"}, PAGE_SIZE), ({"category": "VENUES"}, PAGE_SIZE),
    ({"city": "x" * 10_000}, 0), ({"q": "chairs", "q2": "x", "sort": "1; DROP"}, 2),
    ({"price_min": "٥", "price_max": "¹²"}, PAGE_SIZE),
])
def test_bad_parameters_are_ignored_or_clamped(client, shop, params, shown):
    response = client.get("/search", query_string=params)
    assert response.status_code == 200
    assert len(titles_on(response)) == shown


def test_nul_bytes_in_any_parameter_are_cleaned_by_the_search(shop):
    results = search_listings(q="\x00", city="\x00", price_min="\x00", sort="\x00", category="\x00", page="\x00")
    assert results.total == len(shop) and results.number == 1
    assert [listing.title for listing in search_listings(city="Pu\x00ne", per_page=100).items] == []


# ---------------------------------------------------------------------------------------------
# The page

def test_the_page_shows_the_count_the_active_filters_and_a_form_that_works_without_javascript(client, shop):
    response = client.get("/search?q=chairs&city=pune&price_min=10&price_max=500&category=furniture&sort=price_desc")
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    assert "<title>“chairs” · Furniture in Pune · RentPe</title>" in page
    assert titles_on(response) == ["Golden chiavari chairs"]
    assert re.search(r"<strong>1</strong> listing\s", page)
    assert '<form id="search-form" class="search-filters card" action="/search" method="get"' in page
    assert 'value="chairs"' in page and 'value="pune"' in page
    assert '<option value="furniture" selected>' in page and '<option value="price_desc" selected>' in page
    # Each chip removes its own filter and keeps the others.
    assert 'href="/search?category=furniture&amp;city=pune&amp;price_min=10&amp;price_max=500&amp;sort=price_desc"' in page
    assert 'href="/search?q=chairs&amp;category=furniture&amp;price_min=10&amp;price_max=500&amp;sort=price_desc"' in page
    assert "₹10–₹500" in page and "in pune" in page


def test_the_empty_state(client, shop):
    page = client.get("/search?q=helicopter").get_data(as_text=True)
    assert "No listings found" in page
    assert "Nothing matches these filters" in page
    assert '<a class="button" href="/search">See all listings</a>' in page


def test_the_count_reads_well(client, make_listing):
    assert "No listings are live right now" in client.get("/search").get_data(as_text=True)
    make_listing()
    assert re.search(r"<strong>1</strong> listing\s", client.get("/search").get_data(as_text=True))
    for _ in range(PAGE_SIZE):
        make_listing()
    page = client.get("/search").get_data(as_text=True)
    assert re.search(r"<strong>4</strong> listings\s", page) and "1–3 shown" in page


def test_the_filter_form_updates_results_in_place_with_htmx(client, shop):
    page = client.get("/search").get_data(as_text=True)
    form = re.search(r'<form id="search-form".*?>', page, re.S).group(0)
    assert 'hx-get="/search"' in form
    assert 'hx-trigger="submit, change changed, keyup changed delay:400ms from:#search-q"' in form
    assert 'hx-target="#search-results"' in form and 'hx-swap="outerHTML"' in form
    assert 'hx-push-url="true"' in form
    assert page.count('id="search-results"') == 1


def test_htmx_requests_get_only_the_results(client, shop):
    response = client.get("/search?q=chairs&category=&city=&price_min=abc&sort=&page=1",
                          headers={"HX-Request": "true", "HX-Request-Type": "partial"})
    body = response.get_data(as_text=True)

    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="search-results"')
    assert "<html" not in body and "search-form" not in body
    assert titles_on(response) == ["Golden chiavari chairs", "Round banquet tables"]
    # What goes into the address bar: the same search, without the empty and ignored fields.
    assert response.headers["HX-Push-Url"] == "/search?q=chairs"
    assert {"HX-Request", "HX-History-Restore-Request"} <= set(response.vary)


@pytest.mark.parametrize("headers", [
    {},
    # htmx 4 restores history (the back button) by re-fetching the URL and swapping the whole body.
    {"HX-Request": "true", "HX-History-Restore-Request": "true", "HX-Request-Type": "full"},
    {"HX-Request": "true", "HX-Request-Type": "full"},
])
def test_plain_visits_and_history_restores_get_the_whole_page(client, shop, headers):
    response = client.get("/search?q=chairs", headers=headers)
    body = response.get_data(as_text=True)

    assert body.lstrip().lower().startswith("<!doctype html>")
    assert 'id="search-form"' in body and titles_on(response) == ["Golden chiavari chairs", "Round banquet tables"]
    assert "HX-Push-Url" not in response.headers
    assert "HX-Request" in response.vary


def test_pager_links_work_with_and_without_htmx(client, shop):
    plain = client.get("/search?page=2")
    swapped = client.get("/search?page=2", headers={"HX-Request": "true"})

    assert titles_on(plain) == titles_on(swapped) == list(shop)[PAGE_SIZE:]
    assert swapped.headers["HX-Push-Url"] == "/search?page=2"
    assert 'hx-target="#search-results" hx-push-url="true"' in swapped.get_data(as_text=True)


def test_the_home_page_categories_lead_to_filtered_search(client, shop):
    home = client.get("/").get_data(as_text=True)
    assert 'href="/search?category=lighting"' in home

    response = client.get("/search?category=lighting")
    assert titles_on(response) == ["Fairy lights, warm white"]
    assert "<h1>Lighting</h1>" in response.get_data(as_text=True)


def test_the_city_field_suggests_cities_with_live_listings(client, shop, make_listing):
    make_listing(city="Jaipur", status=PAUSED)
    page = client.get("/search").get_data(as_text=True)
    datalist = re.search(r'<datalist id="search-cities">(.*?)</datalist>', page, re.S).group(1)

    assert re.findall(r'<option value="([^"]+)">', datalist) == ["Mumbai", "Pune", "Bengaluru", "Delhi"]


def test_autogenerate_leaves_the_hand_made_search_index_alone(app):
    """`flask db migrate` must not offer to drop the FTS tables, the tsvector columns or their
    indexes (listings' and messages')."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from rentpe.models import include_in_autogenerate

    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_in_autogenerate})
        assert compare_metadata(context, db.metadata) == []
