"""The worker that sends missed-message e-mails: `flask --app app notifications run`.

One round (`run_once`):

1. **Claim** up to `NOTIFY_CLAIM_SIZE` rows that are due (`pending` past `due_at`) or whose
   claim lapsed (`sending` past `lease_until`: a worker that died, or an SMTP failure waiting for
   its retry), in one short transaction: `status = 'sending'`, a fresh claim token, the lease.
   On PostgreSQL the rows are picked with `FOR UPDATE SKIP LOCKED`, so several workers claim
   disjoint rows without waiting for each other; SQLite serialises writers anyway.
2. **Decide** each row from the current state: the read cursor (never presence) says what is
   unread. Nothing unread past the cursor and past the last e-mail of that conversation: read in
   time, cancelled. Not yet due by the person's preference (the batching period after the last
   e-mail, hourly, the daily digest): back to `pending` with the later `due_at`. The person is
   suspended, removed from the board, blocked in the conversation, muted it or turned e-mail off:
   cancelled. Hidden messages are never quoted.
3. **Send**, one SMTP connection for the round, and record each e-mail as `sent` in its own
   commit right after the server accepted it. A worker killed between the two sends that one
   e-mail once more after the lease (never loses it); a failed send stays `sending` with its
   lease moved to the next try (`NOTIFY_RETRY_S`, doubling, at most `NOTIFY_RETRY_MAX_S`).

Only the worker holding a row's claim token records its outcome, so a worker that outlived its
lease can't overwrite another's.
"""
import logging
import signal
import smtplib
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import joinedload
from sqlalchemy.exc import IntegrityError

from ..accounts.models import NOTIFY_DAILY, NOTIFY_HOURLY, NOTIFY_NEVER, User
from ..chat.blocks import Block, block_state
from ..chat.models import DIRECT, Conversation, Message, Participant
from .. import metrics
from ..database import is_postgresql
from ..extensions import db
from ..models_base import utcnow
from . import mail
from .models import CANCELLED, PENDING, SENDING, SENT, Notification

log = logging.getLogger(__name__)
MAX_QUOTED = 10
# A mail server that refuses one e-mail with a permanent error (5xx: no such mailbox, a message
# it won't take) is asked again a few times, then the e-mail is given up (`cancelled`, with the
# server's answer). A server that can't be reached is retried for as long as it takes.
REFUSALS_BEFORE_GIVING_UP = 5


def _refused_for_good(exc):
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500


@dataclass
class Round:
    claimed: int = 0
    sent: int = 0
    cancelled: int = 0
    postponed: int = 0
    failed: int = 0
    errors: list = field(default_factory=list)


@dataclass
class Claimed:
    id: int
    user_id: int
    conversation_id: int
    attempts: int
    claim: str


@dataclass
class Section:
    """One conversation of an e-mail: what it quotes and what it says of the rest."""
    conversation: Conversation
    messages: list
    more: int
    listing: object
    rows: list
    up_to: int  # the newest message counted ("and 4 more" included): the next e-mail starts after it
    count: int


def claim(now, limit, config, digest_of=None):
    """Step 1: the rows this worker now holds. `digest_of` (user ids): instead, those people's
    other due rows, so that a daily digest gathers all of them even past one claim's size."""
    token = uuid.uuid4().hex
    N = Notification
    due = select(N.id).where(N.status == PENDING, N.due_at <= now).order_by(N.due_at, N.user_id).limit(limit)
    lapsed = select(N.id).where(N.status == SENDING, N.lease_until <= now).order_by(N.lease_until).limit(limit)
    if digest_of is not None:
        due = select(N.id).where(N.status == PENDING, N.due_at <= now, N.user_id.in_(sorted(digest_of)))
        lapsed = select(N.id).where(False)
    if is_postgresql(db.session):
        due, lapsed = due.with_for_update(skip_locked=True), lapsed.with_for_update(skip_locked=True)
    rows = db.session.execute(
        update(N).where(or_(N.id.in_(due.scalar_subquery()), N.id.in_(lapsed.scalar_subquery())))
        .values(status=SENDING, claim=token, attempts=N.attempts + 1,
                lease_until=now + timedelta(seconds=config["NOTIFY_LEASE_S"]))
        .returning(N.id, N.user_id, N.conversation_id, N.attempts)
    ).all()
    db.session.commit()
    return sorted((Claimed(r.id, r.user_id, r.conversation_id, r.attempts, token) for r in rows),
                  key=lambda c: (c.user_id, c.conversation_id, c.id))


