"""What link previews and search engines see: descriptions, canonical URLs, robots rules, the
schema.org data of a listing, and which listings and shops the sitemap names.

Public pages (home, search, a live listing, a shop, log-in and sign-up) fill the `meta` block of
templates/base.html through the macros of templates/_meta.html; every other page keeps the
block's default, `noindex`, and no preview tags. Absolute URLs are built from the request's scheme
and host (`url_for(..., _external=True)`): behind nginx, the `server_name` it forwards as `Host`
and, with PROXY_FIX_HOPS, its `X-Forwarded-Proto` (see README, Operations).
"""
from dataclasses import dataclass

from flask import url_for
from sqlalchemy import func, select

from ..accounts.models import SellerProfile, User
from ..extensions import db
from ..templating import rupees
from .models import CATEGORIES, LIVE, REMOVED, TAKEN_DOWN, Listing
from .photos import PREVIEW

# Search engines show about 155 characters of a description; link previews fewer.
DESCRIPTION_CHARS = 155
# The sitemap protocol's limit per file (and 50 MB, which 50,000 of our URLs stay far below).
SITEMAP_URLS_PER_FILE = 50_000

SCHEMA = "https://schema.org/"
# A listing's state as schema.org availability: only a live listing can be rented now; a deleted
# or taken-down one never again; a draft, paused or held one not now (only its seller and
# moderators see those pages, which are never indexed).
AVAILABILITY = {LIVE: "InStock", REMOVED: "Discontinued", TAKEN_DOWN: "Discontinued"}
# UN/CEFACT unit codes of the rental price's unit; "per event" has none and is said in words.
UNIT_CODES = {"day": "DAY", "hour": "HUR"}
# GoodRelations' business function for renting something out, which schema.org's Offer reuses.
LEASE_OUT = "http://purl.org/goodrelations/v1#LeaseOut"


