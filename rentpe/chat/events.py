"""How chat's durable events look in a user's stream, the hooks `realtime` calls back, and the
typing notice (ephemeral: rendered here and sent, never stored), for both kinds of conversation.

Each renderer receives one `StreamEvent` of one user and returns that user's HTML for it, built
from the current state (so a replayed event shows what is true now). Fragments carry stable ids
and swap by upsert/replace, so applying one twice changes nothing.

A message goes to every member of its conversation (500 on a big board), so its fragments do not
depend on who views them: the message and its inbox row are rendered once per message and every
recipient gets the same text, plus their own unread count and receipt, built without a template
(fragments.py). The page says who is viewing (templates/chat/_viewer_style.html).

A new message is sent as two frames: first the inbox rows (whose preview repeats the text), with
no id; then the frame with the event's id holding the message itself, the badge and the receipt.
So the frame that carries the id carries the body text exactly once, and the client's cursor only
moves past an event after both frames arrived.
"""
from collections import defaultdict
from dataclasses import dataclass

from flask import render_template

from .. import realtime
from ..realtime import Shared
from ..accounts.models import User
from ..extensions import db
from . import fragments, queries
from .hiding import HIDDEN
from .models import SELLER, Conversation, Message
from .services import BOARD_MESSAGE, MESSAGE, READ, RECEIPT, record_deliveries


def _conversation_for(event):
    conversation = db.session.get(Conversation, event.data.get("conversation_id"))
    if conversation is None or conversation.participant(event.user_id) is None:
        return None  # gone, or no longer theirs: send nothing about it
    return conversation


def render_message_event(event):
    return render_message_events([event])[0]


@dataclass
class _Sent:
    """What every recipient of one message shares, read and rendered once per publish (or replay),
    whatever the number of recipients."""
    conversation: Conversation
    message: object
    members: dict  # user id -> Participant
    frame: Shared  # the message, a board's seen-by line; holes for the receipt, typing line and badge
    typing_ended: str  # the sender's typing line ends: for everyone but the sender
    rows: "_Rows"
    receipts: dict  # a private conversation's receipt per viewer (from its loaded participants)


class _Rows:
    """A conversation's inbox row rendered once for everyone (at most twice: with and without the
    seller's dashboard copy); each viewer's unread state goes into its holes."""

    def __init__(self, conversation, last_message, listing=None):
        self.row = queries.InboxRow(conversation, None, None, last_message, listing)
        self.variants = {}

    def for_(self, me):
        seller_copy = me.role == SELLER
        shared = self.variants.get(seller_copy)
        if shared is None:
            shared = self.variants[seller_copy] = Shared(
                render_template("chat/events/inbox_row.html", row=self.row, seller_copy=seller_copy))
        return shared.fill(fragments.row_pieces(me))


def _message_key(event):
    return event.data.get("conversation_id"), event.data.get("message_id")


def _sent(conversation_id, message_id, viewer_ids):
    conversation = db.session.get(Conversation, conversation_id)
    # By primary key: when publishing live, the sender's request already holds the message.
    message = db.session.get(Message, message_id) if conversation is not None else None
    if message is None or message.conversation_id != conversation.id:
        return None
    receipt, receipts = None, {}
    if conversation.is_board:
        receipt = queries.receipt_for(conversation, None)  # who has seen it: the same for every member
    else:
        receipts = queries.receipts_for(conversation, viewer_ids)
    last = (message if message.id == conversation.last_message_id
            else db.session.get(Message, conversation.last_message_id))
    # The inbox thumbnail: the listing the conversation last asked about (none: no query).
    rows = _Rows(conversation, last, queries.listing_with_photos(conversation.last_listing_id))
    frame = Shared(render_template("chat/events/message.html", conversation=conversation, message=message,
                                   receipt=receipt))
    typing_ended = render_template("chat/events/typing_ended.html", conversation=conversation, message=message)
    return _Sent(conversation, message, {p.user_id: p for p in conversation.participants}, frame, typing_ended,
                 rows, receipts)


def render_message_events(events):
    """The new-message frames of each event's recipient. The conversation, the message, its
    listing, a board's seen-by line and a private conversation's receipts are read once for all the
    events of one message, and the unread totals of all recipients in one query; the message and
    its inbox row are rendered once for all of them. Per recipient only their own small pieces
    are added (fragments.py): no template is rendered per recipient."""
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
        receipt = shared.receipts.get(viewer_id)
        results.append([
            shared.rows.for_(me),
            shared.frame.fill({
                "receipt": fragments.private_receipt(conversation.id, receipt, oob=True) if receipt else "",
                "typing": shared.typing_ended if message.sender_id != viewer_id else "",
                "badge": fragments.unread_badge(unread.get(viewer_id, 0), oob=True),
            }),
        ])
    return results


