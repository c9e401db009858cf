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

from flask import g, render_template
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import lazyload

from .. import realtime
from ..realtime import Shared
from ..accounts.models import User
from ..extensions import db
from . import fragments, queries
from .changes import CHANGED, DELETED, REACTED
from .hiding import HIDDEN
from .models import SELLER, Conversation, Message, Participant
from .services import ARCHIVE_CHANGED, BOARD_MESSAGE, MESSAGE, READ, RECEIPT, record_deliveries


# Its participants are read if asked for (a board has hundreds): by primary key, so the publish of
# several events about one conversation reads it once.
_ALONE = [lazyload(Conversation.participants)]


def _conversation_for(event):
    conversation = db.session.get(Conversation, event.data.get("conversation_id"), options=_ALONE)
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
    members: dict  # user id -> their row of `queries.people`
    frame: Shared  # the message, a board's seen-by line; holes for the receipt, typing line and badge
    typing_ended: str  # the sender's typing line ends: for everyone but the sender
    rows: "_Rows"
    receipts: dict  # a private conversation's receipt per viewer


class _Rows:
    """A conversation's inbox row rendered once for everyone (at most a few times: with and without
    the seller's dashboard copies, in the lists of those who archived it or not); each viewer's
    unread state goes into its holes."""

    def __init__(self, conversation, last_message, listing=None, names=None):
        self.row = queries.InboxRow(conversation, None, last_message, listing, names)
        self.html = None
        self.listing_ids = None
        self.variants = {}

    def for_(self, me):
        seller_copy = me.role == SELLER
        archived = me.archived_message_id is not None and me.archived_message_id >= (
            self.row.conversation.last_message_id or 0)
        shared = self.variants.get((seller_copy, archived))
        if shared is None:
            if self.html is None:  # the row itself once, in every list it goes to
                self.html = Markup(render_template("chat/_inbox_row.html", row=self.row))
            if seller_copy and self.listing_ids is None:  # the dashboard's lists by listing
                self.listing_ids = queries.listing_ids_of(self.row.conversation.id)
            shared = self.variants[(seller_copy, archived)] = Shared(render_template(
                "chat/events/inbox_row.html", row=self.row, row_html=self.html, seller_copy=seller_copy,
                archived=archived, listing_ids=self.listing_ids or ()))
        return shared.fill(fragments.row_pieces(me))


def _message_key(event):
    return event.data.get("conversation_id"), event.data.get("message_id")


def _sent(conversation_id, message_id, viewer_ids, new=False):
    conversation, message = queries.conversation_and_message(conversation_id, message_id, new=new)
    if message is None:
        return None
    # Held for the rest of the request (the session's identity map holds objects weakly): the
    # answer to the POST that sent it shows this same message without reading it again.
    g.setdefault("chat_messages_held", []).append(message)
    # Plain rows (not the participants and their accounts): a board has hundreds.
    members = queries.people(conversation.id)
    receipt, receipts = None, {}
    if conversation.is_board:  # who has seen it: the same for every member
        author_id = message.sender_id if message.id == conversation.last_message_id else None
        receipt = queries.seen_by(conversation, members, author_id)
    else:
        receipts = queries.receipts_of(members, viewer_ids)
    last = (message if message.id == conversation.last_message_id
            else db.session.get(Message, conversation.last_message_id))
    # The inbox thumbnail: the listing the conversation last asked about (none: no query).
    rows = _Rows(conversation, last, queries.listing_with_photos(conversation.last_listing_id),
                 [(row.user_id, row.display_name) for row in members.values()])
    frame = Shared(render_template("chat/events/message.html", conversation=conversation, message=message,
                                   message_html=message_html(conversation, message), receipt=receipt))
    typing_ended = render_template("chat/events/typing_ended.html", conversation=conversation, message=message)
    return _Sent(conversation, message, members, frame, typing_ended, rows, receipts)


def message_html(conversation, message):
    """`chat/_message.html` for `message`, rendered once per request: the publish of a new message
    and the answer to the POST that sent it show the very same fragment."""
    rendered = g.setdefault("chat_messages", {})
    key = (message.id, message.hidden_at, message.deleted_at, message.edited_at)
    if key not in rendered:
        rendered[key] = Markup(render_template("chat/_message.html", conversation=conversation, message=message))
    return rendered[key]


def render_message_events(events):
    """The new-message frames of each event's recipient. The conversation, the message, its
    listing, a board's seen-by line and a private conversation's receipts are read once for all the
    events of one message, and the unread totals of all recipients in one query; the message and
    its inbox row are rendered once for all of them. Per recipient only their own small pieces
    are added (fragments.py): no template is rendered per recipient."""
    viewers, new = defaultdict(set), set()
    for event in events:
        viewers[_message_key(event)].add(event.user_id)
        if event.hints.get("new_without_photos"):
            new.add(_message_key(event))
    sent = {key: _sent(*key, viewer_ids, new=key in new) for key, viewer_ids in viewers.items()}
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
                "badge": fragments.unread_badge(me.total_unread, oob=True),
            }),
        ])
    return results