def summary(text, limit=DESCRIPTION_CHARS):
    """One line of at most `limit` characters: whitespace collapsed, cut at a word with an ellipsis."""
    text = " ".join(str(text or "").split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:-–—") + "…"


def preview_image_url(listing):
    cover = listing.cover
    if cover is None:
        return None
    return url_for("listings.photo", size=PREVIEW, key=cover.key, _external=True)


def listing_json_ld(listing):
    """schema.org Product with its rental Offer; the template serialises it with `tojson`, which
    escapes <, >, & and ' so no title or description can close the script element."""
    url = url_for("listings.show", listing_id=listing.id, _external=True)
    availability = AVAILABILITY.get(listing.status, "OutOfStock")
    price = {
        "@type": "UnitPriceSpecification",
        "price": listing.price,
        "priceCurrency": "INR",
    }
    if listing.price_unit in UNIT_CODES:
        price["unitCode"] = UNIT_CODES[listing.price_unit]
    else:
        price["unitText"] = listing.price_unit_label
    offer = {
        "@type": "Offer",
        "url": url,
        "price": listing.price,
        "priceCurrency": "INR",
        "priceSpecification": price,
        "availability": SCHEMA + availability,
        "businessFunction": LEASE_OUT,
        "areaServed": {"@type": "City", "name": listing.city},
    }
    profile = listing.seller.seller_profile
    if profile is not None:
        offer["seller"] = {
            "@type": "Organization",
            "name": profile.shop_name,
            "url": url_for("listings.seller", user_id=listing.seller_id, _external=True),
        }
    data = {
        "@context": "https://schema.org",
        "@type": "Product",
        "@id": url + "#product",
        "name": listing.title,
        "description": summary(listing.description, 5000),
        "category": listing.category_label,
        "url": url,
        "sku": f"listing-{listing.id}",
        "offers": offer,
    }
    if listing.photos:
        data["image"] = [preview_image_url(listing)] + [
            url_for("listings.photo", size="large", key=photo.key, _external=True) for photo in listing.photos
        ]
    return data


def listing_description(listing):
    """Price with its unit and where, first (what a preview shows), then the listing's own words."""
    where = f"{listing.area}, {listing.city}" if listing.area else listing.city
    head = f"{rupees(listing.price)} {listing.price_unit_label} · {listing.category_label} in {where}."
    return summary(f"{head} {listing.description}")


# ---------------------------------------------------------------------------------------------
# Search pages

@dataclass(frozen=True)
class SearchMeta:
    canonical: str
    robots: str | None  # None: indexable
    prev: str | None
    next: str | None
    description: str
    label: str  # "Venues in Pune"


def search_meta(results, known_cities):
    """Canonical URL, robots rule and prev/next of a search page.

    A category and a city are landing pages ("Venues in Pune"): indexable, canonical with those two
    and the page, whatever the sort (the same listings in another order) and with the city spelt as
    the listings spell it. Keywords and prices are a visitor's own searches: `noindex, follow`
    (search engines ask not to index internal search results, but may follow them to listings),
    canonical with every filter kept. A page without results is not indexed either.
    """
    query = results.query
    city = query.city
    if city:
        city = next((known for known in known_cities if known.lower() == city.lower()), city)
    personal = bool(query.q) or query.price_min is not None or query.price_max is not None

    def page_url(number):
        args = query.url_args(page=number, city=city)
        args.pop("sort", None)
        if not personal:
            args = {key: value for key, value in args.items() if key in ("category", "city", "page")}
        return url_for("listings.search", _external=True, **args)

    robots = "noindex, follow" if personal or not results.total else None
    label = _search_label(query.category, city)
    if results.total:
        count = f"{results.total:,} listing{'' if results.total == 1 else 's'}"
        description = f"{label}: {count} to rent for weddings, birthdays and every event, from local sellers on RentPe."
    else:
        description = f"{label} on RentPe, the rental marketplace for events."
    return SearchMeta(
        canonical=page_url(results.number),
        robots=robots,
        prev=page_url(results.number - 1) if results.has_previous else None,
        next=page_url(results.number + 1) if results.has_next else None,
        description=summary(description),
        label=label,
    )


def _search_label(category, city):
    what = CATEGORIES[category] if category else "Venues, furniture, decoration, lighting and sound"
    return f"{what} in {city}" if city else what


# ---------------------------------------------------------------------------------------------
# The sitemap: live listings of sellers in good standing, and their shops

def _live_listings():
    return (
        select(Listing.id, Listing.updated_at, Listing.seller_id)
        .join(User, User.id == Listing.seller_id)
        .where(Listing.status == LIVE, User.is_suspended.is_(False))
    )


def _shops():
    """Shops of sellers in good standing with at least one live listing, with their newest change."""
    live = _live_listings().subquery()
    return (
        select(SellerProfile.user_id.label("id"), func.max(live.c.updated_at).label("updated_at"))
        .join(live, live.c.seller_id == SellerProfile.user_id)
        .group_by(SellerProfile.user_id)
    )


def _chunks(rows, per_file):
    """[(file number, newest last-modified)] of `rows` (id, updated_at) cut into files by id."""
    rows = rows.subquery()
    numbered = select(
        rows.c.updated_at, (func.row_number().over(order_by=rows.c.id) - 1).label("n")
    ).subquery()
    number = (numbered.c.n // per_file).label("number")
    result = db.session.execute(
        select(number, func.max(numbered.c.updated_at)).group_by(number).order_by(number)
    ).all()
    return [(int(n) + 1, updated_at) for n, updated_at in result]


def sitemap_files(per_file=SITEMAP_URLS_PER_FILE):
    """What the sitemap index lists: ("listings" | "shops", file number, last modified)."""
    files = [("listings", n, modified) for n, modified in _chunks(_live_listings(), per_file)]
    files += [("shops", n, modified) for n, modified in _chunks(_shops(), per_file)]
    return files


def sitemap_entries(kind, number, per_file=SITEMAP_URLS_PER_FILE):
    """[(id, last modified)] of one sitemap file, in id order; empty past the last file."""
    rows = (_live_listings() if kind == "listings" else _shops()).subquery()
    return db.session.execute(
        select(rows.c.id, rows.c.updated_at).order_by(rows.c.id).offset((number - 1) * per_file).limit(per_file)
    ).all()
