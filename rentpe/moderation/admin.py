"""The moderators' pages under /admin: the reports queue, flagged messages, a report's context,
the actions, people's histories and the audit log. HTTP adapters only.

`require_moderator` is the one guard, run before every view of this blueprint: anonymous
visitors are sent to log in, everyone who isn't a moderator gets 404 (the admin pages don't
announce themselves). Actions are plain POST forms with a reason; they redirect back to where
they came from, or show the refusal there.
"""
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..chat import photos as chat_photos
from ..chat.models import Message, MessagePhoto
from ..errors import render_error
from ..extensions import db
from ..http import safe_next
from ..listings.models import Listing
from ..paging import page_arg
from . import queries, services
from .forms import ActionForm, ResolveForm
from .models import KINDS, REASON_LABELS, Report

bp = Blueprint("admin", __name__, url_prefix="/admin")
MAX_PAGE = 10_000


@bp.before_request
def require_moderator():
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    if not current_user.is_moderator:
        abort(404)
    return None


def id_field(value):
    value = (value or "").strip()
    return int(value) if value.isdecimal() and len(value) < 10 else None


@bp.get("/")
def index():
    return redirect(url_for(".reports"))


@bp.get("/reports")
def reports():
    query = queries.QueueFilter.from_args(request.args, page_arg(MAX_PAGE))
    return render_template("moderation/queue.html", query=query, page=queries.report_queue(query),
                           counts=queries.open_counts(), kinds=KINDS, reasons=REASON_LABELS)


@bp.get("/flagged")
def flagged():
    return render_template("moderation/flagged.html", page=queries.flagged_messages(page_arg(MAX_PAGE)),
                           counts=queries.open_counts())


@bp.post("/flagged/<int:message_id>/review")
def review_flagged(message_id):
    report = services.review_flagged_message(queries.get_flagged_message(message_id), current_user)
    return redirect(url_for(".report", report_id=report.id), code=303)


@bp.get("/reports/<int:report_id>")
def report(report_id):
    return render_report(queries.get_report(report_id))


def render_report(report, status=200, error=None):
    return render_template("moderation/report_detail.html", context=queries.report_context(report),
                           actions=queries.actions_on(report), form=ActionForm(formdata=None),
                           resolve_form=ResolveForm(formdata=None), error=error), status


@bp.get("/reports/<int:report_id>/conversation")
def reported_conversation(report_id):
    report = queries.get_report(report_id)
    if report.conversation_id is None:
        abort(404)
    services.log_conversation_opened(report, current_user)
    return render_template("moderation/conversation.html", report=report,
                           context=queries.report_context(report),
                           messages=queries.conversation_messages(report.conversation_id))


@bp.get("/reports/<int:report_id>/photos/<size>/<key>")
def report_photo(report_id, size, key):
    """A photo sent in the reported conversation (a chat photo is served to its participants only,
    chat/routes.py): moderators see it through the report, even after a hide or a deletion."""
    report = queries.get_report(report_id)
    if report.conversation_id is None or chat_photos.path_for(key, size) is None:
        abort(404)
    photo = db.session.scalar(db.select(MessagePhoto).where(MessagePhoto.key == key))
    message = db.session.get(Message, photo.message_id) if photo is not None else None
    if message is None or message.conversation_id != report.conversation_id:
        abort(404)
    return chat_photos.send(key, size, max_age=0)


@bp.post("/reports/<int:report_id>/resolve")
def resolve(report_id):
    report = queries.get_report(report_id)
    form = ResolveForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        services.resolve_report(report, current_user, form.note.data)
    except services.ModerationError as exc:
        return render_report(report, exc.status, error=str(exc))
    flash("The report is resolved.", "success")
    return redirect(url_for(".report", report_id=report.id), code=303)


def act(action, target, done, user_page=None):
    """Run a moderator action from an ActionForm; back to its report (or the user's page)."""
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    report_id = id_field(form.report_id.data)
    report = db.session.get(Report, report_id) if report_id else None
    try:
        action(target, current_user, form.reason.data, report=report)
    except services.ModerationError as exc:
        if report is not None:
            return render_report(report, exc.status, error=str(exc))
        if user_page is not None:
            return render_user(user_page, exc.status, error=str(exc))
        return render_error(exc.status, str(exc))
    flash(done, "success")
    if report is not None:
        fallback = url_for(".report", report_id=report.id)
    else:
        fallback = url_for(".user", user_id=user_page.id) if user_page is not None else url_for(".audit")
    return redirect(safe_next(fallback), code=303)


@bp.post("/messages/<int:message_id>/hide")
def hide_message(message_id):
    message = db.session.get(Message, message_id) or abort(404)
    return act(services.hide_message_for_moderation, message, "The message is hidden for everyone.")


LISTING_ACTIONS = {
    "pause": (services.pause_listing_for_moderation, "The listing is paused."),
    "remove": (services.remove_listing_for_moderation, "The listing is removed."),
    "lift": (services.lift_listing_decision, "The decision is lifted: the listing is back with its seller, paused."),
}


@bp.post("/listings/<int:listing_id>/<any(pause, remove, lift):action>")
def listing_action(listing_id, action):
    listing = db.session.get(Listing, listing_id) or abort(404)
    change, done = LISTING_ACTIONS[action]
    return act(change, listing, done)


@bp.post("/boards/<int:board_id>/members/<int:user_id>/remove")
def remove_board_member(board_id, user_id):
    member = queries.get_board_member(board_id, user_id)
    return act(services.remove_board_member_for_moderation, member, "They are removed from the board.")


@bp.get("/users/<int:user_id>")
def user(user_id):
    return render_user(queries.get_user(user_id))


def render_user(person, status=200, error=None):
    return render_template("moderation/user.html", history=queries.person_history(person.id),
                           form=ActionForm(formdata=None), error=error), status


USER_ACTIONS = {
    "suspend": (services.suspend_user, "The account is suspended: its sessions and streams have ended."),
    "reinstate": (services.reinstate_user, "The account is reinstated."),
}


@bp.post("/users/<int:user_id>/<any(suspend, reinstate):action>")
def user_action(user_id, action):
    person = queries.get_user(user_id)
    change, done = USER_ACTIONS[action]
    return act(change, person, done, user_page=person)


@bp.get("/audit")
def audit():
    return render_template("moderation/audit.html", page=queries.audit_log(page_arg(MAX_PAGE)))
