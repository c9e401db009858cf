"""How chat's durable events look in a user's stream, the hooks `realtime` calls back, and the
typing notice (ephemeral: rendered here and sent, never stored), for both kinds of conversation.

Each renderer receives one `StreamEvent` of one user and returns that user's HTML for it, built
from the current state (so a replayed event shows what is true now). Fragments carry stable ids
and swap by upsert/replace, so applying one twice changes nothing.

A new message is sent as two frames: first the inbox rows (whose preview repeats the text), with
no id; then the frame with the event's id holding the message itself, the badge and the receipt.
So the frame that carries the id carries the body text exactly once, and the client's cursor only
moves past an event after both frames arrived.
"""
from collections import defaultdict
from dataclasses import dataclass

from flask import render_template
from markupsafe import Markup

from .. import realtime
from ..accounts.models import User
from ..extensions import db
from . import queries
from .hiding import HIDDEN
from .models import Conversation, Message
from .services import BOARD_MESSAGE, MESSAGE, READ, RECEIPT


def _conversation_for(event):
    conversation = db.session.get(Conversation, event.data.get("conversation_id"))
    if conversation is None or conversation.participant(event.user_id) is None:
        return None  # gone, or no longer theirs: send nothing about it
    return conversation


def render_message_event(event):
    return render_message_events([event])[0]


@dataclass
class _Sent:
    """What every recipient of one message shares: read once per publish, not once per member."""
    conversation: Conversation
    message: object
    members: dict  # user id -> Participant
    listing: object
    receipt_html: object  # a board's "seen by" line is the same for every member; None for private ones
    receipts: dict  # a private conversation's receipt per viewer (from its loaded participants)


def _message_key(event):
    return event.data.get("conversation_id"), event.data.get("message_id")


def _sent(conversation_id, message_id, viewer_ids):
    conversation = db.session.get(Conversation, conversation_id)
    # By primary key: when publishing live, the sender's request already holds the message.
    message = db.session.get(Message, message_id) if conversation is not None else None
    if message is None or message.conversation_id != conversation.id:
        return None
    receipt_html, receipts = None, {}
    if conversation.is_board:
        receipt_html = render_template("chat/_receipt.html", conversation=conversation,
                                       receipt=queries.receipt_for(conversation, None), oob=True)
    else:
        receipts = queries.receipts_for(conversation, viewer_ids)
    # The inbox thumbnail: the listing the conversation last asked about (none: no query).
    listing = queries.listing_with_photos(conversation.last_listing_id)
    return _Sent(conversation, message, {p.user_id: p for p in conversation.participants},
                 listing, Markup(receipt_html) if receipt_html else None, receipts)


def render_message_events(events):
    """The new-message frames of each event's recipient. The conversation, the message, its
    listing, a board's seen-by line and a private conversation's receipts are read once for all the
    events of one message, and the unread totals of all recipients in one query; per recipient only
    their own fragments are rendered."""
    viewers = defaultdict(set)
    for event in events:
        viewers[_message_key(event)].add(event.user_id)
    sent = {key: _sent(*key, viewer_ids) for key, viewer_ids in viewers.items()}
    unread = queries.total_unread_of({event.user_id for event in events})
    results = []
    for event in events:
        shared, viewer_id = sent[_message_key(event)], event.user_id
        me = shared.members.get(viewer_id) if shared is not None else None
        if me is None:
            results.append(None)  # gone, or no longer theirs: send nothing about it
            continue
        conversation, message = shared.conversation, shared.message
        counterpart = next((p.user for p in conversation.participants if p.user_id != viewer_id), None)
        row = queries.InboxRow(conversation, me, counterpart,
                               message if message.id == conversation.last_message_id else
                               db.session.get(Message, conversation.last_message_id), shared.listing)
        results.append([
            render_template("chat/events/inbox_row.html", row=row),
            render_template(
                "chat/events/message.html", conversation=conversation, message=message, viewer_id=viewer_id,
                receipt_html=shared.receipt_html,
                receipt=None if shared.receipt_html else shared.receipts.get(viewer_id),
                unread=unread.get(viewer_id, 0),
            ),
        ])
    return results


def render_read_event(event):
    conversation = _conversation_for(event)
    if conversation is None:
        return None
    viewer_id = event.user_id
    if event.data.get("reader_id") == viewer_id:
        # My own cursor moved (in another tab): my inbox row and badge change.
        return render_inbox_rows(conversation, viewer_id) + render_template(
            "chat/_unread_badge.html", unread=queries.total_unread(viewer_id), oob=True)
    return render_receipt(conversation, viewer_id)