def render_read_event(event):
    conversation = _conversation_for(event)
    if conversation is None:
        return None
    viewer_id = event.user_id
    if event.data.get("reader_id") == viewer_id:
        # My own cursor moved (in another tab): my inbox row and badge change.
        return render_inbox_rows(conversation, viewer_id) + fragments.unread_badge(queries.total_unread(viewer_id),
                                                                                   oob=True)
    return render_receipt(conversation, viewer_id)


def render_receipt_event(event):
    """A delivery receipt (private conversations only): the viewer's receipt line. Published
    live, as `mark_delivered` returned it with the cursor it moved (`hints`); replayed, from one
    query for the cursors (the conversation itself is not loaded)."""
    conversation_id = event.data.get("conversation_id")
    receipt = event.hints.get("receipt") or queries.private_receipt(conversation_id, event.user_id)
    if receipt is None:
        return None  # gone, or no longer theirs: send nothing about it
    return fragments.private_receipt(conversation_id, receipt, oob=True)


def render_receipt(conversation, viewer_id):
    return render_template("chat/_receipt.html", conversation=conversation,
                           receipt=queries.receipt_for(conversation, viewer_id), oob=True)


def render_inbox_rows(conversation, viewer_id, last_message=None):
    row = queries.inbox_row_for(conversation, viewer_id, last_message=last_message)
    return _Rows(conversation, row.last_message, row.listing).for_(row.me) if row else ""


def render_hidden_event(event):
    return render_hidden_events([event])[0]


def render_hidden_events(events):
    """A message was hidden (hiding.py): every open copy of it becomes the notice. The notice and
    the inbox row are rendered once for all the events of one message."""
    shared = {}
    results = []
    for event in events:
        key = _message_key(event)
        if key not in shared:
            shared[key] = _hidden(*key)
        conversation, message, rows, notice = shared[key] or (None, None, None, None)
        me = conversation.participant(event.user_id) if conversation is not None else None
        if me is None:
            results.append(None)  # gone, or no longer theirs: send nothing about it
            continue
        listed = conversation.message_count or conversation.is_board
        results.append([rows.for_(me) if listed else "", notice])
    return results


def _hidden(conversation_id, message_id):
    conversation = db.session.get(Conversation, conversation_id)
    message = queries.message_in(conversation.id, message_id) if conversation is not None else None
    if message is None:
        return None
    last = message if message.id == conversation.last_message_id else (
        db.session.get(Message, conversation.last_message_id) if conversation.last_message_id else None)
    rows = _Rows(conversation, last, queries.listing_with_photos(conversation.last_listing_id))
    return conversation, message, rows, render_template("chat/_message.html", conversation=conversation,
                                                        message=message, oob=True)


def render_badge_snapshot(user_id):
    return fragments.unread_badge(queries.total_unread(user_id), oob=True)


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


def on_messages_delivered(events):
    """Private messages passed their recipients' delivery cursors (a round of the realtime
    watch): move each recipient's cursor per conversation, and tell the sender.

    Only private conversations' messages (`MESSAGE`) have this hook: boards show who has *seen*
    the last message, not who received it (a receipt per member for every member a message
    reaches would cost an event per member). A sender's own message reaching their other tabs
    marks nothing."""
    up_to, senders = defaultdict(dict), defaultdict(dict)
    for event in events:
        data = event.data or {}
        conversation_id, message_id, sender_id = (data.get(k) for k in ("conversation_id", "message_id", "sender_id"))
        if not (conversation_id and message_id) or sender_id == event.user_id:
            continue
        mine = up_to[event.user_id]
        mine[conversation_id] = max(mine.get(conversation_id, 0), message_id)
        # In a private conversation the sender is the one other participant: they get the receipt.
        senders[event.user_id].setdefault(conversation_id, set()).add(sender_id)
    if up_to:
        record_deliveries(up_to, senders)


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
    fragments.init_app(app)
    realtime.register_renderer(MESSAGE, render_message_event, many=render_message_events)
    realtime.register_renderer(BOARD_MESSAGE, render_message_event, many=render_message_events)
    realtime.register_renderer(READ, render_read_event)
    realtime.register_renderer(RECEIPT, render_receipt_event)
    realtime.register_renderer(HIDDEN, render_hidden_event, many=render_hidden_events)
    realtime.register_snapshot(render_badge_snapshot)
    realtime.register_delivery_hook(MESSAGE, on_messages_delivered)
    realtime.register_presence_hook(on_presence_changed)
