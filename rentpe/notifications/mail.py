"""Mail: where it goes (MAIL_URL, else .eml files under instance/mail/), what a missed-message
e-mail looks like (multipart text + HTML from Jinja templates), and the signed one-click
unsubscribe token (RFC 8058) every e-mail carries.
"""
import os
import re
import secrets
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app, render_template, url_for
from flask_mailman import EmailMultiAlternatives
from flask_mailman.backends.base import BaseEmailBackend
from itsdangerous import BadSignature, URLSafeSerializer

from ..extensions import mail as mailman

UNSUBSCRIBE_SALT = "rentpe-unsubscribe"
_EML_NAME = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{16}\.eml$")


class MailConfigError(ValueError):
    pass


def settings_from_url(url):
    """Flask-Mailman settings for `MAIL_URL` (smtp://user:pass@host:587?tls=1, smtps://…)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise MailConfigError(f"MAIL_URL must look like smtp://user:pass@host:587?tls=1, got {url!r}")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return {
        "MAIL_BACKEND": "smtp",
        "MAIL_SERVER": parts.hostname,
        "MAIL_PORT": parts.port or (465 if parts.scheme == "smtps" else 25),
        "MAIL_USERNAME": unquote(parts.username) if parts.username else None,
        "MAIL_PASSWORD": unquote(parts.password) if parts.password else None,
        "MAIL_USE_SSL": parts.scheme == "smtps",
        "MAIL_USE_TLS": parts.scheme == "smtp" and query.get("tls", "0").lower() in ("1", "true", "yes"),
        "MAIL_TIMEOUT": int(query.get("timeout", "10")),
    }


def init_app(app):
    if app.config.get("MAIL_URL"):
        app.config.update(settings_from_url(app.config["MAIL_URL"]))
    else:
        app.config["MAIL_BACKEND"] = "rentpe.notifications.mail.EmailBackend"
    app.config["MAIL_DEFAULT_SENDER"] = app.config["MAIL_FROM"]
    mailman.init_app(app)


def writes_files(app=None):
    return not (app or current_app).config.get("MAIL_URL")


class EmlBackend(BaseEmailBackend):
    """Each e-mail as an .eml file (the bytes an SMTP server would get) under MAIL_FILE_PATH,
    written under a temporary name and renamed, so a reader never sees half of one."""

    def send_messages(self, email_messages):
        folder = Path(current_app.config["MAIL_FILE_PATH"])
        folder.mkdir(parents=True, exist_ok=True)
        for message in email_messages:
            name = f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(8)}.eml"
            partial = folder / f".{name}.part"
            partial.write_bytes(message.message().as_bytes(linesep="\r\n"))
            os.replace(partial, folder / name)
        return len(email_messages)


# Flask-Mailman takes a dotted path ending in the class name EmailBackend.
EmailBackend = EmlBackend


def connection():
    return mailman.get_connection()


def mail_files():
    """The .eml files written so far, newest first (the development mail page)."""
    folder = Path(current_app.config["MAIL_FILE_PATH"])
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if _EML_NAME.match(p.name)), key=lambda p: p.name, reverse=True)


def mail_file(name):
    if not _EML_NAME.match(name or ""):
        return None
    path = Path(current_app.config["MAIL_FILE_PATH"]) / name
    return path if path.is_file() else None


# The one-click unsubscribe token ---------------------------------------------------------------


def _serializer():
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=UNSUBSCRIBE_SALT)


def unsubscribe_token(user):
    """Names the person (and the address it was sent to, so a token outlives no change of it)."""
    return _serializer().dumps([user.id, user.email])


def user_id_for_token(token, load_user):
    """The user the token was made for, or None (forged, garbled, or the address changed)."""
    try:
        user_id, email = _serializer().loads(token or "")
    except (BadSignature, ValueError, TypeError):
        return None
    user = load_user(user_id)
    return user if user is not None and user.email == email else None


# Composing -------------------------------------------------------------------------------------


def public_url(endpoint, **values):
    return current_app.config["PUBLIC_URL"] + url_for(endpoint, **values)


def missed_messages(user, sections, notification_ids):
    """The e-mail of one or more conversations' unread messages (`worker.Section`s)."""
    with current_app.test_request_context("/", base_url=current_app.config["PUBLIC_URL"]):
        token = unsubscribe_token(user)
        unsubscribe = public_url("notifications.unsubscribe", token=token)
        context = {"user": user, "sections": sections, "unsubscribe_url": unsubscribe,
                   "settings_url": public_url("accounts.account", _anchor="notifications"),
                   "link_to": _link_to, "digest": len(sections) > 1, "public_url": public_url}
        subject = _subject(sections)
        text = render_template("mail/missed.txt", subject=subject, **context)
        html = render_template("mail/missed.html", subject=subject, **context)
    message = EmailMultiAlternatives(
        subject=subject, body=text, to=[user.email],
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
            "X-RentPe-Notification": ",".join(str(i) for i in notification_ids),
        },
    )
    message.attach_alternative(html, "text/html")
    return message


def _link_to(conversation):
    if conversation.kind == "group":
        return public_url("boards.show", board_id=conversation.id)
    return public_url("chat.conversation", conversation_id=conversation.id)


def _subject(sections):
    if len(sections) > 1:
        count = sum(s.count for s in sections)
        return f"Your RentPe digest: {count} unread message{'s' if count != 1 else ''} in {len(sections)} conversations"
    section = sections[0]
    names = []
    for message in section.messages:
        if message.sender.display_name not in names:
            names.append(message.sender.display_name)
    if section.conversation.kind == "group":
        return f"New messages in {section.conversation.title}"
    plural = "s" if section.count != 1 else ""
    return f"{section.count} new message{plural} from {names[0]}"
