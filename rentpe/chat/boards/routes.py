"""Board pages and the owner's and members' actions. HTTP adapters only.

Messages, read cursors, typing and history paging use chat's routes (`/conversations/<id>/…`)
unchanged: a board is a conversation. Actions that change a board are plain forms that redirect
back (they work without JavaScript; every open tab, the actor's included, is updated by the
stream). Destructive ones go through a confirmation page, so no live fragment ever needs to carry
a CSRF token (fragments are rendered in someone else's request).
"""
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ... import ratelimits, realtime
from ...accounts.services import get_user_by_email
from ...http import int_arg, is_htmx
from ...listings.guards import get_listing_for_viewer
from .. import events as chat_events
from .. import queries as chat_queries
from .. import services as chat_services
from ..models import GROUP, ORGANISER, SELLER
from ..routes import page_of
from . import queries, services
from .forms import BoardForm, InviteForm, ShareForm
from .queries import BoardGone, get_board_for_member, get_board_for_owner, get_invitation_for_invitee

bp = Blueprint("boards", __name__)


@bp.errorhandler(BoardGone)
def board_gone(exc):
    template = "chat/_board_gone.html" if is_htmx() else "chat/board_gone.html"
    return render_template(template, board=exc.board, reason=exc.departure.left_reason), 403


@bp.get("/boards/new")
@login_required
def new():
    return render_template("chat/board_new.html", form=BoardForm())


def create_refused(message):
    return render_template("chat/board_new.html", form=BoardForm(), error=message)


@bp.post("/boards")
@login_required
@ratelimits.limit(ratelimits.BOARDS_PER_USER, ratelimits.per_user, count=ratelimits.successes, refused=create_refused)
@ratelimits.limit(ratelimits.NEW_CONVERSATIONS_PER_NEW_ACCOUNT, ratelimits.per_user, count=ratelimits.successes,
                  refused=create_refused, exempt_when=ratelimits.not_a_new_account)
def create():
    form, error = BoardForm(), None
    if form.validate_on_submit():
        try:
            board = services.create_board(current_user, form.title.data, form.event_date.data, form.city.data)
        except services.BoardError as exc:
            error = str(exc)
        else:
            return redirect(url_for("boards.show", board_id=board.id), code=303)
    return render_template("chat/board_new.html", form=form, error=error), 422


@bp.get("/boards/<int:board_id>")
@login_required
def show(board_id):
    board = get_board_for_member(board_id)
    page = chat_queries.window(board.id, before=int_arg("before"), after=int_arg("after"), around=int_arg("around"))
    messages, has_older, before = page.messages, page.has_older, page.before
    if page.is_newest and messages:
        # As for a private conversation; the others' open pages see that I have seen it.
        if chat_services.mark_read(board, current_user, messages[-1].id):
            chat_events.send_seen_by(board, current_user.id)
    return render_board(board, messages=messages, has_older=has_older, before=before, has_newer=page.has_newer)


@page_of(GROUP)
def render_board(board, status=200, messages=None, has_older=False, before=None, **extra):
    if messages is None:
        messages, has_older = chat_queries.history(board.id)
    members = chat_queries.members(board)
    share = ShareForm(formdata=None, client_key=chat_services.new_client_key())
    share.listing_id.choices = [(l.id, l.title) for l in queries.shareable_listings(board, current_user.id)]
    return render_template(
        "chat/board.html", conversation=board, board=board, messages=messages, has_older=has_older, before=before,
        me=board.participant(current_user.id), members=members,
        online_ids=realtime.presence.online([p.user_id for p in members]), receipt=chat_queries.seen_by(board),
        client_key=chat_services.new_client_key(), share=share, **extra,
    ), status


def share_refused(message):
    return render_board(get_board_for_member(request.view_args["board_id"]), share_error=message)[0]


@bp.post("/boards/<int:board_id>/share")
@login_required
@ratelimits.limit(ratelimits.MESSAGES_PER_USER, ratelimits.per_user, count=ratelimits.accepted, refused=share_refused)
def share(board_id):
    board = get_board_for_member(board_id)
    form = ShareForm()
    if not form.validate_on_submit():
        abort(400)
    listing = get_listing_for_viewer(form.listing_id.data)
    try:
        services.check_shareable(listing)
        chat_services.send_message(board, current_user, (form.body.data or "").strip() or listing.title,
                                   form.client_key.data, listing_id=listing.id)
    except chat_services.ChatError as exc:
        return render_board(board, status=exc.status, share_error=str(exc))
    return redirect(url_for("boards.show", board_id=board.id), code=303)


@bp.get("/boards/<int:board_id>/manage")
@login_required
def manage(board_id):
    board = get_board_for_owner(board_id)
    return render_manage(board, BoardForm(obj=board), invite_form(board, formdata=None))


def invite_form(board, **kwargs):
    form = InviteForm(**kwargs)
    form.candidates = queries.invite_candidates(board, current_user.id)
    form.sellers.choices = [(c.user.id, c.user.display_name) for c in form.candidates]
    return form


def render_manage(board, details, invite, status=200, **errors):
    return render_template("chat/board_manage.html", board=board, details=details, invite=invite,
                           members=chat_queries.members(board), **errors), status


