"""Who may see and who may change a listing: the one place that decides 404 versus 403.

- Anyone may see a live listing.
- Its seller also sees their drafts and paused listings (never a removed one: it is gone for them).
- A moderator may read every listing, whatever its status, but changes none through these guards.
- Changing a listing is for its seller only. Someone who can see the listing but may not change
  it gets 403; someone who can't even see it gets 404, so drafts don't leak that they exist.
"""
from flask import abort
from flask_login import current_user

from ..extensions import db
from .models import HELD, LIVE, PAUSED, REMOVED, SUSPENDED, TAKEN_DOWN, Listing

# Listings that were public and are not now, by what a visitor is told (and the status code):
# out for now (404: it may come back; a moderator's removal too, as a moderator may lift it), or
# deleted by its seller, gone for good (410). A draft never was public: a plain 404.
OUT_FOR_NOW, GONE = (PAUSED, SUSPENDED, HELD, TAKEN_DOWN), (REMOVED,)


def can_view(listing, user):
    if listing.status == LIVE:
        return True
    if not user.is_authenticated:
        return False
    if user.is_moderator:
        return True
    return listing.status != REMOVED and user.id == listing.seller_id


def get_listing_for_viewer(listing_id):
    """The listing `current_user` may read, else 404."""
    listing = db.session.get(Listing, listing_id)
    if listing is None or not can_view(listing, current_user):
        abort(404)
    return listing


def get_listing_for_owner(listing_id):
    """The listing `current_user` may change (their own, not removed); else 403 or 404 as above."""
    listing = db.session.get(Listing, listing_id)
    if listing is None or listing.status == REMOVED:
        abort(404)
    if listing.is_owned_by(current_user):
        return listing
    abort(403 if can_view(listing, current_user) else 404)


def unavailable_listing(listing_id):
    """The listing behind a public link that the viewer can't see any more because it was paused
    or removed (the listing page then says so), else None: drafts and missing ids stay 404s."""
    listing = db.session.get(Listing, listing_id)
    if listing is None or listing.status not in OUT_FOR_NOW + GONE or can_view(listing, current_user):
        return None
    return listing
