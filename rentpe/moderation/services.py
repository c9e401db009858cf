"""State changes of moderation. Each function owns its transaction.

Filing a report is for anyone who can see the thing (the route resolves it through the thing's
own guard first, see queries.get_report_target). Every other function is a moderator's action:
it writes its `ModerationAction` row into the same transaction as the change, so the audit log
holds exactly the actions that happened, and an action that changes nothing (a message already
hidden, a listing already removed) logs nothing.
"""
from sqlalchemy import select, update

from .. import realtime
from ..accounts.models import User
from ..bookings import services as booking_services
from ..chat.boards import services as board_services
from ..chat.hiding import BY_MODERATOR, hide_message
from ..database import insert_for
from ..extensions import db
from ..listings import services as listing_services
from ..listings.models import DRAFT, HELD, LIVE, PAUSED, SUSPENDED, TAKEN_DOWN
from ..models_base import utcnow
from ..text import CONTROL_CHARACTERS
from .models import (
    APPEAL_REASONS, CONTACT_INFO, CONVERSATION, HIDE_MESSAGE, REMOVE_BOARD_MEMBER, LIFT_LISTING, MESSAGE, NOTE_MAX, OPEN, PAUSE_LISTING, REASONS, REINSTATE_USER, REMOVE_LISTING,
    RESOLVE_REPORT, RESOLVED, REVIEW_FLAGGED, SUSPEND_USER, USER, VIEW_CONVERSATION, ModerationAction, Report,
)

class ModerationError(ValueError):
    """A report or action was refused; the message is shown where the action was."""

    def __init__(self, message, status=422):
        super().__init__(message)
        self.status = status


class AlreadyReported(ModerationError):
    def __init__(self, report):
        super().__init__("You already reported this. A moderator will look at it.", status=409)
        self.report = report


def clean_note(raw, required=False, what="note"):
    text = (raw or "").replace("\r\n", "\n").replace("\r", "\n")
    text = CONTROL_CHARACTERS.sub("", text).strip()
    if required and not text:
        raise ModerationError(f"Write a {what} first.")
    if len(text) > NOTE_MAX:
        raise ModerationError(f"A {what} can be at most {NOTE_MAX:,} characters (this one has {len(text):,}).")
    return text


# Reports -------------------------------------------------------------------------------------


def file_report(reporter, target, reason, note):
    """`reporter` reports `target` (a queries.ReportTarget they may see). Returns the report; a
    second open report of the same thing by the same person raises AlreadyReported. A seller's
    appeal against a decision on their own listing is a report too (`target.is_appeal`), with the
    appeal as its only reason and a note saying why."""
    if reason not in (APPEAL_REASONS if target.is_appeal else REASONS):
        raise ModerationError("Choose a reason.")
    note = clean_note(note, required=target.is_appeal, what="note saying why")
    if target.subject_user_id == reporter.id and target.kind == USER:
        raise ModerationError("You can't report yourself.", status=400)
    # The partial unique index (one open report per reporter and thing) decides a race of two clicks.
    report_id = db.session.execute(
        insert_for(db.session, Report).values(
            reporter_id=reporter.id, kind=target.kind, target_id=target.id, reason=reason, note=note,
            subject_user_id=target.subject_user_id, conversation_id=target.conversation_id, status=OPEN,
            created_at=utcnow(),
        ).on_conflict_do_nothing().returning(Report.id)
    ).scalar()
    db.session.commit()
    if report_id is None:
        raise AlreadyReported(open_report_of(reporter.id, target.kind, target.id))
    return db.session.get(Report, report_id)


def open_report_of(reporter_id, kind, target_id):
    return db.session.scalar(
        select(Report).where(Report.reporter_id == reporter_id, Report.kind == kind, Report.target_id == target_id,
                             Report.status == OPEN)
    )


def review_flagged_message(message, moderator):
    """Put a message the contact-information guard flagged up for review: a report with no
    reporter (reason `contact_info`), the same queue and context as any other. Returns the open
    review if there is one already."""
    existing = db.session.scalar(
        select(Report).where(Report.kind == MESSAGE, Report.target_id == message.id, Report.reason == CONTACT_INFO,
                             Report.reporter_id.is_(None)).order_by(Report.id.desc())
    )
    if existing is not None:
        return existing
    report = Report(kind=MESSAGE, target_id=message.id, reason=CONTACT_INFO, note=message.contact_flags or "",
                    subject_user_id=message.sender_id, conversation_id=message.conversation_id, status=OPEN,
                    created_at=utcnow())
    db.session.add(report)
    db.session.flush()
    _log(moderator, REVIEW_FLAGGED, MESSAGE, message.id, "", report)
    db.session.commit()
    return report


