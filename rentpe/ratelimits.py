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
import time
from dataclasses import dataclass

from flask import make_response, request
from flask_login import current_user

from .errors import render_error
from .extensions import limiter


@dataclass(frozen=True)
class Rule:
    value: str  # `limits` notation
    what: str  # the action, as in "Too many {what}."

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


# The decorator --------------------------------------------------------------------------------


def limit(rule, key, *, count=None, refused=None, methods=("POST",)):
    """Enforce `rule` on a view's `methods`, counted per `key()`.

    `count(response)` says which answers use up the allowance (`failures`, `successes`; default:
    all). `refused(message)` renders the answer to a refused request where the action was; its
    status becomes 429.
    """

    def on_breach(request_limit):
        seconds = max(1.0, request_limit.reset_at - time.time())
        message = rule.message(seconds)
        if refused is not None:
            body = refused(message)
        else:
            body, _status = render_error(429, message)
        response = make_response(body, 429)
        response.headers["Retry-After"] = str(math.ceil(seconds))
        return response

    return limiter.limit(rule.value, key_func=key, methods=list(methods), deduct_when=count, on_breach=on_breach)
