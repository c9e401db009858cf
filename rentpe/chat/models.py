"""Conversations, their participants (with read and delivery cursors) and messages.

A conversation is private (`direct`: one buyer, one seller) or an event board (`group`: a title,
an event date and city, an owner, members, and a closed state). Both share every row type and the
same delivery path. A board member who leaves or is removed keeps their `Participant` row with
`left_at` set; `Conversation.participants` holds current members only, so every check and fan-out
that reads it (the guard, sends, renderers, receipts) ignores former members.
"""
from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, false, select
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship

from ..accounts.models import User
from ..extensions import db
from ..listings.models import Listing
from ..models_base import utcnow

DIRECT, GROUP = "direct", "group"
# Roles: a direct conversation has a buyer and a seller; a board has one owner, and members who
# are sellers (invited from the owner's conversations or saved listings) or co-organisers.
BUYER, SELLER = "buyer", "seller"
OWNER, ORGANISER = "owner", "organiser"
# Why a board member's `left_at` is set.
LEFT, REMOVED = "left", "removed"
# Removed by a moderator: the board's owner can't add or invite them back (boards/services.py).
MODERATED = "moderated"


class Conversation(db.Model):
    __tablename__ = "conversations"
    __table_args__ = (
        # One private conversation per (buyer, seller) pair: two first messages racing each other
        # both land in the same conversation (INSERT … ON CONFLICT DO NOTHING, then read).
        UniqueConstraint("buyer_id", "seller_id", name="uq_conversations_pair"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), default=DIRECT)
    buyer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    seller_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_message_id: Mapped[int | None]
    message_count: Mapped[int] = mapped_column(default=0)
    # The listing its newest message about a listing asked about (the inbox thumbnail), set by the send.
    last_listing_id: Mapped[int | None] = mapped_column(ForeignKey("listings.id", ondelete="SET NULL"))
    # Event boards only.
    title: Mapped[str | None] = mapped_column(String(80))
    event_date: Mapped[date | None]
    city: Mapped[str | None] = mapped_column(String(60))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    closed_at: Mapped[datetime | None]

    last_listing: Mapped[Listing | None] = relationship()
    # Current participants only (see the module docstring); former board members are never in it.
    participants: Mapped[list["Participant"]] = relationship(
        primaryjoin="and_(Conversation.id == Participant.conversation_id, Participant.left_at.is_(None))",
        order_by="Participant.joined_at, Participant.user_id", viewonly=True, lazy="selectin",
    )

    @property
    def is_board(self):
        return self.kind == GROUP

    def participant(self, user_id):
        """The current participant `user_id`, or None: from the participants (a private
        conversation's two, or a board's once loaded), else that one row of a board (which has
        hundreds, where a read needs one or two of them)."""
        if self.kind != GROUP or "participants" in self.__dict__:
            return next((p for p in self.participants if p.user_id == user_id), None)
        return object_session(self).scalars(
            select(Participant).where(Participant.conversation_id == self.id, Participant.user_id == user_id,
                                      Participant.left_at.is_(None))).one_or_none()

    def others(self, user_id):
        return [p for p in self.participants if p.user_id != user_id]


