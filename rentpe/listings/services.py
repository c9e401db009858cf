"""State changes for listings, their photos and favourites. Each function owns its transaction.

Status flow:  draft ──publish──▶ live ◀──pause/resume──▶ paused;  any of them ──delete──▶ removed.
A new listing is a draft unless the seller publishes it at once. Moving to the status a listing
already has is a no-op (a double click or a second tab changes nothing); any other move raises
`ListingStateError`. Status moves are conditional UPDATEs, so a pause racing a delete can't bring
a removed listing back.

Delete is a soft `removed`, not a row delete, because conversations (chat) and reports
(moderation) point at the listing and must still read "about: Banquet hall in Andheri" after the
seller deletes it, and moderators need the record. What a seller expects to disappear does: the
listing is gone for everyone (404, the seller included, and off their dashboard), its photos are
deleted with their files (the bulk of the storage, and the personal part: homes, faces), and it
leaves every buyer's saved list. Removed is final.

Photo files are written before the commit and deleted again if it fails; on removal they are
deleted after the commit. A crash in between can leave an orphan file, never a row without files.
"""
from sqlalchemy import delete, func, select, update

from .. import realtime
from ..database import insert_for
from ..extensions import db
from ..models_base import utcnow
from . import photos as photo_files
from .models import (
    BY_MODERATOR, CATEGORIES, DRAFT, HELD, LIVE, PAUSED, PRICE_UNITS, REMOVED, Favourite, Listing, ListingPhoto,
)
from .photos import PhotoError

__all__ = [
    "ListingError", "ListingStateError", "PhotoError", "create_listing", "update_listing", "publish_listing",
    "pause_listing", "resume_listing", "delete_listing", "add_photos", "remove_photo", "set_cover_photo",
    "set_favourite", "toggle_favourite", "record_view", "hold_listings_of", "release_listings_of",
]

# Largest price or deposit we accept: ₹1 crore, far above any rental and inside a 32-bit column.
MAX_AMOUNT = 10_000_000
MAX_CAPACITY = 100_000
EDITABLE = ("title", "category", "description", "city", "area", "price", "price_unit", "deposit", "capacity")


class ListingError(ValueError):
    """A rule of the domain was broken; the message is shown to the user."""


class ListingStateError(ListingError):
    """The listing's status doesn't allow that move (e.g. pausing a draft)."""


def normalise_city(city):
    """'navi mumbai ' -> 'Navi Mumbai': one spelling per city for filters. Keeps 'HSR'-style caps."""
    return " ".join(word[:1].upper() + word[1:] for word in (city or "").split())


def _apply(listing, fields):
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise TypeError(f"not listing fields: {', '.join(sorted(unknown))}")
    values = {name: fields.get(name, getattr(listing, name, None)) for name in EDITABLE}
    values["title"] = " ".join((values["title"] or "").split())
    values["description"] = (values["description"] or "").strip()
    values["city"] = normalise_city(values["city"])
    values["area"] = " ".join((values["area"] or "").split())
    values["deposit"] = values["deposit"] or 0
    if values["category"] != "venues":
        values["capacity"] = None
    _check(values)
    for name, value in values.items():
        setattr(listing, name, value)


def _check(values):
    if not values["title"] or not values["description"] or not values["city"]:
        raise ListingError("A listing needs a title, a description and a city.")
    if values["category"] not in CATEGORIES:
        raise ListingError("Choose one of the categories.")
    if values["price_unit"] not in PRICE_UNITS:
        raise ListingError("Choose how the price is counted.")
    for name in ("price", "deposit"):
        if not isinstance(values[name], int) or not 0 <= values[name] <= MAX_AMOUNT:
            raise ListingError(f"The {name} must be between ₹0 and ₹{MAX_AMOUNT:,}.")
    capacity = values["capacity"]
    if capacity is not None and (not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY):
        raise ListingError(f"Capacity must be between 1 and {MAX_CAPACITY:,} guests.")


def _prepare(uploads, already):
    """Check and re-encode every upload before anything is stored (one bad photo stores none)."""
    uploads = [u for u in uploads if photo_files.is_upload(u)]
    _check_room(already, len(uploads))
    return [photo_files.prepare_photo(upload) for upload in uploads]