def render_read_event(event):
    conversation = _conversation_for(event)
    if conversation is None:
        return None
    viewer_id = event.user_id
    if event.data.get("reader_id") == viewer_id:
        # My own cursor moved: my inbox row and badge change, and a board's seen-by line now counts
        # me (the one my tabs show was rendered for everyone before I read).
        # Markup all along: a plain string added to the Markup badge would be escaped into text.
        mine = Markup(render_inbox_rows(conversation, viewer_id)) + fragments.unread_badge(
            queries.total_unread(viewer_id), oob=True)
        return mine + Markup(render_receipt(conversation, viewer_id)) if conversation.is_board else mine
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


def render_archived_event(event):
    """The viewer archived or unarchived a conversation: its row leaves the lists it was in and
    goes to the ones it belongs to now (the archived view, or the inbox), in every open page."""
    conversation = _conversation_for(event)
    return render_inbox_rows(conversation, event.user_id) if conversation is not None else None


def render_inbox_rows(conversation, viewer_id, last_message=None):
    row = queries.inbox_row_for(conversation, viewer_id, last_message=last_message)
    return _Rows(conversation, row.last_message, row.listing, row.people).for_(row.me) if row else ""


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


def render_changed_event(event):
    return render_changed_events([event])[0]


def render_changed_events(events):
    """A message was edited, deleted or reacted to (changes.py): every open copy of it is swapped
    for its current state, rendered once for all the events of one change. An edit or deletion of
    a conversation's last message also changes its inbox row (the preview), and a deletion the
    unread counts of those who had not read it: each recipient's own pieces, without a template."""
    shared = {}
    results = []
    for event in events:
        key = (*_message_key(event), event.data.get("change"))
        if key not in shared:
            shared[key] = _changed(*key)
        change = shared[key]
        me = change.members.get(event.user_id) if change is not None else None
        if me is None:
            results.append(None)  # gone, or no longer theirs: send nothing about it
            continue
        # The frame with the event's id last, holding the message (and the badge it changed).
        last = change.notice + fragments.unread_badge(me.total_unread, oob=True) if change.kind == DELETED else change.notice
        results.append([change.rows.for_(me), last] if change.rows is not None else last)
    return results


@dataclass
class _Change:
    kind: str
    members: dict  # user id -> their row of `queries.people`
    rows: "_Rows | None"  # the inbox row, when the preview changed
    notice: str  # the message itself, to swap by its id


def _changed(conversation_id, message_id, kind):
    conversation = db.session.get(Conversation, conversation_id, options=_ALONE)
    message = queries.message_in(conversation.id, message_id) if conversation is not None else None
    if message is None:
        return None
    members = queries.people(conversation.id)
    rows = None
    if kind != REACTED and message.id == conversation.last_message_id:
        rows = _Rows(conversation, message, queries.listing_with_photos(conversation.last_listing_id),
                     [(row.user_id, row.display_name) for row in members.values()])
    notice = Markup(render_template("chat/_message.html", conversation=conversation, message=message, oob=True))
    return _Change(kind, members, rows, notice)


# A board up to this size shows its seen-by line live to every member on every read: the line is
# rendered once and sent to the members who are online, without storing anything (at most 19 sends
# a read). A bigger board tells only the reader and the author of the last message (their read
# events, services._read_audience): a read must not cost a send per member of a 500-member board
# (499 reads of one message would make 250,000); the other members' lines catch up with the next
# message, and every page load shows the current one.
SEEN_BY_LIVE_MEMBERS = 20


def send_seen_by(board, reader_id):
    """A member read a board's last message: the other members' open pages get its new seen-by line
    (the reader's and the author's come with their read events). Small boards only, see above."""
    if not board.is_board or not board.last_message_id:
        return
    size = db.session.scalar(select(func.count()).select_from(Participant)
                             .where(Participant.conversation_id == board.id, Participant.left_at.is_(None)))
    if size > SEEN_BY_LIVE_MEMBERS:
        return  # one count, not the members of a big board loaded on every read
    members = [p.user_id for p in board.participants]
    author_id = db.session.scalar(select(Message.sender_id).where(Message.id == board.last_message_id))
    others = set(realtime.presence.online([uid for uid in members if uid not in (reader_id, author_id)]))
    if others:
        realtime.ephemeral(others, render_template("chat/_receipt.html", conversation=board,
                                                   receipt=queries.seen_by(board), oob=True))


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
    realtime.register_renderer(ARCHIVE_CHANGED, render_archived_event)
    realtime.register_renderer(RECEIPT, render_receipt_event)
    realtime.register_renderer(HIDDEN, render_hidden_event, many=render_hidden_events)
    realtime.register_renderer(CHANGED, render_changed_event, many=render_changed_events)
    realtime.register_snapshot(render_badge_snapshot)
    realtime.register_delivery_hook(MESSAGE, on_messages_delivered)
    realtime.register_presence_hook(on_presence_changed)
