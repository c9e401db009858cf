"""Error pages. htmx requests get the bare fragment so it lands where the action was.

An unexpected exception is never silent: it is logged with its traceback and a request id, and
the error page shows that id, so a person who writes to support with it leads straight to the
log line.
"""
import logging
import secrets

import sqlalchemy.exc
from flask import g, has_request_context, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from . import metrics
from .http import is_htmx

log = logging.getLogger(__name__)

MESSAGES = {
    400: "That request didn't make sense to us.",
    401: "Please log in first.",
    403: "You don't have access to that.",
    404: "We couldn't find that page.",
    405: "That action isn't allowed here.",
    413: "That upload is too large.",
    422: "Some of that input isn't valid.",
    429: "You're doing that too often. Please wait a moment and try again.",
    500: "Something went wrong on our side. Please try again.",
}


def request_id():
    """This request's id (made on first use): shown on its error page, written in its log lines."""
    if not has_request_context():
        return "-"
    rid = g.get("request_id")
    if rid is None:
        rid = g.request_id = secrets.token_hex(8)
    return rid


def render_error(code, message=None, reference=None):
    message = message or MESSAGES.get(code, "Something went wrong.")
    template = "errors/_error.html" if is_htmx() else "errors/error.html"
    return render_template(template, code=code, message=message, reference=reference), code


def handle_http_error(exc):
    if exc.code is None or exc.code < 400:
        return exc
    if exc.response is not None:  # already rendered where the action was (e.g. a rate-limit refusal)
        return exc.response
    message = exc.description if getattr(exc, "rentpe_message", False) else None
    return render_error(exc.code, message)


def handle_csrf_error(exc):
    return render_error(400, "Your form expired or came from elsewhere. Reload the page and try again.")


def handle_unexpected(exc):
    if isinstance(exc, HTTPException):
        return handle_http_error(exc)
    rid = request_id()
    log.error("unexpected error in %s %s (request %s)", request.method, request.path, rid, exc_info=exc)
    try:
        body, code = render_error(InternalServerError.code, reference=rid)
    except Exception:  # the page itself failed (its template, or the database it needs)
        log.exception("the error page failed too (request %s)", rid)
        body, code = UNEXPECTED_BODY.format(rid=rid), InternalServerError.code
    return body, code, {"X-Request-ID": rid}


UNEXPECTED_BODY = ('<!doctype html><meta charset="utf-8"><title>Something went wrong</title>'
                   "<p>Something went wrong on our side. Please try again.</p>"
                   "<p>If it happens again, write to support and quote the reference {rid}.</p>")


# Every pooled database connection is in use and none came free in time (a burst of streams
# reconnecting at once, say). The request was not served, so it can be retried as it was: 503 with
# Retry-After, which browsers' streams (htmx) retry with backoff. The answer is static: rendering a
# page would need the database again.
OVERLOADED_RETRY_SECONDS = 2
OVERLOADED_BODY = ('<!doctype html><meta charset="utf-8"><title>RentPe is busy</title>'
                   "<p>RentPe is very busy right now. Please try again in a moment.</p>")


def handle_overloaded(exc):
    from .extensions import db

    db.session.remove()
    if isinstance(exc, sqlalchemy.exc.TimeoutError):
        metrics.POOL_TIMEOUTS.inc()
    log.warning("database unavailable for this request (no free connection, or it dropped): %s", exc)
    body = "" if request.path.startswith("/events") else OVERLOADED_BODY
    return body, 503, {"Retry-After": str(OVERLOADED_RETRY_SECONDS), "Content-Type": "text/html; charset=utf-8"}


def handle_connection_lost(exc):
    """The database connection dropped under the request (a database restart between its last use
    and this one): the pool has dropped every connection and reconnects on the next checkout. The
    request can be retried as it was (a send carries its client key), so: 503 with Retry-After."""
    if not exc.connection_invalidated:
        raise exc
    return handle_overloaded(exc)


def init_app(app):
    # Flask's log handler on the `rentpe` logger (made on first use): every module's logger is
    # below it, so its errors reach the server's error log (gunicorn's stderr) whatever the
    # process configured.
    app.logger  # noqa: B018
    app.register_error_handler(sqlalchemy.exc.TimeoutError, handle_overloaded)
    app.register_error_handler(sqlalchemy.exc.DBAPIError, handle_connection_lost)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_error)
    # Tests let exceptions reach them (a test that wants the page sets HANDLE_UNEXPECTED_ERRORS);
    # the debugger wants them too.
    if app.config.get("HANDLE_UNEXPECTED_ERRORS", not app.debug and not app.testing):
        app.register_error_handler(Exception, handle_unexpected)
