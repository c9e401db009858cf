"""Pending and sent missed-message e-mails, one row per (recipient, conversation) e-mail.

The row is written by the send itself (`chat.services`, one `INSERT … SELECT` in the message's
transaction) and never by the worker's guess: a message that committed has its row, a message
rolled back has none. A recipient has at most one *pending* row per conversation (a partial
unique index, which the send's `ON CONFLICT … DO NOTHING` relies on): the first unread message
makes it, later ones join it.

States:
  pending    waiting for `due_at`
  sending    claimed by a worker until `lease_until` (a worker killed mid-batch leaves its rows
             here; another claims them again after the lease: at most one more e-mail, never none);
             a failed SMTP attempt also leaves it here, with `lease_until` as the next try (backoff)
  sent       the e-mail left: `sent_at`, `up_to_message_id` (the newest message it carried) and
             `message_count` are the record; the next e-mail of that conversation starts after it
  cancelled  read before it was due, muted, unsubscribed, or the person may no longer be reached
"""
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..models_base import utcnow

PENDING, SENDING, SENT, CANCELLED = "pending", "sending", "sent", "cancelled"


class Notification(db.Model):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("uq_notifications_pending", "user_id", "conversation_id", unique=True,
              sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'")),
        Index("ix_notifications_due", "due_at",
              sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'")),
        Index("ix_notifications_lease", "lease_until",
              sqlite_where=text("status = 'sending'"), postgresql_where=text("status = 'sending'")),
        Index("ix_notifications_history", "user_id", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    # The message whose send made the row (the first unread one it is about).
    message_id: Mapped[int]
    status: Mapped[str] = mapped_column(String(10), default=PENDING)
    due_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[datetime | None]
    # The claim that holds the row while `sending`: only its worker may record the outcome.
    claim: Mapped[str | None] = mapped_column(String(32))
    sent_at: Mapped[datetime | None]
    up_to_message_id: Mapped[int | None]
    message_count: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(200))