def render_receipt_event(event):
    """A delivery receipt (private conversations only): the viewer's receipt line. Published
    live, as `mark_delivered` returned it with the cursor it moved (`hints`); replayed, from one
    query for the cursors (the conversation itself is not loaded)."""
    conversation_id = event.data.get("conversation_id")
    receipt = event.hints.get("receipt") or queries.private_receipt(conversation_id, event.user_id)
    if receipt is None:
        return None  # gone, or no longer theirs: send nothing about it
    return render_template("chat/_private_receipt.html", conversation_id=conversation_id, receipt=receipt, oob=True)


def render_receipt(conversation, viewer_id):
    return render_template("chat/_receipt.html", conversation=conversation,
                           receipt=queries.receipt_for(conversation, viewer_id), oob=True)


def render_inbox_rows(conversation, viewer_id, last_message=None):
    row = queries.inbox_row_for(conversation, viewer_id, last_message=last_message)
    return render_template("chat/events/inbox_row.html", row=row) if row else ""


def render_hidden_event(event):
    """A message was hidden (hiding.py): every open copy of it becomes the notice."""
    conversation = _conversation_for(event)
    message = queries.message_in(conversation.id, event.data["message_id"]) if conversation is not None else None
    if message is None:
        return None
    return [render_inbox_rows(conversation, event.user_id),
            render_template("chat/_message.html", conversation=conversation, message=message,
                            viewer_id=event.user_id, oob=True)]


def render_badge_snapshot(user_id):
    return render_template("chat/_unread_badge.html", unread=queries.total_unread(user_id), oob=True)


def render_typing(conversation, user):
    if conversation.is_board:
        return render_template("chat/_board_typist.html", board=conversation, typist=user)
    return render_template("chat/_typing.html", conversation=conversation, typist=user, oob=True)


def send_typing(conversation, user):
    """Tell the other participants' open tabs that `user` is typing (ephemeral, never stored)."""
    if conversation.closed_at is not None:
        return
    others = [p.user_id for p in conversation.others(user.id)]
    realtime.ephemeral(others, render_typing(conversation, user))


def wants_delivery_receipt(user_id, data):
    """A message reaching its recipient moves their delivery cursor; my own message reaching my
    other tabs does nothing (decided in the stream, before any context or query)."""
    return bool(data.get("conversation_id") and data.get("message_id")) and data.get("sender_id") != user_id


def on_messages_delivered(user_id, events):
    """Messages from others reached one of `user_id`'s streams: move their delivery cursors.

    Only private conversations' messages (`MESSAGE`) have this hook: boards show who has *seen*
    the last message, not who received it (a receipt per member for every member a message
    reaches would cost an event per member)."""
    from .services import mark_delivered

    up_to, senders = {}, {}
    for event in events:
        conversation_id, message_id = event.data["conversation_id"], event.data["message_id"]
        up_to[conversation_id] = max(up_to.get(conversation_id, 0), message_id)
        senders.setdefault(conversation_id, set()).add(event.data["sender_id"])
    # In a private conversation the sender is the one other participant: they get the receipt.
    mark_delivered(user_id, up_to, notify=senders)


def on_presence_changed(user_id, online):
    """Tell the people `user_id` talks with that they came online or left."""
    user = db.session.get(User, user_id)
    if user is None:
        return
    counterparts = sorted({uid for uid, _ in queries.counterpart_conversations(user_id)})
    if counterparts:
        html = render_template("chat/_presence.html", person=user, online=online,
                               last_seen=None if online else realtime.presence.last_seen(user_id), oob=True)
        realtime.ephemeral(counterparts, html)


def init_app(app):
    realtime.register_renderer(MESSAGE, render_message_event, many=render_message_events)
    realtime.register_renderer(BOARD_MESSAGE, render_message_event, many=render_message_events)
    realtime.register_renderer(READ, render_read_event)
    realtime.register_renderer(RECEIPT, render_receipt_event)
    realtime.register_renderer(HIDDEN, render_hidden_event)
    realtime.register_snapshot(render_badge_snapshot)
    realtime.register_delivery_hook(MESSAGE, on_messages_delivered, wants=wants_delivery_receipt)
    realtime.register_presence_hook(on_presence_changed)