@bp.post("/boards/<int:board_id>/details")
@login_required
def update(board_id):
    board = get_board_for_owner(board_id)
    form = BoardForm()
    if form.validate_on_submit():
        try:
            services.update_board(board, current_user, form.title.data, form.event_date.data, form.city.data)
        except services.BoardError as exc:
            return render_manage(board, form, invite_form(board, formdata=None), exc.status, details_error=str(exc))
        return redirect(url_for("boards.show", board_id=board.id), code=303)
    return render_manage(board, form, invite_form(board, formdata=None), 422)


def invite_refused(message):
    board = get_board_for_owner(request.view_args["board_id"])
    return render_manage(board, BoardForm(obj=board), invite_form(board), invite_error=message)[0]


INVITED = "If someone on RentPe uses {email}, they'll find your invitation in their inbox and can accept it."


@bp.post("/boards/<int:board_id>/members")
@login_required
@ratelimits.limit(ratelimits.BOARD_INVITES_PER_USER, ratelimits.per_user, refused=invite_refused)
@ratelimits.limit(ratelimits.NEW_CONVERSATIONS_PER_NEW_ACCOUNT, ratelimits.per_user, refused=invite_refused,
                  exempt_when=ratelimits.not_a_new_account)
def invite(board_id):
    """Sellers the owner talks with are added at once; an e-mail address gets an invitation, and
    the answer is the same whether or not anyone uses it."""
    board = get_board_for_owner(board_id)
    form = invite_form(board)
    if not form.validate_on_submit():
        return render_manage(board, BoardForm(obj=board), form, 422)
    chosen = {c.user.id: c.user for c in form.candidates}
    sellers = [(chosen[uid], SELLER) for uid in form.sellers.data]
    if not sellers and not form.email.data:
        return render_manage(board, BoardForm(obj=board), form, 422, invite_error="Choose a seller or enter an e-mail address.")
    try:
        services.add_members(board, current_user, sellers)
        if form.email.data:
            services.invite_by_email(board, current_user, get_user_by_email(form.email.data), ORGANISER)
    except services.BoardError as exc:
        return render_manage(board, BoardForm(obj=board), form, exc.status, invite_error=str(exc))
    if form.email.data:
        flash(INVITED.format(email=form.email.data.strip()), "info")
    return redirect(url_for("boards.manage", board_id=board.id), code=303)


# Invitations: the invited person accepts or declines -------------------------------------------

@bp.get("/boards/invitations")
@login_required
def invitations():
    return render_template("chat/board_invitations.html", invitations=queries.pending_invitations(current_user.id))


@bp.post("/boards/<int:board_id>/invitation/<any(accept, decline):answer>")
@login_required
def answer_invitation(board_id, answer):
    invitation = get_invitation_for_invitee(board_id)
    if answer == "decline":
        services.decline_invitation(invitation)
        flash("Invitation declined.", "info")
        return redirect(url_for("boards.invitations"), code=303)
    try:
        board = services.accept_invitation(invitation, current_user)
    except services.BoardError as exc:
        flash(str(exc), "error")
        return redirect(url_for("boards.invitations"), code=303)
    return redirect(url_for("boards.show", board_id=board.id), code=303)


@bp.app_template_global("board_invitation_count")
def board_invitation_count():
    return queries.pending_invitation_count(current_user.id) if current_user.is_authenticated else 0


# Confirmed actions: GET shows the question, POST does it -------------------------------------

def confirm(board, question, action, button, message=None):
    return render_template("chat/board_confirm.html", board=board, question=question, action=action,
                           button=button, message=message)


def refused(board, exc):
    return render_template("chat/board_confirm.html", board=board, question=None, error=str(exc)), exc.status


@bp.route("/boards/<int:board_id>/members/<int:user_id>/remove", methods=["GET", "POST"])
@login_required
def remove_member(board_id, user_id):
    board = get_board_for_owner(board_id)
    member = board.participant(user_id)
    if member is None:
        abort(404)
    if request.method == "GET":
        return confirm(board, f"Remove {member.user.display_name} from {board.title}?", request.path, "Remove")
    try:
        services.remove_member(board, current_user, user_id)
    except services.BoardError as exc:
        return refused(board, exc)
    return redirect(url_for("boards.show", board_id=board.id), code=303)


@bp.route("/boards/<int:board_id>/leave", methods=["GET", "POST"])
@login_required
def leave(board_id):
    board = get_board_for_member(board_id)
    if request.method == "GET":
        return confirm(board, f"Leave {board.title}? You won't see its messages any more.", request.path, "Leave")
    try:
        services.leave_board(board, current_user)
    except services.BoardError as exc:
        return refused(board, exc)
    return redirect(url_for("chat.inbox"), code=303)


@bp.route("/boards/<int:board_id>/close", methods=["GET", "POST"])
@login_required
def close(board_id):
    board = get_board_for_owner(board_id)
    if request.method == "GET":
        return confirm(board, f"Close {board.title}? Members keep the history, nobody can write any more.",
                       request.path, "Close board")
    services.close_board(board, current_user)
    return redirect(url_for("boards.show", board_id=board.id), code=303)


@bp.route("/boards/<int:board_id>/messages/<int:message_id>/remove", methods=["GET", "POST"])
@login_required
def remove_message(board_id, message_id):
    board = get_board_for_owner(board_id)
    message = chat_queries.message_in(board.id, message_id)
    if message is None or message.hidden_at is not None:
        abort(404)
    if request.method == "GET":
        return confirm(board, "Remove this message for everyone in the board?", request.path, "Remove message", message)
    services.remove_message(board, current_user, message)
    return redirect(url_for("boards.show", board_id=board.id, _anchor=f"msg-{message.id}"), code=303)