class Participant(db.Model):
    __tablename__ = "participants"
    __table_args__ = (Index("ix_participants_user_activity", "user_id", "conversation_id"),)

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(10))
    # Cursors are message ids: message ids grow in commit order within a conversation because a
    # send locks the conversation row first (see services.send_message).
    last_read_message_id: Mapped[int] = mapped_column(default=0)
    last_read_at: Mapped[datetime | None]
    delivered_message_id: Mapped[int] = mapped_column(default=0)
    delivered_at: Mapped[datetime | None]
    # The id of the last message this participant sent (0: none): the message their receipt is about.
    last_sent_message_id: Mapped[int] = mapped_column(default=0)
    unread_count: Mapped[int] = mapped_column(default=0)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Board members only: when and why they stopped being a member (None while they are one).
    left_at: Mapped[datetime | None]
    left_reason: Mapped[str | None] = mapped_column(String(10))
    # No missed-message e-mail from this conversation (rentpe/notifications); set from its page.
    muted: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Put away from the inbox by this participant at this message id (None: never, or taken out
    # again). Archived while no newer message came: a new message brings it back by itself.
    archived_message_id: Mapped[int | None]

    conversation: Mapped[Conversation] = relationship()
    user: Mapped[User] = relationship(lazy="joined")

    @property
    def is_archived(self):
        return self.archived_message_id is not None and self.archived_message_id >= (
            self.conversation.last_message_id or 0)


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (
        # The composer's client key makes a retried or double-clicked send store one message.
        UniqueConstraint("conversation_id", "sender_id", "client_key", name="uq_messages_client_key"),
        Index("ix_messages_conversation_id", "conversation_id", "id"),
        Index("ix_messages_listing", "listing_id"),
        Index("ix_messages_card", "kind", "card_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    sender_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)
    client_key: Mapped[str] = mapped_column(String(64))
    # The listing this message asks about (a card is shown with it).
    listing_id: Mapped[int | None] = mapped_column(ForeignKey("listings.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Taken out of view by a board owner or a moderator (see hiding.py): the body is kept for the
    # record, every participant sees a notice instead.
    hidden_at: Mapped[datetime | None]
    hidden_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    hidden_reason: Mapped[str | None] = mapped_column(String(20))
    # Off-platform contact details found in the body ("phone,email,payment"; see contact.py): the
    # recipient sees a safety notice and moderators find the message in their queue. None = clean.
    contact_flags: Mapped[str | None] = mapped_column(String(40))
    # What the message is: "text" (written by its sender), or a kind a feature above chat adds and
    # renders (cards.py), e.g. a booking's card or a line about it; `card_id` is that feature's id.
    kind: Mapped[str] = mapped_column(String(20), default="text", server_default="text")
    card_id: Mapped[int | None]
    # Changed by its sender (services.edit_message: within EDIT_WINDOW; the texts before are
    # `MessageEdit` rows, for moderators), or deleted by them (services.delete_message): the
    # thread shows "Message deleted"; text and photos stay for moderators until `purge_deleted`.
    edited_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None] = mapped_column(index=True)

    sender: Mapped[User] = relationship(lazy="joined", foreign_keys=[sender_id])
    listing: Mapped[Listing | None] = relationship()
    # Read with the message where it is shown (queries.WITH_EXTRAS: one query each for a page).
    photos: Mapped[list["MessagePhoto"]] = relationship(order_by="MessagePhoto.position", viewonly=True)
    reactions: Mapped[list["MessageReaction"]] = relationship(
        order_by="MessageReaction.created_at, MessageReaction.user_id", viewonly=True)
    # The texts it had before each edit, oldest first (moderators read them; nobody else does).
    edits: Mapped[list["MessageEdit"]] = relationship(order_by="MessageEdit.id", viewonly=True)

    @property
    def is_gone(self):
        """Hidden or deleted: nobody in the conversation sees its text, photos or reactions."""
        return self.hidden_at is not None or self.deleted_at is not None


class MessageEdit(db.Model):
    """A text a message had before an edit: kept for moderators (a report shows the history)."""
    __tablename__ = "message_edits"
    __table_args__ = (Index("ix_message_edits_message_id", "message_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)
    edited_at: Mapped[datetime]


class MessageReaction(db.Model):
    """One person's reaction to a message: one of each emoji per person per message."""
    __tablename__ = "message_reactions"

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    emoji: Mapped[str] = mapped_column(String(16), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(lazy="joined")


class MessagePhoto(db.Model):
    """A photo sent with a message, re-encoded (listings/photos.py), stored under `chat-photos/`
    and served only to the conversation's current participants (routes.message_photo)."""
    __tablename__ = "message_photos"
    __table_args__ = (Index("ix_message_photos_message_id", "message_id", "position"),
                      UniqueConstraint("key", name="uq_message_photos_key"))

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(32))
    width: Mapped[int]
    height: Mapped[int]
    position: Mapped[int] = mapped_column(default=0)
