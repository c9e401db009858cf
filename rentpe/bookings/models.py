"""A listing's stock (units) and blocked days, and bookings with their state.

The never-double-booked guarantee: every confirmation first takes the row lock of the listing's
`BookingStock` row (an UPDATE, held to the end of its transaction), then counts the units that
confirmed bookings hold on each day asked for. Two confirmations for one listing therefore run
one after the other on PostgreSQL, whichever process or connection they come from; SQLite
serialises writers anyway (the UPDATE is the transaction's first write, so it waits for the
other writer and then reads what that one committed). See services.confirm.
"""
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..extensions import db
from ..listings.models import Listing
from ..models_base import utcnow

REQUESTED, QUOTED, CONFIRMED = "requested", "quoted", "confirmed"
DECLINED, WITHDRAWN, CANCELLED, EXPIRED = "declined", "withdrawn", "cancelled", "expired"
STATUSES = (REQUESTED, QUOTED, CONFIRMED, DECLINED, WITHDRAWN, CANCELLED, EXPIRED)
# Waiting for an answer: they expire, and they are what the seller's Requests tab lists first.
PENDING = (REQUESTED, QUOTED)
CLOSED = (DECLINED, WITHDRAWN, CANCELLED, EXPIRED)
STATUS_LABELS = {REQUESTED: "Requested", QUOTED: "Quoted", CONFIRMED: "Confirmed", DECLINED: "Declined",
                 WITHDRAWN: "Withdrawn", CANCELLED: "Cancelled", EXPIRED: "Expired"}

# The kinds of chat message bookings add (chat.cards): the card itself, and a line in the thread.
CARD, LINE = "booking", "booking-line"


class BookingStock(db.Model):
    """How many units a listing has (one venue, 40 chairs). No row: one unit."""
    __tablename__ = "booking_stock"
    __table_args__ = (CheckConstraint("units >= 1", name="units_positive"),)

    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id", ondelete="CASCADE"), primary_key=True)
    units: Mapped[int] = mapped_column(default=1)
    # Bumped by every confirmation: the UPDATE that takes the row lock (see the module docstring).
    confirmations: Mapped[int] = mapped_column(default=0)


class BlockedDay(db.Model):
    """A day the seller closed (maintenance, a booking taken elsewhere): no unit is free."""
    __tablename__ = "booking_blocked_days"

    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)


class Booking(db.Model):
    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint("end_day >= start_day", name="dates_in_order"),
        CheckConstraint("total >= 0 AND deposit >= 0", name="amounts_nonnegative"),
        Index("ix_bookings_listing_status_days", "listing_id", "status", "start_day", "end_day"),
        Index("ix_bookings_seller_status", "seller_id", "status"),
        Index("ix_bookings_buyer", "buyer_id"),
        Index("ix_bookings_conversation", "conversation_id"),
        Index("ix_bookings_pending_expiry", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    buyer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    seller_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    start_day: Mapped[date]
    end_day: Mapped[date]
    quantity: Mapped[int]
    event_type: Mapped[str] = mapped_column(String(60), default="")
    guests: Mapped[int | None]
    note: Mapped[str] = mapped_column(Text, default="")
    # The price as asked: the listing's unit and price then; `count` days or events.
    price_unit: Mapped[str] = mapped_column(String(10))
    unit_price: Mapped[int]
    # Whole rupees. `total` is the rent (a quote may change it), `deposit` the refundable deposit.
    total: Mapped[int]
    deposit: Mapped[int] = mapped_column(default=0)
    # The price before the seller's quote (None: never quoted).
    asked_total: Mapped[int | None]
    quote_note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default=REQUESTED)
    # Why it was declined or cancelled, as the person said.
    reason: Mapped[str | None] = mapped_column(Text)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Requests and quotes are answered by then (BOOKING_EXPIRY_HOURS), else they expire.
    expires_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    listing: Mapped[Listing] = relationship(lazy="joined")
    buyer: Mapped[User] = relationship(foreign_keys=[buyer_id], lazy="joined")
    seller: Mapped[User] = relationship(foreign_keys=[seller_id], lazy="joined")

    @property
    def status_label(self):
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def is_pending(self):
        return self.status in PENDING

    @property
    def days(self):
        return (self.end_day - self.start_day).days + 1

    def role_of(self, user_id):
        return "seller" if user_id == self.seller_id else "buyer" if user_id == self.buyer_id else None
