"""Small helpers for chat tests."""
import re
from html.parser import HTMLParser

from rentpe.chat.models import Conversation, Message, Participant
from rentpe.extensions import db

CONV_URL = re.compile(r"/conversations/(\d+)$")


def contact(client, listing, body="Is it free on 12 December?", client_key=None):
    data = {"body": body}
    if client_key:
        data["client_key"] = client_key
    return client.post(f"/listings/{listing.id}/contact", data)


def conversation_id_from(response):
    assert response.status_code == 303, response.status_code
    return int(CONV_URL.search(response.headers["Location"]).group(1))


def messages_in(conversation_id):
    return db.session.scalars(
        db.select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
    ).all()


def participant(conversation_id, user):
    return db.session.get(Participant, (conversation_id, user.id))


def conversation_count():
    return db.session.scalar(db.select(db.func.count()).select_from(Conversation))


def message_count():
    return db.session.scalar(db.select(db.func.count()).select_from(Message))


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Shown(HTMLParser):
    """What the page's viewer rules (templates/chat/_viewer_style.html, and `.for-owner` in
    static/css/chat.css) leave of `html` for `viewer`: the same fragment goes to every viewer, the
    page hides what is not for them. The browser tests check the real rules in Chromium."""

    def __init__(self, viewer):
        super().__init__(convert_charrefs=False)
        self.viewer, self.stack, self.html, self.text = str(viewer), [], [], []

    def _hidden_by(self, attrs):
        authors = [a.get("data-author") for a in self.ancestors if "data-author" in a]
        owners = [a.get("data-owner") for a in self.ancestors if "data-owner" in a]
        classes = (attrs.get("class") or "").split()
        return (attrs.get("data-person") == self.viewer
                or ("for-others" in classes and self.viewer in authors)
                or ("for-author" in classes and any(a != self.viewer for a in authors))
                or ("for-owner" in classes and self.viewer not in owners))

    @property
    def ancestors(self):
        return [attrs for _, attrs, _ in self.stack]

    @property
    def hiding(self):
        return any(hidden for _, _, hidden in self.stack)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        hidden = self.hiding or self._hidden_by(attrs)
        if not hidden:
            self.html.append(self.get_starttag_text())
        if tag not in _VOID:
            self.stack.append((tag, attrs, hidden))

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        while self.stack:
            open_tag, _, hidden = self.stack.pop()
            if open_tag == tag:
                break
        if not (hidden or self.hiding):
            self.html.append(f"</{tag}>")

    def handle_data(self, data):
        if not self.hiding:
            self.html.append(data)
            self.text.append(data)

    def handle_entityref(self, name):
        self.handle_data(f"&{name};")

    def handle_charref(self, name):
        self.handle_data(f"&#{name};")


def shown_to(html, viewer):
    """`html` without what the page hides from `viewer` (a user or an id)."""
    parser = _Shown(getattr(viewer, "id", viewer))
    parser.feed(html)
    parser.close()
    return "".join(parser.html)


def text_shown_to(html, viewer):
    """The text of `html` that `viewer` sees, tags left out and white space collapsed."""
    parser = _Shown(getattr(viewer, "id", viewer))
    parser.feed(html)
    parser.close()
    return " ".join("".join(parser.text).split())
