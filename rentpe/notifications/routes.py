"""One-click unsubscribe (RFC 8058: no log-in, a signed token) and, in development only, the page
listing the e-mails written as .eml files."""
from email import policy
from email.parser import BytesParser

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..chat.queries import get_conversation_for_participant

from ..errors import render_error
from ..extensions import csrf
from . import mail, services

bp = Blueprint("notifications", __name__)


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # a mail client's one-click POST carries no form token: the signed token is the proof
def unsubscribe(token):
    """GET: a page with the button (links are fetched by scanners; only a POST changes anything).
    POST (the button, or the mail client's `List-Unsubscribe=One-Click`): e-mail off for the
    person the token names, and only for them."""
    user = services.user_for_token(token)
    if user is None:
        return render_error(400, "This unsubscribe link is not valid (or the account's e-mail address changed). "
                                 "Log in to choose your e-mail settings on your account page.")
    if request.method == "POST":
        services.unsubscribe(user)
        return render_template("notifications/unsubscribed.html", user=user)
    return render_template("notifications/unsubscribe.html", user=user, token=token)


@bp.post("/conversations/<int:conversation_id>/mute")
@login_required
def mute(conversation_id):
    """Mute (muted=1) or unmute (muted=0) the conversation's e-mail for the viewer only."""
    conversation = get_conversation_for_participant(conversation_id, people=False)
    muted = request.form.get("muted")
    if muted not in ("0", "1"):
        abort(400)
    services.set_muted(conversation.id, current_user.id, muted == "1")
    flash("No more e-mail from this conversation." if muted == "1" else "E-mail from this conversation is on again.",
          "info")
    if conversation.is_board:
        return redirect(url_for("boards.show", board_id=conversation.id), code=303)
    return redirect(url_for("chat.conversation", conversation_id=conversation.id), code=303)


def _dev_only():
    if current_app.config["ENV_NAME"] != "development" or not mail.writes_files():
        abort(404)


def _read(path):
    with open(path, "rb") as handle:
        return BytesParser(policy=policy.default).parse(handle)


@bp.get("/dev/mail")
def dev_mail():
    """The e-mails written under instance/mail/ (development without MAIL_URL)."""
    _dev_only()
    shown = []
    for path in mail.mail_files()[:100]:
        message = _read(path)
        shown.append({"name": path.name, "subject": message["subject"], "to": message["to"], "date": message["date"]})
    return render_template("notifications/dev_mail.html", messages=shown,
                           folder=current_app.config["MAIL_FILE_PATH"])


@bp.get("/dev/mail/<name>")
def dev_mail_message(name):
    """One e-mail: its headers, its HTML part as a mail client shows it (in a frame) and its text part."""
    _dev_only()
    path = mail.mail_file(name)
    if path is None:
        abort(404)
    message = _read(path)
    text = message.get_body(preferencelist=("plain",))
    return render_template("notifications/dev_mail_message.html", name=name, message=message,
                           text=text.get_content() if text is not None else "",
                           has_html=message.get_body(preferencelist=("html",)) is not None)


@bp.get("/dev/mail/<name>/html")
def dev_mail_html(name):
    """The HTML part alone, for the frame of the page above: its inline styles allowed on this
    response only, no script, nothing loaded from elsewhere, framed only by our own pages."""
    _dev_only()
    path = mail.mail_file(name)
    part = _read(path).get_body(preferencelist=("html",)) if path is not None else None
    if part is None:
        abort(404)
    return part.get_content(), 200, {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
                                   "form-action 'none'; frame-ancestors 'self'",
        "X-Frame-Options": "SAMEORIGIN",
    }