def _check_room(already, adding):
    limit = photo_files.max_photos_per_listing()
    if already + adding > limit:
        room = max(limit - already, 0)
        more = f"you can add {room} more" if room else "remove one to add another"
        raise PhotoError(f"A listing can have at most {limit} photos; {more}.")


def _attach(listing, prepared, start):
    for offset, photo in enumerate(prepared):
        db.session.add(ListingPhoto(
            listing=listing, position=start + offset, key=photo.key, width=photo.width, height=photo.height,
        ))


def _commit_with_files(prepared):
    written = []
    try:
        for photo in prepared:
            written.append(photo.key)
            photo_files.write_files(photo)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        for key in written:
            photo_files.delete_files(key)
        raise


def create_listing(seller, *, photos=(), publish=False, **fields):
    """A new listing of `seller` (a draft, or live with `publish=True`), with up to 8 photos."""
    if not seller.is_seller:
        raise ListingError("Only sellers can create listings. Open your shop first.")
    prepared = _prepare(photos, already=0)
    listing = Listing(seller_id=seller.id, status=LIVE if publish else DRAFT)
    _apply(listing, fields)
    db.session.add(listing)
    _attach(listing, prepared, start=0)
    _commit_with_files(prepared)
    return listing


def update_listing(listing, *, publish=False, **fields):
    """Change the listing's details; its status stays, except that `publish` puts a draft live."""
    _apply(listing, fields)
    if publish and listing.status == DRAFT:
        listing.status = LIVE
    db.session.commit()
    return listing