def resolve_report(report, moderator, note):
    note = clean_note(note, required=True, what="resolution note")
    resolved = db.session.execute(
        update(Report).where(Report.id == report.id, Report.status == OPEN)
        .values(status=RESOLVED, resolved_at=utcnow(), resolved_by_id=moderator.id, resolution_note=note)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not resolved:
        db.session.rollback()
        raise ModerationError("This report is already resolved.", status=409)
    _log(moderator, RESOLVE_REPORT, "report", report.id, note, report)
    db.session.commit()
    db.session.refresh(report)
    return report


def log_conversation_opened(report, moderator):
    """A moderator opened the conversation a report is about: that access is itself logged."""
    _log(moderator, VIEW_CONVERSATION, "conversation", report.conversation_id, "", report)
    db.session.commit()


# Actions on messages, listings and users ----------------------------------------------------


def hide_message_for_moderation(message, moderator, reason, report=None):
    """Hide a message for everyone in its conversation (their open tabs swap it for the notice)."""
    reason = clean_note(reason, required=True, what="reason")
    _log(moderator, HIDE_MESSAGE, MESSAGE, message.id, reason, report)
    # hide_message commits the log row with the change, or rolls both back if it was hidden already.
    if not hide_message(message, moderator, BY_MODERATOR):
        raise ModerationError("This message is already hidden.", status=409)


def pause_listing_for_moderation(listing, moderator, reason, report=None):
    """Take a listing out of view until a moderator lifts it: its seller can't resume it (they see
    the reason and may appeal). A listing its seller had paused can be paused this way too."""
    reason = clean_note(reason, required=True, what="reason")
    if not listing_services.hold_for_moderation(listing.id, (LIVE, PAUSED, HELD), SUSPENDED, reason):
        raise ModerationError(f"A {listing.status_label.lower()} listing can't be paused.", status=409)
    _log(moderator, PAUSE_LISTING, "listing", listing.id, reason, report)
    listing_services.record_totals_changed(listing.seller_id)  # the seller's open dashboards
    db.session.commit()
    realtime.publish_committed()
    db.session.refresh(listing)


def remove_listing_for_moderation(listing, moderator, reason, report=None):
    """Remove a listing from RentPe: out of every page and search, and its seller can't put it
    back. It is kept whole (photos, favourites), so a moderator can lift the removal on appeal."""
    reason = clean_note(reason, required=True, what="reason")
    if not listing_services.hold_for_moderation(listing.id, (DRAFT, LIVE, PAUSED, HELD, SUSPENDED), TAKEN_DOWN, reason):
        raise ModerationError(f"A {listing.status_label.lower()} listing can't be removed.", status=409)
    _log(moderator, REMOVE_LISTING, "listing", listing.id, reason, report)
    listing_services.record_totals_changed(listing.seller_id)  # the seller's open dashboards
    db.session.commit()
    realtime.publish_committed()
    db.session.refresh(listing)


def lift_listing_decision(listing, moderator, reason, report=None):
    """Undo a moderator's pause or removal (an appeal upheld, say): the listing goes back to its
    seller, paused, for them to resume."""
    reason = clean_note(reason, required=True, what="reason")
    if not listing_services.lift_moderation(listing.id):
        raise ModerationError("No moderator paused or removed this listing.", status=409)
    _log(moderator, LIFT_LISTING, "listing", listing.id, reason, report)
    listing_services.record_totals_changed(listing.seller_id)  # the seller's open dashboards
    db.session.commit()
    realtime.publish_committed()
    db.session.refresh(listing)


def remove_board_member_for_moderation(member, moderator, reason, report=None):
    """Remove `member` (a board's Participant row) from its board. The board's owner can't add
    them back or invite them again; only leaving it so is the point of a moderator doing it."""
    reason = clean_note(reason, required=True, what="reason")
    _log(moderator, REMOVE_BOARD_MEMBER, CONVERSATION, member.conversation_id,
         f"{reason} (removed {member.user.display_name}, user #{member.user_id})", report)
    try:
        # Commits the log row with the removal, or rolls both back.
        removed = board_services.remove_member_as_moderator(member.conversation, member.user_id)
    except board_services.BoardError as exc:
        raise ModerationError(str(exc), status=exc.status) from None
    if not removed:
        raise ModerationError("They aren't a member of this board any more.", status=409)


def suspend_user(user, moderator, reason, report=None):
    """Suspend an account: every session and remember cookie stops working, their open streams
    end, they can't log in, and their live listings are held out of public view."""
    reason = clean_note(reason, required=True, what="reason")
    if user.id == moderator.id:
        raise ModerationError("You can't suspend yourself.", status=400)
    changed = db.session.execute(
        update(User).where(User.id == user.id, User.is_suspended.is_(False))
        .values(is_suspended=True, session_generation=User.session_generation + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        db.session.rollback()
        raise ModerationError("This account is already suspended.", status=409)
    listing_services.hold_listings_of(user.id)
    _log(moderator, SUSPEND_USER, USER, user.id, reason, report)
    db.session.commit()
    realtime.end_streams(user.id)
    # Their pending booking requests and quotes are declined, each with a notice to its buyer.
    booking_services.decline_pending_of_seller(user.id)
    db.session.refresh(user)


def reinstate_user(user, moderator, reason, report=None):
    reason = clean_note(reason, required=True, what="reason")
    changed = db.session.execute(
        update(User).where(User.id == user.id, User.is_suspended.is_(True)).values(is_suspended=False)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        db.session.rollback()
        raise ModerationError("This account isn't suspended.", status=409)
    listing_services.release_listings_of(user.id)
    _log(moderator, REINSTATE_USER, USER, user.id, reason, report)
    db.session.commit()
    db.session.refresh(user)


def _log(moderator, action, target_kind, target_id, reason, report=None):
    db.session.add(ModerationAction(
        moderator_id=moderator.id, action=action, target_kind=target_kind, target_id=target_id,
        report_id=report.id if report is not None else None, reason=reason or "", created_at=utcnow(),
    ))


__all__ = [
    "ModerationError", "AlreadyReported", "file_report", "review_flagged_message", "resolve_report",
    "log_conversation_opened", "hide_message_for_moderation", "pause_listing_for_moderation",
    "remove_listing_for_moderation", "lift_listing_decision", "remove_board_member_for_moderation", "suspend_user", "reinstate_user",
]
