"""Inbox, conversation pages, sending, read cursor, typing. HTTP adapters only."""
from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from .. import ratelimits, realtime
from ..http import int_arg, is_htmx
from ..listings.guards import get_listing_for_viewer
from . import events, queries, services
from .queries import get_conversation_for_participant

bp = Blueprint("chat", __name__)


def render_conversation(conversation, before=None, status=200, **composer):
    """The conversation page; `composer` (error, body) refills the composer after a refused send."""
    messages, has_older = queries.history(conversation.id, before=before)
    counterpart = conversation.others(current_user.id)[0].user
    if before is None and messages:
        # Opening the conversation shows the newest messages: they are read (and delivered).
        services.mark_read(conversation, current_user, messages[-1].id)
    return render_template(
        "chat/conversation.html", conversation=conversation, messages=messages, has_older=has_older,
        before=before, me=conversation.participant(current_user.id),
        counterpart=counterpart, online_ids=realtime.presence.online([counterpart.id]),
        counterpart_last_seen=realtime.presence.last_seen(counterpart.id),
        receipt=queries.receipt_for(conversation, current_user.id),
        client_key=services.new_client_key(), **composer,
    ), status


def refused_send(conversation, error, status):
    """A send that was refused, shown in the composer: the fragment for htmx, else the whole page
    (without JavaScript), with what was typed kept."""
    body = request.form.get("body", "")[:services.MAX_BODY_CHARS * 2]
    if is_htmx():
        return render_template("chat/_composer.html", conversation=conversation, error=error, body=body,
                               client_key=request.form.get("client_key", "")[:64]), status
    render_page = PAGES.get(conversation.kind, render_conversation)
    return render_page(conversation, status=status, error=error, body=body)


# The whole page of a conversation of another kind than private, for a refused send without
# JavaScript. Boards sit above this module (boards/routes.py) and add theirs with `page_of`: this
# module never imports them.
PAGES = {}


def page_of(kind):
    """Decorator: `render(conversation, status=…, error=…, body=…)` renders the page of `kind`."""
    def add(render):
        PAGES[kind] = render
        return render
    return add


def send_refused(message):
    """Over the message limit (ratelimits.MESSAGES_PER_USER)."""
    conversation = get_conversation_for_participant(request.view_args["conversation_id"])
    return refused_send(conversation, message, 429)[0]


def contact_refused(message):
    """Over a limit on messages or on new conversations: said on the listing's contact form."""
    listing = get_listing_for_viewer(request.view_args["listing_id"])
    return render_template("listings/show.html", listing=listing, contact_error=message,
                           contact_body=request.form.get("body", "")[:services.MAX_BODY_CHARS * 2])


def opens_no_new_conversation():
    """The limit on new conversations is for new accounts, and for opening one: writing again to
    a seller one already talks with is not."""
    return not ratelimits.is_new_account() or queries.has_direct_conversation_about(
        current_user.id, request.view_args["listing_id"])


@bp.post("/listings/<int:listing_id>/contact")
@login_required
@ratelimits.limit(ratelimits.MESSAGES_PER_USER, ratelimits.per_user, count=ratelimits.accepted,
                  refused=contact_refused)
@ratelimits.limit(ratelimits.NEW_CONVERSATIONS_PER_NEW_ACCOUNT, ratelimits.per_user, count=ratelimits.accepted,
                  refused=contact_refused, exempt_when=opens_no_new_conversation)
def contact(listing_id):
    listing = get_listing_for_viewer(listing_id)
    body = request.form.get("body")
    try:
        message, _ = services.contact_seller(current_user, listing, body, request.form.get("client_key"))
    except services.ChatError as exc:
        return render_template("listings/show.html", listing=listing, contact_error=str(exc),
                               contact_body=body), exc.status
    return redirect(url_for("chat.conversation", conversation_id=message.conversation_id), code=303)


@bp.get("/inbox")
@login_required
def inbox():
    return render_template("chat/inbox.html", rows=queries.inbox_rows(current_user.id))


@bp.get("/dashboard/inbox")
@login_required
def seller_inbox():
    if not current_user.is_seller:
        abort(403)
    return render_template("chat/seller_inbox.html", listing_id=int_arg("listing"))


@bp.get("/conversations/<int:conversation_id>")
@login_required
def conversation(conversation_id):
    conversation = get_conversation_for_participant(conversation_id)
    before = int_arg("before")
    if conversation.is_board:
        return redirect(url_for("boards.show", board_id=conversation.id, before=before))
    return render_conversation(conversation, before=before)


@bp.get("/conversations/<int:conversation_id>/messages")
@login_required
def older_messages(conversation_id):
    conversation = get_conversation_for_participant(conversation_id)
    before = int_arg("before")
    if before is None or not is_htmx():
        return redirect(url_for("chat.conversation", conversation_id=conversation.id, before=before))
    messages, has_older = queries.history(conversation.id, before=before)
    return render_template("chat/older.html", conversation=conversation, messages=messages, has_older=has_older)


@bp.post("/conversations/<int:conversation_id>/messages")
@login_required
@ratelimits.limit(ratelimits.MESSAGES_PER_USER, ratelimits.per_user, count=ratelimits.accepted, refused=send_refused)
def send(conversation_id):
    conversation = get_conversation_for_participant(conversation_id)
    try:
        message, _ = services.send_message(conversation, current_user, request.form.get("body"),
                                           request.form.get("client_key"))
    except services.ChatError as exc:
        return refused_send(conversation, str(exc), exc.status)
    if not is_htmx():
        return redirect(url_for("chat.conversation", conversation_id=conversation.id), code=303)
    return render_template("chat/sent.html", conversation=conversation, message=message,
                           receipt=queries.receipt_for(conversation, current_user.id),
                           client_key=services.new_client_key())


@bp.post("/conversations/<int:conversation_id>/read")
@login_required
def read(conversation_id):
    conversation = get_conversation_for_participant(conversation_id)
    up_to = int_arg("up_to")
    if up_to is None:
        abort(400)
    services.mark_read(conversation, current_user, up_to)
    return "", 204


@bp.post("/conversations/<int:conversation_id>/typing")
@login_required
@ratelimits.limit(ratelimits.TYPING_PER_USER, ratelimits.per_user, refused=lambda message: "")
def typing(conversation_id):
    conversation = get_conversation_for_participant(conversation_id)
    events.send_typing(conversation, current_user)
    return "", 204


@bp.app_template_filter("linkify")
def linkify_filter(text):
    from .text import linkify

    return linkify(text)


@bp.app_template_filter("contact_details")
def contact_details_filter(flags):
    from .contact import describe, flag_kinds

    return describe(flag_kinds(flags))


@bp.app_context_processor
def chat_template_globals():
    def unread():
        return queries.total_unread(current_user.id) if current_user.is_authenticated else 0

    def seller_inbox(listing_id=None):
        return queries.inbox_rows(current_user.id, seller_only=True, listing_id=listing_id)

    return {"chat_unread": unread, "chat_seller_inbox": seller_inbox, "contact_client_key": services.new_client_key}
