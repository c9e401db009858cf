"""Users and seller profiles."""
from flask_login import UserMixin
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..models_base import utcnow

NOTIFY_IMMEDIATE, NOTIFY_HOURLY, NOTIFY_DAILY, NOTIFY_NEVER = "immediate", "hourly", "daily", "never"
NOTIFY_CHOICES = (NOTIFY_IMMEDIATE, NOTIFY_HOURLY, NOTIFY_DAILY, NOTIFY_NEVER)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(60))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_moderator: Mapped[bool] = mapped_column(default=False)
    is_suspended: Mapped[bool] = mapped_column(default=False)
    # Bumped to end every session of this user at once (log out everywhere, suspension).
    session_generation: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Missed-message e-mail: "immediate" (after NOTIFY_DELAY_S), "hourly", "daily" (one digest)
    # or "never" (rentpe/notifications). One-click unsubscribe sets "never".
    notify_email: Mapped[str] = mapped_column(String(10), default=NOTIFY_IMMEDIATE, server_default=NOTIFY_IMMEDIATE)

    seller_profile: Mapped["SellerProfile | None"] = relationship(back_populates="user", uselist=False)

    # The key of the log-in this object was loaded for (not stored here: see `UserSession`).
    session_key = None

    def get_id(self):
        # Flask-Login keeps this in the session cookie and the remember cookie. The key names one
        # `UserSession` row: deleting it (log-out) ends that log-in, wherever its cookies were
        # copied to; a bumped generation ends every log-in of the user at once.
        return f"{self.id}:{self.session_generation}:{self.session_key or ''}"

    @property
    def is_active(self):
        return not self.is_suspended

    @property
    def is_seller(self):
        return self.seller_profile is not None

    @property
    def first_name(self):
        return self.display_name.split()[0] if self.display_name else ""

    def __repr__(self):
        return f"<User {self.id} {self.email}>"


class SellerProfile(db.Model):
    __tablename__ = "seller_profiles"
    __table_args__ = (CheckConstraint("length(shop_name) > 0", name="shop_name_nonempty"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    shop_name: Mapped[str] = mapped_column(String(80))
    city: Mapped[str] = mapped_column(String(60))
    bio: Mapped[str] = mapped_column(Text, default="")
    phone: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="seller_profile")


class UserSession(db.Model):
    """One log-in: the server-side half of a session cookie and its remember cookie.

    The cookies carry a random key; only its SHA-256 is stored, so a copy of this table opens no
    session. A cookie whose row is gone (logged out, password changed, "log out everywhere") or
    past `expires_at` logs nobody in, however validly it is signed.
    """

    __tablename__ = "user_sessions"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