def _finish(row, **values):
    """Record a claimed row's outcome, if this worker still holds it. True if it did."""
    done = db.session.execute(
        update(Notification).where(Notification.id == row.id, Notification.status == SENDING,
                                   Notification.claim == row.claim)
        .values(claim=None, **values)
    ).rowcount
    db.session.commit()
    return bool(done)


def _postpone(row, due_at):
    """Back to pending until `due_at`; when a newer pending row of the same conversation exists
    (made by a send meanwhile), that one carries on and this one is cancelled."""
    try:
        with db.session.begin_nested():
            db.session.execute(
                update(Notification).where(Notification.id == row.id, Notification.status == SENDING,
                                           Notification.claim == row.claim)
                .values(status=PENDING, due_at=due_at, claim=None, lease_until=None, attempts=0))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        _finish(row, status=CANCELLED, lease_until=None, last_error="merged into a newer one")


def _next_digest(after, hour):
    at = after.replace(hour=hour, minute=0, second=0, microsecond=0)
    return at if at > after else at + timedelta(days=1)


def _last_sent(user_id, conversation_id=None):
    N = Notification
    query = select(func.max(N.sent_at), func.max(N.up_to_message_id)).where(N.user_id == user_id, N.status == SENT)
    if conversation_id is not None:
        query = query.where(N.conversation_id == conversation_id)
    return db.session.execute(query).one()


def _history(row, now):
    """One read of the conversation's e-mail history for the row's person: when the last e-mail
    left and the newest message it counted, and the lease of another worker sending one now."""
    N = Notification
    return db.session.execute(
        select(func.max(case((N.status == SENT, N.sent_at))), func.max(case((N.status == SENT, N.up_to_message_id))),
               func.min(case((and_(N.status == SENDING, N.id != row.id, N.lease_until > now), N.lease_until))))
        .where(N.user_id == row.user_id, N.conversation_id == row.conversation_id)
    ).one()


def _decide(row, now, config):
    """Step 2 for one row: ('cancel', reason) | ('postpone', due_at) | ('send', user, Section)."""
    member = db.session.scalars(
        select(Participant).options(joinedload(Participant.conversation))
        .where(Participant.conversation_id == row.conversation_id, Participant.user_id == row.user_id)
    ).one_or_none()  # its user comes joined (Participant.user)
    if member is None:
        return "cancel", "gone"
    user, conversation = member.user, member.conversation
    if user.is_suspended:
        return "cancel", "suspended"
    if user.notify_email == NOTIFY_NEVER:
        return "cancel", "e-mail turned off"
    if member.left_at is not None:
        return "cancel", "no longer a member"
    if member.muted:
        return "cancel", "muted"
    if conversation.kind == DIRECT:
        other = conversation.seller_id if user.id == conversation.buyer_id else conversation.buyer_id
        if block_state(user.id, other) is not None:
            return "cancel", "blocked"
    last_sent_at, last_up_to, busy = _history(row, now)
    since = max(member.last_read_message_id, last_up_to or 0)
    # In a board, nothing from someone a block stands between (either way round) is quoted.
    barred = select(Block.blocked_id).where(Block.blocker_id == user.id).union(
        select(Block.blocker_id).where(Block.blocked_id == user.id))
    unread = (select(Message).where(Message.conversation_id == conversation.id, Message.id > since,
                                    Message.sender_id != user.id, Message.hidden_at.is_(None),
                                    Message.deleted_at.is_(None),
                                    Message.sender_id.not_in(barred)))
    first = db.session.scalars(unread.order_by(Message.id).limit(MAX_QUOTED)).all()
    if not first:
        return "cancel", "read"
    due = first[0].created_at + timedelta(seconds=config["NOTIFY_DELAY_S"])
    if last_sent_at is not None:
        due = max(due, last_sent_at + timedelta(seconds=config["NOTIFY_BATCH_S"]))
    if user.notify_email == NOTIFY_HOURLY:
        any_sent_at, _ = _last_sent(user.id)
        if any_sent_at is not None:
            due = max(due, any_sent_at + timedelta(seconds=config["NOTIFY_HOURLY_S"]))
    elif user.notify_email == NOTIFY_DAILY:
        any_sent_at, _ = _last_sent(user.id)
        due = max(due, _next_digest(max(any_sent_at or first[0].created_at, first[0].created_at),
                                    config["NOTIFY_DIGEST_HOUR"]))
    if due > now:
        return "postpone", due
    if busy is not None:  # another worker is sending this conversation's e-mail right now
        return "postpone", busy
    if len(first) < MAX_QUOTED:
        count, up_to = len(first), first[-1].id
    else:
        count, up_to = db.session.execute(unread.with_only_columns(func.count(), func.max(Message.id))).one()
    listing = next((m.listing for m in first if m.listing is not None), None) or conversation.last_listing
    return "send", user, Section(conversation, first, count - len(first), listing, [row], up_to, count)


