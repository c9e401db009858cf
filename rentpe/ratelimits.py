"""Every rate limit RentPe enforces: the values (with the reason for each), who is counted, and how
a refusal looks.

Values are in the `limits` notation ("10 per 15 minutes"); several joined by ";" all apply. A limit
counts per *address* (`request.remote_addr`: the client, once ProxyFix has read X-Forwarded-For
from as many proxies as `PROXY_FIX_HOPS` trusts), per *account* (an e-mail typed into the log-in
form) or per *user* (the one logged in). The counters live in Redis when `REDIS_URL` is set, so
every worker and host counts together, and in memory otherwise (Flask-Limiter, bound in
`create_app`; `RATELIMIT_ENABLED=false` turns every limit off).

Over a limit the action is refused before its view runs, so nothing is stored, with a 429, a
`Retry-After` header and a readable message where the action was: the view passes `refused=`, a
function that renders its own form (or composer) with the message; without one the answer is the
error page, or for htmx the error fragment.
"""
import math
import re
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import make_response, request
from flask_login import current_user

from . import metrics
from .errors import render_error
from .extensions import limiter
from .models_base import utcnow


@dataclass(frozen=True)
class Rule:
    value: str  # `limits` notation
    what: str  # the action, as in "Too many {what}."

    @property
    def scope(self):
        """The counter's name: one per rule, shared by every view the rule guards."""
        return re.sub(r"\W+", "-", self.what).strip("-")

    def message(self, seconds):
        return f"Too many {self.what}. Please try again in {wait_text(seconds)}."


# Log-in. Only failed attempts count: someone who knows their password is never slowed down.
# Per account, 10 in 15 minutes: room for a person trying every password they ever used, while a
# guesser gets under a thousand tries a day at one account, hopeless against any password sign-up
# accepts. The price is that a stranger can lock an account's log-in for 15 minutes, not longer.
LOGIN_FAILURES_PER_ACCOUNT = Rule("10 per 15 minutes", "failed log-ins for this account")
# Per address, 30 in 15 minutes: one address trying many accounts (credential stuffing) is stopped
# after a few accounts, while a household or an office behind one address still has room.
LOGIN_FAILURES_PER_ADDRESS = Rule("30 per 15 minutes", "failed log-ins from your network")

# Password changes that got the current password wrong, per user: someone who took over an open
# session must not be able to guess the password through this form any faster than at log-in.
PASSWORD_FAILURES_PER_USER = Rule("10 per 15 minutes", "wrong current passwords")

# Sign-up. Accounts created per address: a family or an office signs up a few people in an hour;
# 5 an hour and 20 a day stop scripted account farms without getting in anyone's way.
SIGNUPS_PER_ADDRESS = Rule("5 per hour;20 per day", "new accounts from your network")
# Every sign-up attempt, valid or not, because the form says when an e-mail already has an account:
# 30 an hour is plenty for typos and keeps the form from becoming a directory of our members.
SIGNUP_ATTEMPTS_PER_ADDRESS = Rule("30 per hour", "sign-up attempts from your network")

# Reports. A person who meets a spammer may report a message, the conversation, the listing and
# the seller in a minute; 20 an hour is room for a bad day and stops one account from burying the
# moderators' queue. Every attempt counts, duplicates included: the form says what was reported.
REPORTS_PER_USER = Rule("20 per hour", "reports from you")


# Requests carrying photos (a new listing's form, or "add photos"), per user: each decodes up to
# eight images, the most expensive thing a request can ask of a worker. A seller putting a shop
# online adds a few dozen listings in an evening; 30 an hour and 100 a day let them, and stop one
# account from keeping a worker's decode threads busy all day.
PHOTO_UPLOADS_PER_USER = Rule("30 per hour;100 per day", "photo uploads")


def without_photos():
    """The request carries no photo (a listing saved without one): not counted as an upload."""
    return not any(upload.filename for upload in request.files.getlist("photos"))


# Messages, per user, across every conversation and board: someone chatting briskly sends one every
# few seconds; 20 a minute and 300 an hour leave room for that and stop a script pasting the same
# pitch into every conversation it has.
MESSAGES_PER_USER = Rule("20 per minute;300 per hour", "messages")
# New conversations opened per day by an account younger than NEW_ACCOUNT_DAYS: a real buyer asks a
# handful of sellers a day; a spammer's fresh account would write to all of them.
NEW_CONVERSATIONS_PER_NEW_ACCOUNT = Rule("10 per day", "new conversations today for a new account")
NEW_ACCOUNT_DAYS = 7
# Event boards. Creating one, per user: someone planning a wedding makes one or two; 5 an hour and
# 20 a day leave room for a planner with several events and stop a board per spam target.
BOARDS_PER_USER = Rule("5 per hour;20 per day", "new boards")
# Adding people to boards (every attempt counts: the e-mail form answers the same whether the
# address has an account, and counting only hits would tell): a planner adds a dozen sellers and a
# few friends; 30 an hour and 100 a day, and never a way to probe which addresses are members.
BOARD_INVITES_PER_USER = Rule("30 per hour;100 per day", "board invitations")
# A new account's boards and invitations open conversations with strangers: they count against
# NEW_CONVERSATIONS_PER_NEW_ACCOUNT like contacting a seller does (see boards/routes.py).

