"""Reports and the moderators' audit log.

A `Report` is one person's complaint about one thing (a message, a conversation, a listing or a
user), or the contact-information guard's flag on a message put up for review (no reporter). Its
`subject_user_id` is the person the report is against, so a moderator sees every report about
someone in one place; `conversation_id` is set when the thing lives in a conversation, which is
the only way a moderator may open that conversation.

`ModerationAction` is append-only: every moderator action (and every conversation a moderator
opened) is a row, written in the same transaction as the action. Nothing updates or deletes one;
the ORM refuses to (see the listeners below).
"""
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, event, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..extensions import db
from ..models_base import utcnow

MESSAGE, CONVERSATION, LISTING, USER = "message", "conversation", "listing", "user"
KINDS = {MESSAGE: "Message", CONVERSATION: "Conversation", LISTING: "Listing", USER: "User"}

# What a person may pick, in the order the form offers them.
REASONS = {
    "spam": "Spam",
    "scam": "Scam or fraud",
    "abusive": "Abusive or harassing",
    "inappropriate": "Inappropriate content",
    "off_platform": "Asks to pay or talk outside RentPe",
    "other": "Something else",
}
# Set by the contact-information guard's review, never offered on the form.
CONTACT_INFO = "contact_info"
# A seller asking a moderator to lift a decision on their own listing: the only reason their own
# listing's report form offers (and offered nowhere else).
APPEAL = "appeal"
APPEAL_REASONS = {APPEAL: "Appeal: I think the moderator's decision was a mistake"}
REASON_LABELS = {**REASONS, CONTACT_INFO: "Contact information (flagged automatically)",
                 APPEAL: "Appeal of a moderator's decision"}

OPEN, RESOLVED = "open", "resolved"
NOTE_MAX = 1000


class Report(db.Model):
    __tablename__ = "reports"
    __table_args__ = (
        # One open report per reporter and thing: a second click finds the first. Partial, so the
        # same person can report it again once a moderator resolved the first one.
        Index("uq_reports_open_per_reporter", "reporter_id", "kind", "target_id", unique=True,
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
        Index("ix_reports_queue", "status", "created_at", "id"),
        Index("ix_reports_subject", "subject_user_id"),
        Index("ix_reports_target", "kind", "target_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(20))
    target_id: Mapped[int]
    reason: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    subject_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default=OPEN)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolution_note: Mapped[str | None] = mapped_column(Text)

    reporter: Mapped[User | None] = relationship(foreign_keys=[reporter_id])
    subject: Mapped[User | None] = relationship(foreign_keys=[subject_user_id])
    resolved_by: Mapped[User | None] = relationship(foreign_keys=[resolved_by_id])

    @property
    def kind_label(self):
        return KINDS.get(self.kind, self.kind)

    @property
    def reason_label(self):
        return REASON_LABELS.get(self.reason, self.reason)

    @property
    def is_open(self):
        return self.status == OPEN


# Audit log actions.
HIDE_MESSAGE = "hide_message"
PAUSE_LISTING, REMOVE_LISTING, LIFT_LISTING = "pause_listing", "remove_listing", "lift_listing"
SUSPEND_USER, REINSTATE_USER = "suspend_user", "reinstate_user"
RESOLVE_REPORT, REVIEW_FLAGGED = "resolve_report", "review_flagged"
VIEW_CONVERSATION = "view_conversation"
REMOVE_BOARD_MEMBER = "remove_board_member"
ACTION_LABELS = {
    REMOVE_BOARD_MEMBER: "Removed a member from a board",
    HIDE_MESSAGE: "Hid a message",
    PAUSE_LISTING: "Paused a listing",
    REMOVE_LISTING: "Removed a listing",
    LIFT_LISTING: "Lifted a listing's pause or removal",
    SUSPEND_USER: "Suspended a user",
    REINSTATE_USER: "Reinstated a user",
    RESOLVE_REPORT: "Resolved a report",
    REVIEW_FLAGGED: "Opened a review of a flagged message",
    VIEW_CONVERSATION: "Opened a reported conversation",
}


class ModerationAction(db.Model):
    __tablename__ = "moderation_actions"
    __table_args__ = (Index("ix_moderation_actions_target", "target_kind", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    moderator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    action: Mapped[str] = mapped_column(String(30))
    target_kind: Mapped[str] = mapped_column(String(20))
    target_id: Mapped[int]
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    moderator: Mapped[User | None] = relationship()

    @property
    def action_label(self):
        return ACTION_LABELS.get(self.action, self.action)


@event.listens_for(ModerationAction, "before_update")
@event.listens_for(ModerationAction, "before_delete")
def _append_only(mapper, connection, target):
    raise TypeError("the moderation audit log is append-only")