def run_once(now=None, limit=None):
    """One round; returns what it did (a `Round`)."""
    config = current_app.config
    now = now or utcnow()
    done = Round()
    claimed_at = time.monotonic()
    known = set(db.session.identity_map.keys())  # the caller's; what this round loads is let go after it
    rows = claim(now, limit or config["NOTIFY_CLAIM_SIZE"], config)
    digests = set(db.session.scalars(select(User.id).where(
        User.id.in_({row.user_id for row in rows}), User.notify_email == NOTIFY_DAILY))) if rows else set()
    if digests:
        rows = sorted(rows + claim(now, None, config, digest_of=digests),
                      key=lambda c: (c.user_id, c.conversation_id, c.id))
    done.claimed = len(rows)
    decisions, outgoing = [], {}  # user id -> (user, [Section]): a daily digest gathers conversations
    for row in rows:
        try:
            decision = _decide(row, now, config)
        except Exception:  # a row that can't be decided must not stop the others
            log.exception("notification %s could not be prepared", row.id)
            decision = ("fail", "could not be prepared")
        decisions.append((row, decision))
        if decision[0] == "send":
            _, user, section = decision
            key = user.id if user.notify_email == NOTIFY_DAILY else (user.id, section.conversation.id)
            outgoing.setdefault(key, (user, []))[1].append(section)
    # Composed while what they quote is loaded, in the reads' transaction; then it ends.
    emails = []
    for user, sections in outgoing.values():
        rows_of = [row for section in sections for row in section.rows]
        try:
            message = mail.missed_messages(user, sections, [row.id for row in rows_of])
        except Exception:
            log.exception("notification %s could not be composed", rows_of[0].id)
            decisions += [(row, ("fail", "could not be composed")) for row in rows_of]
            continue
        emails.append((message, [(row, section.up_to, section.count) for section in sections
                                 for row in section.rows]))
    db.session.rollback()
    # What was read is in the e-mails now: let it go, so that each commit below (one per e-mail)
    # does not expire it all again.
    for key in set(db.session.identity_map.keys()) - known:
        instance = db.session.identity_map.get(key)
        if instance is not None:
            db.session.expunge(instance)
    for row, decision in decisions:
        if decision[0] == "cancel":
            _finish(row, status=CANCELLED, lease_until=None, last_error=decision[1])
            done.cancelled += 1
        elif decision[0] == "postpone":
            _postpone(row, decision[1])
            done.postponed += 1
        elif decision[0] == "fail":
            _fail(row, now, config, decision[1], done)
    if emails:
        _send(emails, now, config, done, claimed_at)
    return done