def _move(listing, allowed_from, to, verb):
    """The seller moves their listing between draft, live and paused; never out of a moderator's
    pause or removal (the UPDATE's WHERE holds that against a moderator acting meanwhile too)."""
    if listing.is_held_by_moderator:
        raise ListingStateError(MODERATED_REFUSAL)
    if listing.status == to:
        return listing
    result = db.session.execute(
        update(Listing)
        .where(Listing.id == listing.id, Listing.status.in_(allowed_from))
        .values(status=to, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:
        record_totals_changed(listing.seller_id)
    db.session.commit()
    realtime.publish_committed()
    db.session.refresh(listing)
    if result.rowcount == 0 and listing.status != to:
        raise ListingStateError(f"A {listing.status_label.lower()} listing can't be {verb}.")
    return listing


def publish_listing(listing):
    """Draft → live."""
    return _move(listing, (DRAFT,), LIVE, "published")


def pause_listing(listing):
    """Live → paused: hidden from buyers, kept for the seller."""
    return _move(listing, (LIVE,), PAUSED, "paused")


def resume_listing(listing):
    """Paused → live."""
    return _move(listing, (PAUSED,), LIVE, "resumed")


MODERATED_REFUSAL = ("A moderator took this listing out of view, so only a moderator can put it back. "
                     "If you think that was a mistake, appeal the decision.")


# The seller's dashboard totals and tab counts changed (listings/events.py renders them anew): a
# durable event, so every open dashboard of the seller follows, a moderator's decision included.
TOTALS_CHANGED = "listings.totals"


def record_totals_changed(seller_id):
    """In the caller's transaction; the caller publishes after its commit."""
    realtime.record([seller_id], TOTALS_CHANGED, {})


def hold_for_moderation(listing_id, allowed_from, to, reason):
    """A moderator's pause or removal (`to` in BY_MODERATOR), in the caller's transaction (the one
    that writes the audit log). Photos and favourites stay, so a lifted listing comes back whole.
    False when the listing's status isn't in `allowed_from`."""
    return bool(db.session.execute(
        update(Listing).where(Listing.id == listing_id, Listing.status.in_(allowed_from))
        .values(status=to, moderation_reason=reason, updated_at=utcnow()).execution_options(synchronize_session=False)
    ).rowcount)


def lift_moderation(listing_id):
    """A moderator lifts their pause or removal, in the caller's transaction: the listing goes back
    to its seller as paused, to resume when they are ready. False if no moderator held it."""
    return bool(db.session.execute(
        update(Listing).where(Listing.id == listing_id, Listing.status.in_(BY_MODERATOR))
        .values(status=PAUSED, moderation_reason=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount)


def delete_listing(listing):
    """Any status → removed, with its photos (rows and files) and favourites (see the module doc)."""
    keys = [photo.key for photo in listing.photos]
    db.session.execute(delete(ListingPhoto).where(ListingPhoto.listing_id == listing.id))
    db.session.execute(delete(Favourite).where(Favourite.listing_id == listing.id))
    db.session.execute(
        update(Listing)
        .where(Listing.id == listing.id)
        .values(status=REMOVED, favourite_count=0, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    record_totals_changed(listing.seller_id)
    db.session.commit()
    realtime.publish_committed()
    for key in keys:
        photo_files.delete_files(key)
    db.session.refresh(listing)
    return listing


def hold_listings_of(seller_id):
    """Live → held for every listing of a seller being suspended. Runs in the caller's transaction
    (the suspension's), so the listings disappear from public pages in the same commit."""
    db.session.execute(
        update(Listing).where(Listing.seller_id == seller_id, Listing.status == LIVE)
        .values(status=HELD, updated_at=utcnow()).execution_options(synchronize_session=False)
    )


def release_listings_of(seller_id):
    """Held → live for a reinstated seller, in the caller's transaction."""
    db.session.execute(
        update(Listing).where(Listing.seller_id == seller_id, Listing.status == HELD)
        .values(status=LIVE, updated_at=utcnow()).execution_options(synchronize_session=False)
    )


def add_photos(listing, uploads):
    """Add photos after the existing ones. All are checked first: one bad photo stores none."""
    uploads = [u for u in uploads if photo_files.is_upload(u)]
    if not uploads:
        raise PhotoError("Choose at least one photo.")
    prepared = _prepare(uploads, already=len(listing.photos))
    # Lock the listing row and count again: two uploads at once must not pass the limit together.
    db.session.execute(select(Listing.id).where(Listing.id == listing.id).with_for_update())
    count, last = db.session.execute(
        select(func.count(ListingPhoto.id), func.max(ListingPhoto.position)).where(ListingPhoto.listing_id == listing.id)
    ).one()
    try:
        _check_room(count, len(prepared))
    except PhotoError:
        db.session.rollback()
        raise
    _attach(listing, prepared, start=(last + 1) if last is not None else 0)
    _commit_with_files(prepared)
    return listing


def remove_photo(photo):
    key = photo.key
    db.session.delete(photo)
    db.session.commit()
    photo_files.delete_files(key)


def set_cover_photo(photo):
    """Make `photo` the first one (cards and the gallery open with it)."""
    others = [p for p in photo.listing.photos if p.id != photo.id]
    for position, each in enumerate([photo, *others]):
        each.position = position
    db.session.commit()


def _insert_unless_exists(model, **values):
    """INSERT … ON CONFLICT DO NOTHING on both databases; returns 1 if a row was inserted."""
    statement = insert_for(db.session, model).values(**values).on_conflict_do_nothing()
    return db.session.execute(statement).rowcount


def set_favourite(user, listing, saved):
    """Save (or un-save) `listing` for `user`. Idempotent; keeps `Listing.favourite_count` exact
    by counting only the rows actually inserted or deleted, so concurrent clicks can't skew it."""
    if listing.is_owned_by(user):
        raise ListingError("You can't save your own listing.")
    if saved:
        changed = _insert_unless_exists(Favourite, user_id=user.id, listing_id=listing.id, created_at=utcnow())
    else:
        changed = -db.session.execute(
            delete(Favourite).where(Favourite.user_id == user.id, Favourite.listing_id == listing.id)
        ).rowcount
    if changed:
        db.session.execute(
            update(Listing)
            .where(Listing.id == listing.id)
            .values(favourite_count=Listing.favourite_count + changed, updated_at=Listing.updated_at)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    return saved


def toggle_favourite(user, listing):
    """Flip the saved state; returns the new one."""
    exists = db.session.scalar(
        select(Favourite.id).where(Favourite.user_id == user.id, Favourite.listing_id == listing.id)
    )
    return set_favourite(user, listing, saved=exists is None)


def record_view(listing, viewer):
    """Count a view of a live listing, unless the seller is looking at their own. True if counted."""
    if listing.status != LIVE or listing.is_owned_by(viewer):
        return False
    db.session.execute(
        update(Listing)
        .where(Listing.id == listing.id)
        .values(view_count=Listing.view_count + 1, updated_at=Listing.updated_at)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return True
