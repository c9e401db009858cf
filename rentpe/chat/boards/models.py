"""Invitations to event boards.

Nobody becomes a member of someone else's board without saying yes, except a seller the owner
already talks with as a buyer (the owner adds them directly, as before). An invitation is a row
until the invited person accepts it (they become a member, with the history) or declines it (the
row goes). No invitation is made across a block, either way round, nor to someone a moderator
removed from the board (see services).
"""
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ...accounts.models import User
from ...extensions import db
from ...models_base import utcnow
from ..models import Conversation


class BoardInvitation(db.Model):
    __tablename__ = "board_invitations"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True)
    # Indexed for "my invitations", read on the inbox.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(10))
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    board: Mapped[Conversation] = relationship()
    invited_by: Mapped[User | None] = relationship(foreign_keys=[invited_by_id])
