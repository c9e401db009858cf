"""Read-only queries over listings. Routes and templates get their data from here."""
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..paging import Page
from .models import LIVE, REMOVED, STATUSES, Favourite, Listing


def live_listings_of(seller_id, limit=60):
    return db.session.scalars(
        select(Listing)
        .where(Listing.seller_id == seller_id, Listing.status == LIVE)
        .options(selectinload(Listing.photos))
        .order_by(Listing.created_at.desc(), Listing.id.desc())
        .limit(limit)
    ).all()


def count_live_of(seller_id):
    return db.session.scalar(
        select(func.count()).select_from(Listing).where(Listing.seller_id == seller_id, Listing.status == LIVE)
    )


def newest_live(limit=12):
    return db.session.scalars(
        select(Listing)
        .where(Listing.status == LIVE)
        .options(selectinload(Listing.photos))
        .order_by(Listing.created_at.desc(), Listing.id.desc())
        .limit(limit)
    ).all()


def dashboard_listings(seller_id, status=None):
    """A seller's own listings, every status but removed, most recently changed first."""
    query = select(Listing).where(Listing.seller_id == seller_id, Listing.status != REMOVED)
    if status in STATUSES and status != REMOVED:
        query = query.where(Listing.status == status)
    return db.session.scalars(
        query.options(selectinload(Listing.photos)).order_by(Listing.updated_at.desc(), Listing.id.desc())
    ).all()


@dataclass
class SellerStats:
    by_status: dict
    views: int
    favourites: int

    @property
    def total(self):
        return sum(self.by_status.values())


def seller_stats(seller_id):
    rows = db.session.execute(
        select(Listing.status, func.count(), func.coalesce(func.sum(Listing.view_count), 0),
               func.coalesce(func.sum(Listing.favourite_count), 0))
        .where(Listing.seller_id == seller_id, Listing.status != REMOVED)
        .group_by(Listing.status)
    ).all()
    return SellerStats(
        by_status={status: count for status, count, _, _ in rows},
        views=sum(int(views) for _, _, views, _ in rows),
        favourites=sum(int(favs) for _, _, _, favs in rows),
    )


def saved_listings(user_id, page=1, per_page=24):
    """The live listings `user_id` saved, newest save first. Paused ones come back when resumed."""
    rows = db.session.scalars(
        select(Listing)
        .join(Favourite, Favourite.listing_id == Listing.id)
        .where(Favourite.user_id == user_id, Listing.status == LIVE)
        .options(selectinload(Listing.photos))
        .order_by(Favourite.created_at.desc(), Favourite.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page + 1)
    ).all()
    return Page.of_rows(rows, page, per_page)


def saved_ids(user_id):
    return set(db.session.scalars(select(Favourite.listing_id).where(Favourite.user_id == user_id)))
