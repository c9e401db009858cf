"""Listings, their photos and users' favourites."""
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..extensions import db
from ..models_base import utcnow

CATEGORIES = {
    "venues": "Venues",
    "furniture": "Furniture",
    "decoration": "Decoration",
    "lighting": "Lighting",
    "electronics": "Electronics",
    "other": "Other",
}
PRICE_UNITS = {"day": "per day", "event": "per event", "hour": "per hour"}

DRAFT, LIVE, PAUSED, REMOVED = "draft", "live", "paused", "removed"
# A live listing of a suspended seller: out of every public page and search, because those show
# `live` only; live again when the seller is reinstated (services.hold_listings_of).
HELD = "held"
# A moderator's decisions: out of every public page like a paused listing, but the seller can't
# undo them (no resume, no publish); the seller sees `moderation_reason` and may appeal through a
# report, and only a moderator lifts them (back to paused: the seller then resumes it).
SUSPENDED, TAKEN_DOWN = "suspended", "taken_down"
BY_MODERATOR = (SUSPENDED, TAKEN_DOWN)
STATUSES = (DRAFT, LIVE, PAUSED, REMOVED, HELD, SUSPENDED, TAKEN_DOWN)
STATUS_LABELS = {DRAFT: "Draft", LIVE: "Live", PAUSED: "Paused", REMOVED: "Deleted", HELD: "Held (seller suspended)",
                 SUSPENDED: "Paused by a moderator", TAKEN_DOWN: "Removed by a moderator"}


class Listing(db.Model):
    __tablename__ = "listings"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_nonnegative"),
        CheckConstraint("deposit >= 0", name="deposit_nonnegative"),
        Index("ix_listings_status_created", "status", "created_at"),
        Index("ix_listings_status_price", "status", "price"),
        Index("ix_listings_seller", "seller_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(120))
    category: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text)
    city: Mapped[str] = mapped_column(String(60))
    area: Mapped[str] = mapped_column(String(80), default="")
    # Whole rupees: rental prices are never quoted in paise.
    price: Mapped[int]
    price_unit: Mapped[str] = mapped_column(String(10))
    deposit: Mapped[int] = mapped_column(default=0)
    capacity: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(10), default=DRAFT)
    # Why a moderator paused or removed it (shown to its seller); None unless status is BY_MODERATOR.
    moderation_reason: Mapped[str | None] = mapped_column(Text)
    view_count: Mapped[int] = mapped_column(default=0)
    favourite_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    seller: Mapped[User] = relationship()
    photos: Mapped[list["ListingPhoto"]] = relationship(
        back_populates="listing", order_by="ListingPhoto.position", cascade="all, delete-orphan"
    )

    @property
    def is_live(self):
        return self.status == LIVE

    def is_owned_by(self, user):
        return bool(user is not None and user.is_authenticated and user.id == self.seller_id)

    @property
    def is_held_by_moderator(self):
        return self.status in BY_MODERATOR

    @property
    def status_label(self):
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def category_label(self):
        return CATEGORIES.get(self.category, self.category)

    @property
    def price_unit_label(self):
        return PRICE_UNITS.get(self.price_unit, self.price_unit)

    @property
    def cover(self):
        return self.photos[0] if self.photos else None


class ListingPhoto(db.Model):
    __tablename__ = "listing_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    # Random stored name (the key under UPLOAD_FOLDER); never the uploader's file name.
    key: Mapped[str] = mapped_column(String(64), unique=True)
    width: Mapped[int]
    height: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    listing: Mapped[Listing] = relationship(back_populates="photos")

    def width_for(self, size):
        """Pixel width of a rendition (`width`/`height` are the largest one's), for `srcset`."""
        from .photos import RENDITIONS

        return max(1, round(self.width * self._scale(RENDITIONS[size])))

    def height_for(self, size):
        from .photos import RENDITIONS

        return max(1, round(self.height * self._scale(RENDITIONS[size])))

    def _scale(self, longest):
        return min(1.0, longest / max(self.width, self.height, 1))


class Favourite(db.Model):
    __tablename__ = "favourites"
    __table_args__ = (UniqueConstraint("user_id", "listing_id", name="uq_favourites_user_listing"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