# Booking requests, per user (only the ones that went through count): someone planning an event
# asks a few sellers for a few things in an evening; 10 an hour and 30 a day leave room for that
# and stop one account from filling every seller's Requests tab. Answers to requests (accept,
# decline, quote) are not limited: they change a booking that exists, one at a time.
BOOKING_REQUESTS_PER_USER = Rule("10 per hour;30 per day", "booking requests")

# Messages with photos, per user: each decodes up to four images. Showing a hall or a stain takes a
# handful of messages (up to 40 photos); 10 an hour and 40 a day leave room for that and keep one
# account from keeping a worker decoding all day (listings have their own, PHOTO_UPLOADS_PER_USER).
MESSAGE_PHOTOS_PER_USER = Rule("10 per hour;40 per day", "messages with photos")
# Edits and deletions of one's own messages: fixing typos takes a few a minute; 20 a minute and 200
# an hour stop a script rewriting a thread (every edit is an event for every member).
EDITS_PER_USER = Rule("20 per minute;200 per hour", "message edits")
# Reactions (each toggle is an event for every member of the conversation): a person reacting to a
# thread they catch up on taps a few dozen; 60 a minute and 600 an hour stop toggling in a loop.
REACTIONS_PER_USER = Rule("60 per minute;600 per hour", "reactions")

# Opening a live stream (`GET /events`), per user: each tab opens one per page and again every
# 5-10 minutes (and after a drop, with backoff); 60 a minute is a dozen tabs all reloading at once,
# and stops one account from opening streams in a loop (200 at once took every database connection).
STREAM_OPENS_PER_USER = Rule("60 per minute", "live update connections")

# Typing notices: the composer sends at most one every 3 s (20 a minute) while someone types, in
# one conversation; 60 a minute allows three tabs typing at once and nothing like a flood.
TYPING_PER_USER = Rule("60 per minute", "typing updates")


def wait_text(seconds):
    # Rounded: a window's reset time is whole seconds, so "15 minutes" may be 900.4 seconds away.
    minutes = max(1, round(seconds / 60))
    if minutes == 1:
        return "a minute"
    if minutes <= 90:
        return f"{minutes} minutes"
    return f"{round(minutes / 60)} hours"


# Who is counted -------------------------------------------------------------------------------


def per_address():
    return f"address:{request.remote_addr or 'unknown'}"


def per_user():
    return f"user:{current_user.id}" if current_user.is_authenticated else per_address()


# Which answers use up the allowance (default: every request the limit applies to) -------------------


def failures(response):
    """The form came back with an error (4xx) instead of going on."""
    return response.status_code >= 400


def successes(response):
    """The action went through (a redirect onwards)."""
    return response.status_code in (302, 303)


def accepted(response):
    """The action went through: a redirect onwards, or (htmx) its result."""
    return response.status_code < 400


def not_a_new_account():
    return not is_new_account()


def is_new_account():
    """The logged-in user's account is younger than NEW_ACCOUNT_DAYS."""
    if not current_user.is_authenticated:
        return True
    return utcnow() - current_user.created_at < timedelta(days=NEW_ACCOUNT_DAYS)


# The decorator --------------------------------------------------------------------------------


def limit(rule, key, *, count=None, refused=None, exempt_when=None, methods=("POST",)):
    """Enforce `rule` on a view's `methods`, counted per `key()`.

    `count(response)` says which answers use up the allowance (`failures`, `successes`, `accepted`;
    default: all). `refused(message)` renders the answer to a refused request where the action
    was; its status becomes 429. `exempt_when()` true: this request is neither limited nor counted.
    """

    def on_breach(request_limit):
        # The window's reset time is whole seconds: rounded up, "a minute" could say 61.
        seconds = min(max(1.0, request_limit.reset_at - time.time()), request_limit.limit.get_expiry())
        metrics.RATE_LIMITED.labels(rule.scope).inc()
        message = rule.message(seconds)
        if refused is not None:
            body = refused(message)
        else:
            body, _status = render_error(429, message)
        response = make_response(body, 429)
        response.headers["Retry-After"] = str(math.ceil(seconds))
        return response

    # One counter per rule, whichever view it guards (sending counts the same in a conversation,
    # a board or a listing's contact form).
    return limiter.shared_limit(rule.value, rule.scope, key_func=key, methods=list(methods), deduct_when=count,
                                on_breach=on_breach, exempt_when=exempt_when)
