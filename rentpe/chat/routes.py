"""Inbox, conversation pages, sending, read cursor, typing. HTTP adapters only."""
from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from .. import ratelimits, realtime
from ..errors import render_error
from ..http import int_arg, is_htmx, safe_next
from ..listings.guards import get_listing_for_viewer
from ..paging import page_arg
from . import changes, events, photos, queries, services
from .queries import get_conversation_for_participant, get_message_for_participant
from .search import MAX_SEARCH_PAGE, search_conversations

bp = Blueprint("chat", __name__)


def render_conversation(conversation, before=None, status=200, after=None, around=None, **composer):
    """The conversation page; `composer` (error, body) refills the composer after a refused send."""
    page = queries.window(conversation.id, before=before, after=after, around=around)
    messages, has_older, before = page.messages, page.has_older, page.before
    counterpart = conversation.others(current_user.id)[0].user
    if page.is_newest and messages:
        # Opening the conversation shows the newest messages: they are read (and delivered).
        services.mark_read(conversation, current_user, messages[-1].id)
    return render_template(
        "chat/conversation.html", conversation=conversation, messages=messages, has_older=has_older,
        before=before, has_newer=page.has_newer, me=conversation.participant(current_user.id),
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


def inbox_args():
    """(filter, page, cursor) of an inbox request; a 400 for a filter or cursor that isn't one."""
    filter_ = request.args.get("filter") or None
    after = request.args.get("after")
    cursor = queries.InboxCursor.parse(after) if after is not None else None
    if filter_ not in (None, *queries.FILTERS) or (after is not None and cursor is None):
        abort(400)
    return filter_, page_arg(queries.MAX_INBOX_PAGE), cursor


def render_inbox_page(template, base, **kwargs):
    """An inbox list (the inbox, the dashboard's), or the rows after the "More" button's cursor."""
    filter_, number, cursor = inbox_args()
    page = queries.inbox_page(current_user.id, filter_, number, cursor, **kwargs)
    listing_id = kwargs.get("listing_id")
    context = dict(page=page, filter=filter_, list_id=queries.inbox_list_id(base, filter_, number, listing_id),
                   listing_id=listing_id, endpoint=request.endpoint)
    if cursor is not None and is_htmx():
        return render_template("chat/inbox_more.html", **context)
    return render_template(template, **context)


@bp.get("/inbox")
@login_required
def inbox():
    if request.args.get("q") is not None:
        return render_search()
    return render_inbox_page("chat/inbox.html", "inbox-list")


def render_search():
    results = search_conversations(current_user.id, request.args.get("q"), page_arg(MAX_SEARCH_PAGE))
    return render_template("chat/search.html", results=results)


@bp.get("/dashboard/inbox")
@login_required
def seller_inbox():
    if not current_user.is_seller:
        abort(403)
    return render_inbox_page("chat/seller_inbox.html", "seller-inbox-list", seller_only=True,
                             listing_id=int_arg("listing"))


@bp.post("/conversations/<int:conversation_id>/archive")
@login_required
def archive(conversation_id):
    conversation = get_conversation_for_participant(conversation_id, people=False)
    services.archive_conversation(conversation, current_user)
    return archived_answer(conversation)


@bp.post("/conversations/<int:conversation_id>/unarchive")
@login_required
def unarchive(conversation_id):
    conversation = get_conversation_for_participant(conversation_id, people=False)
    services.unarchive_conversation(conversation, current_user)
    return archived_answer(conversation)


def archived_answer(conversation):
    """htmx: nothing (the row leaves the list it was in); else back to the list, or `next`."""
    if is_htmx():
        return ""
    return redirect(safe_next(url_for("chat.inbox")), code=303)


@bp.get("/conversations/<int:conversation_id>")
@login_required
def conversation(conversation_id):
    conversation = get_conversation_for_participant(conversation_id)
    before, after, around = int_arg("before"), int_arg("after"), int_arg("around")
    if conversation.is_board:
        return redirect(url_for("boards.show", board_id=conversation.id, before=before, after=after, around=around))
    return render_conversation(conversation, before=before, after=after, around=around)


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
@ratelimits.limit(ratelimits.MESSAGE_PHOTOS_PER_USER, ratelimits.per_user, count=ratelimits.accepted,
                  refused=send_refused, exempt_when=ratelimits.without_photos)
def send(conversation_id):
    conversation = get_conversation_for_participant(conversation_id, people=False)
    try:
        message, created = photos.send_with_photos(conversation, current_user, request.form.get("body"),
                                                   request.form.get("client_key"), request.files.getlist("photos"))
    except photos.PhotoError as exc:
        return refused_send(conversation, str(exc), 422)
    except services.ChatError as exc:
        return refused_send(conversation, str(exc), exc.status)
    if not is_htmx():
        return redirect(url_for("chat.conversation", conversation_id=conversation.id), code=303)
    receipt = (queries.Receipt(message.id, "sent") if created and not conversation.is_board  # nobody has it yet
               else queries.receipt_for(conversation, current_user.id))
    return render_template("chat/sent.html", conversation=conversation, message=message, receipt=receipt,
                           message_html=events.message_html(conversation, message),
                           client_key=services.new_client_key())


@bp.post("/conversations/<int:conversation_id>/read")
@login_required
def read(conversation_id):
    conversation = get_conversation_for_participant(conversation_id)
    up_to = int_arg("up_to")
    if up_to is None:
        abort(400)
    if services.mark_read(conversation, current_user, up_to) and conversation.is_board:
        events.send_seen_by(conversation, current_user.id)
    return "", 204


@bp.post("/conversations/<int:conversation_id>/typing")
@login_required
@ratelimits.limit(ratelimits.TYPING_PER_USER, ratelimits.per_user, refused=lambda message: "")
def typing(conversation_id):
    conversation = get_conversation_for_participant(conversation_id)
    events.send_typing(conversation, current_user)
    return "", 204


def message_changed(conversation, message):
    """After an edit, a deletion or a reaction: htmx gets the message's new fragment (the stream
    brings it to the other tabs); without JavaScript, back to the message in its thread."""
    if is_htmx():
        db_message = queries.message_in(conversation.id, message.id)
        return render_template("chat/_message.html", conversation=conversation, message=db_message)
    return redirect(url_for("chat.conversation", conversation_id=conversation.id, _anchor=f"msg-{message.id}"),
                    code=303)


def edit_refused(message):
    conversation, chat_message = get_message_for_participant(request.view_args["message_id"])
    return render_template("chat/message_edit.html", conversation=conversation, message=chat_message,
                           error=message, body=request.form.get("body", "")[:services.MAX_BODY_CHARS * 2])


@bp.route("/messages/<int:message_id>/edit", methods=["GET", "POST"])
@login_required
@ratelimits.limit(ratelimits.EDITS_PER_USER, ratelimits.per_user, refused=edit_refused)
def edit_message(message_id):
    conversation, message = get_message_for_participant(message_id)
    if request.method == "GET":
        return render_template("chat/message_edit.html", conversation=conversation, message=message,
                               body=message.body, editable=changes.can_edit(message, current_user.id))
    body = request.form.get("body")
    try:
        changes.edit_message(conversation, message, current_user, body)
    except services.ChatError as exc:
        return render_template("chat/message_edit.html", conversation=conversation, message=message, error=str(exc),
                               body=(body or "")[:services.MAX_BODY_CHARS * 2]), exc.status
    return message_changed(conversation, message)


@bp.route("/messages/<int:message_id>/delete", methods=["GET", "POST"])
@login_required
@ratelimits.limit(ratelimits.EDITS_PER_USER, ratelimits.per_user, refused=edit_refused)
def delete_message(message_id):
    conversation, message = get_message_for_participant(message_id)
    if request.method == "GET":  # the confirmation (a plain page: works without JavaScript)
        return render_template("chat/message_delete.html", conversation=conversation, message=message)
    try:
        changes.delete_message(conversation, message, current_user)
    except services.ChatError as exc:
        return render_template("chat/message_delete.html", conversation=conversation, message=message,
                               error=str(exc)), exc.status
    return message_changed(conversation, message)


@bp.post("/messages/<int:message_id>/reactions")
@login_required
@ratelimits.limit(ratelimits.REACTIONS_PER_USER, ratelimits.per_user)
def react(message_id):
    conversation, message = get_message_for_participant(message_id)
    try:
        changes.toggle_reaction(conversation, message, current_user, request.form.get("emoji", ""))
    except services.ChatError as exc:
        return render_error(exc.status, str(exc))
    return message_changed(conversation, message)


# A photo never changes under its key, but who may see it does (a member leaves, a message is
# deleted): the browser may keep it a day, no shared cache may keep it at all.
PHOTO_MAX_AGE = 24 * 3600


@bp.get("/messages/<int:message_id>/photos/<size>/<key>")
def message_photo(message_id, size, key):
    """A message's photo, to the conversation's current participants only; 404 for everyone else
    (logged out included: no redirect to log in that would tell the photo exists), and once the
    message was hidden or deleted. Moderators see them through a report (moderation/admin.py)."""
    if not current_user.is_authenticated or photos.path_for(key, size) is None:
        abort(404)
    _, message = get_message_for_participant(message_id)
    if message.is_gone or key not in {photo.key for photo in message.photos}:
        abort(404)
    return photos.send(key, size, PHOTO_MAX_AGE)


@bp.app_template_filter("linkify")
def linkify_filter(text):
    from .text import linkify

    return linkify(text)


@bp.app_template_filter("contact_details")
def contact_details_filter(flags):
    from .contact import describe, flag_kinds

    return describe(flag_kinds(flags))


def unread_total():
    return queries.total_unread(current_user.id) if current_user.is_authenticated else 0


def seller_inbox_first_page(listing_id=None):
    # The first page, newest activity first; buyers waiting for an answer are shown on top of
    # it by the rule for `.unread` in static/css/chat.css (live rows too).
    return queries.inbox_page(current_user.id, seller_only=True, listing_id=listing_id)


@bp.record_once
def chat_template_globals(state):
    """Chat's helpers for every template, set once as Jinja globals (a context processor would run
    again for every render, and a message renders several fragments)."""
    from . import cards

    state.app.jinja_env.globals.update({
        "chat_unread": unread_total, "chat_seller_inbox": seller_inbox_first_page,
        "inbox_list_id": queries.inbox_list_id, "contact_client_key": services.new_client_key,
        "message_card": cards.render, "message_is_line": cards.is_line, "message_preview": message_preview,
        "message_editable": message_editable, "reactions_summary": changes.reactions_summary,
        "reaction_choices": changes.REACTIONS, "max_photos_per_message": photos.MAX_PER_MESSAGE})


def message_editable(message):
    """Whether the sender's Edit link shows (rendered once for everyone: `for-author` shows it to
    the sender only). Past the window the link goes; a page left open still gets a clear refusal."""
    return message.kind == "text" and changes.can_edit(message, message.sender_id)


def message_preview(message):
    """An inbox row's preview of the last message: its text, or that it is a photo."""
    if message.body:
        return message.body if len(message.body) <= 90 else message.body[:89] + "…"
    return "📷 Photo"
