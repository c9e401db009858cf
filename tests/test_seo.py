"""Listings that travel: link-preview tags, descriptions, canonical URLs, JSON-LD, robots.txt, the
sitemap and the Share box; and none of it on private pages."""
import io
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from rentpe.listings import photos as photo_files
from rentpe.listings import services
from rentpe.listings.models import DRAFT, HELD, LIVE, PAUSED, REMOVED, SUSPENDED, TAKEN_DOWN
from tests.board_helpers import make_board
from tests.helpers import fetch, jpeg

BASE = "http://localhost"
SITEMAP_NS = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
HOSTILE = 'Hall </script><script>alert(1)</script> "quoted" & <b>bold</b> \u2028 \'s'


class Head(HTMLParser):
    """The head's meta and link tags and every script element's text, as a browser parses them."""

    def __init__(self, page):
        super().__init__(convert_charrefs=True)
        self.meta, self.links, self.scripts, self.elements = {}, {}, [], []
        self._script = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.elements.append((tag, attrs))
        if tag == "meta":
            key = attrs.get("property") or attrs.get("name")
            if key:
                self.meta.setdefault(key, []).append(attrs.get("content"))
        elif tag == "link" and attrs.get("rel"):
            self.links.setdefault(attrs["rel"], []).append(attrs.get("href"))
        elif tag == "script":
            self._script = (attrs, [])

    def handle_data(self, data):
        if self._script is not None:
            self._script[1].append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script[0], "".join(self._script[1])))
            self._script = None

    def one(self, key):
        values = self.meta.get(key, [])
        assert len(values) == 1, (key, values)
        return values[0]

    def link(self, rel):
        values = self.links.get(rel, [])
        assert len(values) == 1, (rel, values)
        return values[0]

    def json_ld(self):
        return [json.loads(text) for attrs, text in self.scripts if attrs.get("type") == "application/ld+json"]

    @property
    def inline_scripts(self):
        return [text for attrs, text in self.scripts if "src" not in attrs and attrs.get("type") != "application/ld+json"]

    @property
    def preview_tags(self):
        return {key for key in self.meta if key.startswith(("og:", "twitter:", "product:"))}


