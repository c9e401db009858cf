"""Reads for the report form and the moderators' pages.

`get_report_target` is the one place that decides what a person may report: exactly what they
can see, through each thing's own guard (a conversation's participants, the listing viewer
guard). Everything else here is read by moderators only (the admin blueprint's guard).
"""
from dataclasses import dataclass, field

from flask import abort, url_for
from sqlalchemy import exists, func, select
from sqlalchemy.orm import aliased, selectinload

from ..accounts.models import User
from ..bookings import queries as booking_queries
from ..chat.models import GROUP, Conversation, Message, Participant
from ..chat.queries import get_conversation_for_participant
from ..extensions import db
from ..listings.guards import get_listing_for_viewer
from ..listings.models import Listing
from ..models_base import utcnow
from ..paging import Page
from .models import CONTACT_INFO, CONVERSATION, KINDS, LISTING, MESSAGE, OPEN, REASON_LABELS, RESOLVED, USER
from .models import ModerationAction, Report

PAGE_SIZE = 25
AUDIT_PAGE_SIZE = 50
# Messages shown on each side of a reported one: enough to read the exchange it was part of.
CONTEXT_MESSAGES = 3
HISTORY_LIMIT = 20


@dataclass
class ReportTarget:
    kind: str
    id: int
    label: str
    back_url: str
    subject_user_id: int | None = None
    conversation_id: int | None = None
    # A seller appealing a moderator's decision on their own listing (see services.file_report).
    is_appeal: bool = False


def get_report_target(kind, target_id, user):
    """What `user` wants to report, if they may see it; else 404 (400 for their own things)."""
    if kind == MESSAGE:
        message = db.session.get(Message, target_id)
        if message is None:
            abort(404)
        conversation = get_conversation_for_participant(message.conversation_id, user)
        if message.sender_id == user.id:
            abort(400)
        return ReportTarget(MESSAGE, message.id, f"a message from {message.sender.display_name}",
                            _conversation_url(conversation), message.sender_id, conversation.id)
    if kind == CONVERSATION:
        conversation = get_conversation_for_participant(target_id, user)
        others = conversation.others(user.id)
        subject = None if conversation.is_board else (others[0].user if others else None)
        label = f"the board “{conversation.title}”" if conversation.is_board else (
            f"your conversation with {subject.display_name}" if subject else "this conversation")
        return ReportTarget(CONVERSATION, conversation.id, label, _conversation_url(conversation),
                            subject.id if subject else None, conversation.id)
    if kind == LISTING:
        listing = get_listing_for_viewer(target_id)
        back = url_for("listings.show", listing_id=listing.id)
        if listing.seller_id == user.id:
            if not listing.is_held_by_moderator:
                abort(400)
            return ReportTarget(LISTING, listing.id, f"the moderator's decision on your listing “{listing.title}”",
                                back, listing.seller_id, is_appeal=True)
        return ReportTarget(LISTING, listing.id, f"the listing “{listing.title}”", back, listing.seller_id)
    if kind == USER:
        person = db.session.get(User, target_id)
        if person is None or not _may_see_person(user, person):
            abort(404)
        if person.id == user.id:
            abort(400)
        back = url_for("listings.seller", user_id=person.id) if person.seller_profile else url_for("chat.inbox")
        return ReportTarget(USER, person.id, person.display_name, back, person.id)
    abort(404)


def _may_see_person(viewer, person):
    """A seller's public page is open to all; anyone else only to the people they talk with."""
    if person.is_suspended and not viewer.is_moderator:
        return False
    if person.seller_profile is not None:
        return True
    mine = aliased(Participant)
    theirs = aliased(Participant)
    return bool(db.session.scalar(select(exists().where(
        mine.user_id == viewer.id, theirs.user_id == person.id, mine.conversation_id == theirs.conversation_id,
        mine.left_at.is_(None), theirs.left_at.is_(None),
    ))))


def _conversation_url(conversation):
    if conversation.is_board:
        return url_for("boards.show", board_id=conversation.id)
    return url_for("chat.conversation", conversation_id=conversation.id)


def report_of(report_id, reporter_id):
    """The reporter's own report (their confirmation page), else 404."""
    report = db.session.get(Report, report_id)
    if report is None or report.reporter_id != reporter_id:
        abort(404)
    return report


# The queue -----------------------------------------------------------------------------------


@dataclass
class QueueFilter:
    status: str = OPEN
    kind: str | None = None
    reason: str | None = None
    page: int = 1

    @classmethod
    def from_args(cls, args, page):
        status = args.get("status")
        kind, reason = args.get("kind"), args.get("reason")
        return cls(status=status if status in (OPEN, RESOLVED) else OPEN,
                   kind=kind if kind in KINDS else None,
                   reason=reason if reason in REASON_LABELS else None, page=page)

    def url_args(self, **changes):
        values = {"status": self.status, "kind": self.kind, "reason": self.reason, "page": self.page, **changes}
        return {k: v for k, v in values.items() if v not in (None, "") and not (k == "page" and v == 1)}