def _send(emails, now, config, done, claimed_at):
    connection = mail.connection()
    try:
        connection.open()
    except Exception as exc:  # SMTP down: every e-mail of the round waits for its retry
        log.warning("could not reach the mail server: %s", exc)
        metrics.EMAILS_FAILED.inc(len(emails))
        for _, rows in emails:
            for row, _, _ in rows:
                _fail(row, now, config, f"mail server: {exc}", done)
        return
    # Past half the lease, what is left is handed back rather than sent late: a row whose lease
    # ran out may be claimed and sent by another worker, and must not be sent by this one too.
    try:
        for index, (message, rows) in enumerate(emails):
            if time.monotonic() - claimed_at >= config["NOTIFY_LEASE_S"] / 2:
                for _, later_rows in emails[index:]:
                    for row, _, _ in later_rows:
                        _finish(row, lease_until=utcnow(), attempts=Notification.attempts - 1)
                log.warning("notifications round ran past half its lease; %d e-mails handed back",
                            len(emails) - index)
                break
            try:
                connection.send_messages([message])
            except Exception as exc:
                log.warning("could not send notification %s: %s", rows[0][0].id, exc)
                metrics.EMAILS_FAILED.inc()
                for row, _, _ in rows:
                    if _refused_for_good(exc) and row.attempts >= REFUSALS_BEFORE_GIVING_UP:
                        _finish(row, status=CANCELLED, lease_until=None, last_error=f"refused: {exc}"[:200])
                        done.cancelled += 1
                    else:
                        _fail(row, now, config, str(exc), done)
                connection.close()  # the next one on a fresh connection
                try:
                    connection.open()
                except Exception:
                    pass  # send_messages opens it again, or fails that one too
                continue
            metrics.EMAILS_SENT.inc()
            sent_at = utcnow()
            for row, up_to, count in rows:
                if _finish(row, status=SENT, sent_at=sent_at, lease_until=None, last_error=None,
                           up_to_message_id=up_to, message_count=count):
                    done.sent += 1
    finally:
        connection.close()


def _fail(row, now, config, reason, done):
    wait = min(config["NOTIFY_RETRY_S"] * 2 ** max(row.attempts - 1, 0), config["NOTIFY_RETRY_MAX_S"])
    db.session.execute(
        update(Notification).where(Notification.id == row.id, Notification.claim == row.claim)
        .values(lease_until=now + timedelta(seconds=wait), last_error=reason[:200]))
    db.session.commit()
    done.failed += 1
    done.errors.append(reason)


def _guarded(what, job, failed):
    """`job()`, then the session is removed (a long-running worker starts each job afresh); a
    failure is logged and rolled back and gives `failed`: one job's error never ends the worker."""
    try:
        return job()
    except Exception:
        log.exception("%s failed", what)
        db.session.rollback()
        return failed
    finally:
        db.session.remove()


def expire_bookings(echo=print, now=None):
    """Booking requests and quotes left unanswered expire in the same worker's rounds (what
    `flask --app app bookings expire` does on its own). Several workers at once expire each at
    most once: the change is a conditional UPDATE."""
    from ..bookings.services import expire_due

    expired = _guarded("booking expiry round", lambda: expire_due(now), 0)
    if expired:
        echo(f"bookings: {expired} request(s) or quote(s) expired")
    return expired


# Between two batches of the event prune: sends and the watch get the database in between.
PRUNE_PAUSE_S = 0.05


def prune_events(echo=print, stop=None):
    """The event log's retention (realtime/retention.py), in this worker's rounds: what
    `flask --app app events prune` does on its own. Several workers at once only delete less."""
    from .. import realtime

    config = current_app.config
    removed = _guarded("event prune", lambda: realtime.prune_events(
        config["EVENT_RETENTION_DAYS"], config["STREAM_REPLAY_LIMIT"],
        pause=PRUNE_PAUSE_S, stop=stop.is_set if stop is not None else None), 0)
    if removed:
        echo(f"events: {removed} pruned")
    return removed


def run(stop=None, once=False, echo=print, handle_signals=True):
    """Rounds until `stop` is set (SIGTERM/SIGINT set it when `handle_signals`: its own process),
    or, with `once`, until nothing is due."""
    stop = stop or threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT) if handle_signals else ():
        signal.signal(signum, lambda *_: stop.set())
    poll = current_app.config["NOTIFY_POLL_S"]
    next_prune = time.monotonic()
    while not stop.is_set():
        if time.monotonic() >= next_prune:
            prune_events(echo, stop)
            next_prune = time.monotonic() + current_app.config["EVENT_PRUNE_EVERY_S"]
        expire_bookings(echo)
        done = _guarded("notifications round", run_once, Round())
        if done.claimed:
            echo(f"notifications: {done.sent} sent, {done.cancelled} cancelled, {done.postponed} postponed,"
                 f" {done.failed} to retry")
        if once and done.claimed == 0:
            return
        if done.claimed < current_app.config["NOTIFY_CLAIM_SIZE"]:
            stop.wait(poll)