def head_of(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    return Head(response.get_data(as_text=True))


@pytest.fixture
def app_overrides(tmp_path):
    return {"UPLOAD_FOLDER": str(tmp_path / "uploads")}


@pytest.fixture
def hall(make_listing, seller):
    listing = make_listing(seller=seller, title="Sunlit banquet hall", city="Pune", area="Baner", price=125000,
                           price_unit="day", description="A bright hall.\n\nSeats   200 guests, with parking.")
    services.add_photos(listing, [jpeg((1600, 1200)), jpeg((800, 600), color=(10, 200, 10))])
    return listing


# Listing pages --------------------------------------------------------------------------------

def test_a_live_listing_previews_its_first_photo_title_price_and_city(client, hall):
    head = head_of(client, f"/listings/{hall.id}")
    url = f"{BASE}/listings/{hall.id}"
    cover = hall.photos[0]

    assert head.one("og:title") == head.one("twitter:title") == "Sunlit banquet hall"
    assert head.one("og:type") == "product" and head.one("og:url") == url and head.link("canonical") == url
    description = head.one("description")
    assert description.startswith("₹1,25,000 per day · Venues in Baner, Pune. A bright hall. Seats 200 guests")
    assert head.one("og:description") == head.one("twitter:description") == description
    assert head.one("og:image") == head.one("twitter:image") == f"{BASE}/photos/preview/{cover.key}"
    assert (head.one("og:image:width"), head.one("og:image:height")) == ("1200", "630")
    assert head.one("twitter:card") == "summary_large_image"
    assert (head.one("product:price:amount"), head.one("product:price:currency")) == ("125000", "INR")
    assert "robots" not in head.meta

    image = fetch(client, f"/photos/preview/{cover.key}")
    assert image.status_code == 200 and image.mimetype == "image/jpeg"
    with Image.open(io.BytesIO(image.data)) as preview:
        assert (preview.format, preview.size) == ("JPEG", (1200, 630))
        assert preview.getpixel((600, 315))[0] > 150  # the first photo (orange), not the second (green)


def test_a_listing_carries_product_and_offer_json_ld(client, hall):
    (data,) = head_of(client, f"/listings/{hall.id}").json_ld()
    url = f"{BASE}/listings/{hall.id}"
    assert data["@context"] == "https://schema.org" and data["@type"] == "Product"
    assert (data["name"], data["url"], data["category"]) == ("Sunlit banquet hall", url, "Venues")
    assert data["description"] == "A bright hall. Seats 200 guests, with parking."
    assert data["image"][0] == f"{BASE}/photos/preview/{hall.photos[0].key}"
    offer = data["offers"]
    assert offer["@type"] == "Offer" and offer["url"] == url
    assert (offer["price"], offer["priceCurrency"]) == (125000, "INR")
    assert offer["availability"] == "https://schema.org/InStock"
    assert offer["priceSpecification"]["unitCode"] == "DAY"
    assert offer["seller"]["url"] == f"{BASE}/sellers/{hall.seller_id}"


def test_a_hostile_title_stays_text_in_tags_and_valid_json(client, make_listing, seller):
    listing = make_listing(seller=seller, title=HOSTILE[:120], description=HOSTILE + " </SCRIPT > <!-- -->")
    response = client.get(f"/listings/{listing.id}")
    page = response.get_data(as_text=True)
    head = Head(page)

    assert head.one("og:title") == HOSTILE[:120]
    (data,) = head.json_ld()
    assert data["name"] == HOSTILE[:120] and data["description"].startswith(HOSTILE.replace("\u2028", " ").split()[0])
    assert head.inline_scripts == [], "nothing in the listing opened a script element"
    ld_block = page.split('<script type="application/ld+json">', 1)[1].split("</script>", 1)[0]
    assert "<" not in ld_block and ">" not in ld_block and "&" not in ld_block.replace("\\u0026", "")
    assert not any(tag == "b" for tag, _ in head.elements)


def test_availability_follows_the_listings_state(client, make_client, seller, moderator, make_listing):
    owner = make_client()
    owner.login(seller)
    mod = make_client()
    mod.login(moderator)
    cases = {PAUSED: ("OutOfStock", owner), DRAFT: ("OutOfStock", owner), HELD: ("OutOfStock", owner),
             SUSPENDED: ("OutOfStock", owner), TAKEN_DOWN: ("Discontinued", owner), REMOVED: ("Discontinued", mod)}
    for status, (availability, viewer) in cases.items():
        listing = make_listing(seller=seller, status=status)
        head = head_of(viewer, f"/listings/{listing.id}")
        (data,) = head.json_ld()
        assert data["offers"]["availability"] == "https://schema.org/" + availability, status
        # Not public: only its seller (or a moderator) sees it, so no preview and never indexed.
        assert head.one("robots") == "noindex" and head.preview_tags == set(), status
        assert "canonical" not in head.links and "description" not in head.meta, status
        assert 'data-share' not in viewer.get(f"/listings/{listing.id}").get_data(as_text=True)
        # A visitor is told it is not available (410 once removed for good); a draft is a plain 404.
        assert client.get(f"/listings/{listing.id}").status_code == (410 if status == REMOVED else 404)


def test_a_listing_without_photos_previews_the_site_image(client, listing):
    head = head_of(client, f"/listings/{listing.id}")
    assert head.one("og:image") == f"{BASE}/static/img/preview.jpg"
    assert "image" not in head.json_ld()[0]
    image = fetch(client, "/static/img/preview.jpg")
    with Image.open(io.BytesIO(image.data)) as preview:
        assert preview.size == (1200, 630)


def test_a_photo_stored_before_previews_gets_one_on_first_request(app, client, hall):
    key = hall.photos[0].key
    path = photo_files.path_for(key, "preview")
    path.unlink()
    image = fetch(client, f"/photos/preview/{key}")
    assert image.status_code == 200 and path.exists()
    with Image.open(io.BytesIO(image.data)) as preview:
        assert preview.size == (1200, 630)


def test_a_paused_listings_preview_is_not_public(client, hall):
    key = hall.photos[0].key
    services.pause_listing(hall)
    assert fetch(client, f"/photos/preview/{key}").status_code == 404
    assert fetch(client, f"/photos/preview/{'0' * 32}").status_code == 404


# Sharing --------------------------------------------------------------------------------------

def test_the_share_box_works_as_plain_links(client, hall):
    page = client.get(f"/listings/{hall.id}").get_data(as_text=True)
    head = Head(page)
    links = {attrs.get("href") for tag, attrs in head.elements if tag == "a"}
    whatsapp = next(href for href in links if href and href.startswith("https://wa.me/"))
    text = parse_qs(urlsplit(whatsapp).query)["text"][0]
    assert text == f"Sunlit banquet hall · ₹1,25,000 per day · Pune {BASE}/listings/{hall.id}"
    copy = [attrs for tag, attrs in head.elements if tag == "a" and "data-share-copy" in attrs]
    assert [attrs["href"] for attrs in copy] == [f"{BASE}/listings/{hall.id}"]
    native = [attrs for tag, attrs in head.elements if tag == "button" and "data-share-native" in attrs]
    assert len(native) == 1 and "hidden" in native[0], "the share-sheet button waits for JavaScript"
    assert any(attrs.get("src") == "/static/js/share.js" for attrs, _ in head.scripts)


# Shop, home, search, log-in ---------------------------------------------------------------------

def test_a_shop_previews_its_name_and_city(client, seller, hall):
    profile = seller.seller_profile
    head = head_of(client, f"/sellers/{seller.id}")
    url = f"{BASE}/sellers/{seller.id}"
    assert head.one("og:title") == f"{profile.shop_name} · {profile.city}"
    assert head.link("canonical") == head.one("og:url") == url
    assert profile.shop_name in head.one("description") and profile.city in head.one("description")
    assert head.one("og:image") == f"{BASE}/photos/preview/{hall.photos[0].key}"
    assert "robots" not in head.meta


def test_home_and_log_in_carry_descriptions_and_previews(client):
    for url, canonical in (("/", f"{BASE}/"), ("/login?next=/saved", f"{BASE}/login"), ("/signup", f"{BASE}/signup")):
        head = head_of(client, url)
        assert 50 <= len(head.one("description")) <= 160, url
        assert head.link("canonical") == head.one("og:url") == canonical
        assert head.one("og:title") and head.one("og:image") and head.one("twitter:card")
        assert "robots" not in head.meta, url


@pytest.fixture
def three_pages(app, make_listing, seller):
    app.config["SEARCH_PAGE_SIZE"] = 2
    for n in range(5):
        make_listing(seller=seller, city="Pune", title=f"Lawn {n}")
    make_listing(seller=seller, city="Mumbai", category="furniture", title="Chairs")


def test_search_pages_canonicalise_and_link_prev_next(client, three_pages):
    head = head_of(client, "/search?city=pune&sort=price_asc&page=2&utm_source=x")
    assert head.link("canonical") == f"{BASE}/search?city=Pune&page=2"
    assert head.link("prev") == f"{BASE}/search?city=Pune"
    assert head.link("next") == f"{BASE}/search?city=Pune&page=3"
    assert "robots" not in head.meta and head.one("og:url") == head.link("canonical")
    assert head.one("description").startswith("Venues, furniture, decoration, lighting and sound in Pune: 5 listings")

    last = head_of(client, "/search?city=Pune&page=99")
    assert last.link("canonical") == f"{BASE}/search?city=Pune&page=3" and "next" not in last.links

    first = head_of(client, "/search?category=furniture")
    assert first.link("canonical") == f"{BASE}/search?category=furniture"
    assert "prev" not in first.links and "next" not in first.links
    assert first.one("description").startswith("Furniture: 1 listing to rent")


def test_keyword_and_price_searches_and_empty_results_are_not_indexed(client, three_pages):
    head = head_of(client, "/search?q=lawn&sort=newest&page=2")
    assert head.one("robots") == "noindex, follow"
    assert head.link("canonical") == f"{BASE}/search?q=lawn&page=2"
    assert head_of(client, "/search?price_max=100").one("robots") == "noindex, follow"
    assert head_of(client, "/search?city=Nowhere").one("robots") == "noindex, follow"


def test_the_search_fragment_has_no_head(client, three_pages):
    fragment = client.get("/search?city=Pune", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "og:" not in fragment and "canonical" not in fragment


# Private pages ----------------------------------------------------------------------------------

PRIVATE_PAGES = ["/inbox", "/saved", "/account", "/dashboard", "/dashboard/inbox", "/boards/new",
                 "/boards/invitations", "/listings/new"]


def assert_private(head, url):
    assert head.one("robots") == "noindex", url
    assert head.preview_tags == set(), url
    assert "description" not in head.meta and "canonical" not in head.links, url
    assert head.json_ld() == [], url


def test_private_pages_say_noindex_and_carry_no_preview(seller_client, make_client, moderator, listing):
    for url in [*PRIVATE_PAGES, f"/listings/{listing.id}/edit"]:
        assert_private(head_of(seller_client, url), url)
    mod = make_client()
    mod.login(moderator)
    for url in ("/admin/reports", "/admin/audit", "/admin/flagged", f"/admin/users/{listing.seller_id}"):
        assert_private(head_of(mod, url), url)


def test_a_conversation_and_a_board_say_noindex(buyer_client, buyer, listing):
    response = buyer_client.post(f"/listings/{listing.id}/contact", {"body": "Is it free on the 12th?"})
    assert response.status_code in (302, 303)
    assert_private(head_of(buyer_client, response.headers["Location"]), "conversation")
    board_id = make_board(buyer, title="Riya's wedding")
    for url in (f"/boards/{board_id}", f"/boards/{board_id}/manage"):
        assert_private(head_of(buyer_client, url), url)


def test_error_pages_say_noindex(client):
    assert_private(head_of(client, "/listings/999999", status=404), "404")


# robots.txt and the sitemap -------------------------------------------------------------------

def test_robots_txt_keeps_private_paths_out_and_names_the_sitemap(client, listing):
    response = client.get("/robots.txt")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    lines = response.get_data(as_text=True).splitlines()
    disallowed = {line.split(":", 1)[1].strip() for line in lines if line.startswith("Disallow:")}
    assert lines[0] == "User-agent: *"
    assert f"Sitemap: {BASE}/sitemap.xml" in lines
    for path in ("/inbox", "/conversations/1", "/boards/2", "/admin/reports", "/dashboard", "/account", "/saved",
                 f"/listings/{listing.id}/edit", "/listings/new", "/events", "/sell", "/logout"):
        assert any(_robots_match(rule, path) for rule in disallowed), path
    for path in ("/", "/search?city=Pune", f"/listings/{listing.id}", f"/sellers/{listing.seller_id}", "/login",
                 "/photos/preview/abc", "/sitemap.xml"):
        assert not any(_robots_match(rule, path) for rule in disallowed), path


def _robots_match(rule, path):
    """Google's rule matching: a prefix, where `*` matches any run of characters and a final `$`
    the end of the path."""
    anchored = rule.endswith("$")
    pattern = ".*".join(re.escape(part) for part in rule.rstrip("$").split("*")) + ("$" if anchored else "")
    return re.match(pattern, path) is not None


def sitemap_urls(client, url):
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "application/xml"
    root = ET.fromstring(response.data)
    return [(e.find("s:loc", SITEMAP_NS).text, e.find("s:lastmod", SITEMAP_NS).text) for e in root]


def test_the_sitemap_lists_live_listings_and_shops_only(client, make_listing, make_seller, make_user):
    good, quiet, banned = make_seller(), make_seller(), make_seller(is_suspended=True)
    live = [make_listing(seller=good), make_listing(seller=good)]
    for status in (DRAFT, PAUSED, REMOVED, HELD, SUSPENDED, TAKEN_DOWN):
        make_listing(seller=good, status=status)
        make_listing(seller=quiet, status=status)
    make_listing(seller=banned, status=LIVE)  # a suspended seller's listing that was never held

    index = sitemap_urls(client, "/sitemap.xml")
    assert [loc for loc, _ in index] == [f"{BASE}/sitemaps/listings-1.xml", f"{BASE}/sitemaps/shops-1.xml"]
    listings = sitemap_urls(client, "/sitemaps/listings-1.xml")
    assert listings == [(f"{BASE}/listings/{item.id}", _w3c(item.updated_at)) for item in live]
    shops = sitemap_urls(client, "/sitemaps/shops-1.xml")
    assert shops == [(f"{BASE}/sellers/{good.id}", _w3c(max(item.updated_at for item in live)))]
    assert dict(index)[f"{BASE}/sitemaps/listings-1.xml"] == _w3c(max(item.updated_at for item in live))


def _w3c(moment):
    return moment.replace(microsecond=0).isoformat() + "Z"


def test_the_sitemap_is_cut_into_files_of_the_configured_size(app, client, make_listing, seller):
    app.config["SITEMAP_URLS_PER_FILE"] = 2
    items = [make_listing(seller=seller) for _ in range(5)]
    index = [loc for loc, _ in sitemap_urls(client, "/sitemap.xml")]
    assert index == [f"{BASE}/sitemaps/listings-{n}.xml" for n in (1, 2, 3)] + [f"{BASE}/sitemaps/shops-1.xml"]
    seen = [loc for n in (1, 2, 3) for loc, _ in sitemap_urls(client, f"/sitemaps/listings-{n}.xml")]
    assert seen == [f"{BASE}/listings/{item.id}" for item in items]
    for missing in ("/sitemaps/listings-4.xml", "/sitemaps/listings-0.xml", "/sitemaps/shops-2.xml",
                    "/sitemaps/other-1.xml", "/sitemaps/listings-99999999999999999999.xml"):
        assert client.get(missing).status_code == 404, missing


def test_an_empty_catalogue_has_an_empty_sitemap(client):
    assert sitemap_urls(client, "/sitemap.xml") == []
    assert client.get("/sitemaps/listings-1.xml").status_code == 404