def report_queue(query):
    """Reports oldest first (the longest waiting at the top), PAGE_SIZE a page."""
    stmt = select(Report).where(Report.status == query.status)
    if query.kind:
        stmt = stmt.where(Report.kind == query.kind)
    if query.reason:
        stmt = stmt.where(Report.reason == query.reason)
    rows = db.session.scalars(
        stmt.order_by(Report.created_at, Report.id).offset((query.page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)
    ).all()
    return Page.of_rows(rows, query.page, PAGE_SIZE)


def open_counts():
    """{"reports": open reports, "flagged": flagged messages waiting}, for the tabs."""
    return {
        "reports": db.session.scalar(select(func.count()).select_from(Report).where(Report.status == OPEN)),
        "flagged": db.session.scalar(select(func.count()).select_from(_flagged().subquery())),
    }


def _flagged():
    """Messages the contact-information guard flagged that no moderator has taken up yet."""
    reviewed = exists().where(Report.kind == MESSAGE, Report.target_id == Message.id, Report.reason == CONTACT_INFO)
    return select(Message).where(Message.contact_flags.is_not(None), Message.hidden_at.is_(None), ~reviewed)


def flagged_messages(page):
    rows = db.session.scalars(
        _flagged().order_by(Message.id).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)
    ).all()
    return Page.of_rows(rows, page, PAGE_SIZE)


def get_flagged_message(message_id):
    message = db.session.get(Message, message_id)
    if message is None or message.contact_flags is None:
        abort(404)
    return message


def get_report(report_id):
    report = db.session.get(Report, report_id)
    if report is None:
        abort(404)
    return report


# A report's context ------------------------------------------------------------------------


@dataclass
class PersonHistory:
    user: User
    listings: list
    reports: list
    report_count: int
    open_report_count: int

    @property
    def account_age_days(self):
        return max(0, (utcnow() - self.user.created_at).days)


@dataclass
class ReportContext:
    report: Report
    message: Message | None = None
    around: list = field(default_factory=list)
    conversation: Conversation | None = None
    members: list = field(default_factory=list)  # a board's current members
    bookings: list = field(default_factory=list)  # the conversation's bookings, every state
    listing: Listing | None = None
    subject: PersonHistory | None = None
    other_reports: list = field(default_factory=list)


def get_board_member(board_id, user_id):
    """A current member of a board (not of a private conversation), else 404."""
    member = db.session.get(Participant, (board_id, user_id))
    if member is None or member.left_at is not None or member.conversation.kind != GROUP:
        abort(404)
    return member


def report_context(report):
    context = ReportContext(report)
    if report.kind == MESSAGE:
        context.message = db.session.get(Message, report.target_id)
        if context.message is not None:
            context.around = messages_around(context.message)
            context.listing = context.message.listing or listing_asked_about(context.message)
    if report.conversation_id is not None:
        context.conversation = db.session.get(Conversation, report.conversation_id)
        context.bookings = booking_queries.in_conversation(report.conversation_id)
        if context.conversation is not None and context.conversation.kind == GROUP:
            context.members = db.session.scalars(
                select(Participant).where(Participant.conversation_id == context.conversation.id,
                                          Participant.left_at.is_(None)).order_by(Participant.joined_at)
            ).all()
    if report.kind == LISTING:
        context.listing = db.session.get(Listing, report.target_id)
    if report.subject_user_id is not None:
        context.subject = person_history(report.subject_user_id)
    context.other_reports = db.session.scalars(
        select(Report).where(Report.kind == report.kind, Report.target_id == report.target_id, Report.id != report.id)
        .order_by(Report.id).limit(HISTORY_LIMIT)
    ).all()
    return context


# What a moderator reads with each message besides its text: its photos and its earlier texts.
_WITH_EVIDENCE = (selectinload(Message.photos), selectinload(Message.edits))


def messages_around(message, count=CONTEXT_MESSAGES):
    """The message with up to `count` messages before and after it in its conversation, in order."""
    same = Message.conversation_id == message.conversation_id
    before = db.session.scalars(
        select(Message).where(same, Message.id < message.id).order_by(Message.id.desc()).limit(count)
        .options(*_WITH_EVIDENCE)
    ).all()
    after = db.session.scalars(
        select(Message).where(same, Message.id > message.id).order_by(Message.id).limit(count)
        .options(*_WITH_EVIDENCE)
    ).all()
    return [*reversed(before), message, *after]


def listing_asked_about(message):
    """The listing the conversation was last about when `message` was written."""
    return db.session.scalar(
        select(Listing).join(Message, Message.listing_id == Listing.id)
        .where(Message.conversation_id == message.conversation_id, Message.id <= message.id)
        .order_by(Message.id.desc()).limit(1)
    )


def person_history(user_id):
    person = db.session.get(User, user_id)
    if person is None:
        return None
    against = Report.subject_user_id == person.id
    return PersonHistory(
        user=person,
        listings=db.session.scalars(
            select(Listing).where(Listing.seller_id == person.id).order_by(Listing.created_at.desc()).limit(HISTORY_LIMIT)
        ).all(),
        reports=db.session.scalars(select(Report).where(against).order_by(Report.id.desc()).limit(HISTORY_LIMIT)).all(),
        report_count=db.session.scalar(select(func.count()).select_from(Report).where(against)),
        open_report_count=db.session.scalar(
            select(func.count()).select_from(Report).where(against, Report.status == OPEN)),
    )


def get_user(user_id):
    person = db.session.get(User, user_id)
    if person is None:
        abort(404)
    return person


def conversation_messages(conversation_id, limit=500):
    """A reported conversation as a moderator reads it: every message, hidden ones included."""
    return db.session.scalars(
        select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id).limit(limit)
        .options(*_WITH_EVIDENCE)
    ).all()


def audit_log(page):
    rows = db.session.scalars(
        select(ModerationAction).order_by(ModerationAction.id.desc())
        .offset((page - 1) * AUDIT_PAGE_SIZE).limit(AUDIT_PAGE_SIZE + 1)
    ).all()
    return Page.of_rows(rows, page, AUDIT_PAGE_SIZE)


def actions_on(report):
    """The audit rows of one report, oldest first (shown on its page)."""
    return db.session.scalars(
        select(ModerationAction).where(ModerationAction.report_id == report.id).order_by(ModerationAction.id)
    ).all()

