"""Chat's per-viewer pieces, and fragments rendered once for every viewer.

A message reaches every member of a conversation, and most of what it shows is the same for all
of them: who is "me" is stated once by the page (`<body data-viewer>` and the rules in
templates/chat/_viewer_style.html), not by the fragment. So a fragment is rendered once per
message and every recipient's event carries the same text. What still differs per viewer is
tiny (an unread count, a receipt line) and is built here as a string with escaped values, without
a template: per recipient there is no template render at all.

A fragment rendered once may leave named holes (`realtime.hole(name)`) for those pieces;
`realtime.Shared.fill` puts a viewer's pieces in (and their SSE lines, computed once). Pages render the same templates for one viewer and get no holes.
The builders are also the templates' globals, so a page and an event show the same markup.
"""
from markupsafe import Markup, escape

from ..realtime import hole


def unread_badge(unread, oob=False):
    """The navigation's unread badge (templates/chat/_unread_badge.html)."""
    count = int(unread or 0)
    swap = ' hx-swap-oob="true"' if oob else ""
    return Markup(f'<span id="unread-badge" class="badge" data-count="{count}" aria-label="{count} unread"{swap}>'
                  f'{count or ""}</span>')


def row_unread_class(row):
    """An inbox row's `unread` class, from its viewer's participant (a hole when rendered for everyone)."""
    if row.me is None:
        return hole("row_unread")
    return Markup(" unread") if row.me.unread_count else Markup("")


def row_badge(row):
    """An inbox row's unread count (a hole when rendered for everyone)."""
    if row.me is None:
        return hole("row_badge")
    return row_badge_for(row.me.unread_count)


def row_badge_for(count):
    count = int(count or 0)
    return Markup(f'<span class="badge" data-count="{count}">{count or ""}</span>')


def row_pieces(me):
    """The holes of a shared inbox row filled for the participant `me`."""
    return {"row_unread": " unread" if me.unread_count else "", "row_badge": row_badge_for(me.unread_count)}


_RECEIPT_WORDS = {"delivered": "Delivered", "sent": "Sent"}


def private_receipt(conversation_id, receipt, oob=False):
    """The receipt line of my last message in a private conversation: sent → delivered → seen
    (templates/chat/_private_receipt.html). It sits under the thread, where the other person's
    reply may be the last message, so it names the message it is about ("Your last message",
    linking to it): a "Seen" under their reply must not read as if their reply was seen."""
    status = receipt.status
    if status == "seen":
        text = "Seen " + (receipt.at.strftime("%H:%M") if receipt.at else "")
    else:
        text = _RECEIPT_WORDS.get(status, "")
    swap = ' hx-swap-oob="true"' if oob else ""
    about = (f'<a class="receipt-of" href="#msg-{int(receipt.message_id)}">Your last message</a> · '
             if text and receipt.message_id else "")
    return Markup(f'<p id="conv-{int(conversation_id)}-receipt" class="receipt" data-status="{escape(status or "")}"'
                  f' data-order="{int(receipt.order)}" aria-live="polite"{swap}>{about}{escape(text)}</p>')


def init_app(app):
    app.add_template_global(hole, "hole")
    app.add_template_global(unread_badge, "unread_badge")
    app.add_template_global(row_unread_class, "row_unread_class")
    app.add_template_global(row_badge, "row_badge")
    app.add_template_global(private_receipt, "private_receipt")
