"""Reporting, for everyone logged in: the report form and its confirmation. HTTP adapters only.

The form works without JavaScript (a plain POST, then a redirect to the confirmation). What may
be reported is decided by `queries.get_report_target`, through each thing's own guard.
"""
from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.exceptions import HTTPException

from .. import ratelimits
from . import queries, services
from .forms import ReportForm

bp = Blueprint("reports", __name__)


def report_form(target):
    """The report form; for an appeal it offers the appeal as its only reason, already chosen."""
    form = ReportForm()
    if target.is_appeal:
        form.appeal()
    return form


def render_report_form(kind, target_id, form=None, error=None, existing=None):
    target = queries.get_report_target(kind, target_id, current_user)
    return render_template("moderation/report.html", target=target, form=form or report_form(target), error=error,
                           existing=existing)


def report_refused(message):
    """Over the reports limit: the form again, with the message where the button was."""
    args = request.view_args or {}
    return render_report_form(args.get("kind"), args.get("target_id"), error=message)


@bp.route("/report/<any(message, conversation, listing, user):kind>/<int:target_id>", methods=["GET", "POST"])
@login_required
@ratelimits.limit(ratelimits.REPORTS_PER_USER, ratelimits.per_user, refused=report_refused)
def report(kind, target_id):
    target = queries.get_report_target(kind, target_id, current_user)
    form = report_form(target)
    if request.method == "GET":
        return render_report_form(kind, target.id, form, existing=services.open_report_of(current_user.id, kind, target.id))
    if not form.validate_on_submit():
        return render_report_form(kind, target.id, form), 422
    try:
        report = services.file_report(current_user, target, form.reason.data, form.note.data)
    except services.AlreadyReported as exc:
        return render_report_form(kind, target.id, form, existing=exc.report), exc.status
    except services.ModerationError as exc:
        return render_report_form(kind, target.id, form, error=str(exc)), exc.status
    return redirect(url_for(".sent", report_id=report.id), code=303)


@bp.get("/reports/<int:report_id>")
@login_required
def sent(report_id):
    report = queries.report_of(report_id, current_user.id)
    try:
        target = queries.get_report_target(report.kind, report.target_id, current_user)
    except HTTPException:  # gone since, or no longer theirs to see: the confirmation still stands
        target = None
    return render_template("moderation/report_sent.html", report=report, target=target)
