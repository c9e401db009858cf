"""Editing, deleting and reacting to messages, in private conversations and event boards, on
SQLite and PostgreSQL: who may do each (the access matrix), the 15-minute edit window with a
controllable clock, the history kept for moderators, the purge of deleted messages, unread counts
and e-mails, and the HTTP surface (`POST /messages/<id>/edit|delete|reactions`)."""
from datetime import timedelta

import pytest

from rentpe.chat import changes, hiding
from rentpe.chat.models import Conversation, Message, MessageEdit, MessageReaction, Participant
from rentpe.extensions import db
from rentpe.models_base import utcnow
from rentpe.notifications.models import Notification
from tests.board_helpers import make_board, send as board_send
from tests.chat_helpers import contact, conversation_id_from, messages_in, shown_to, text_shown_to


def logged_in(make_client, user):
    c = make_client()
    c.login(user)
    return c


@pytest.fixture
def private(make_client, buyer, seller, listing, make_user):
    """A private conversation: the buyer's first message, and a client for each person."""
    clients = {name: logged_in(make_client, user) for name, user in
               (("buyer", buyer), ("seller", seller), ("stranger", make_user(display_name="Stranger")))}
    cid = conversation_id_from(contact(clients["buyer"], listing, "Is the hall free on 12 Decembr?"))
    clients["cid"] = cid
    clients["message"] = messages_in(cid)[-1]
    return clients


def reload(message):
    db.session.expire_all()
    return db.session.get(Message, message.id)


def backdate(message, minutes):
    db.session.execute(db.update(Message).where(Message.id == message.id)
                       .values(created_at=utcnow() - timedelta(minutes=minutes)))
    db.session.commit()


def participant(cid, user):
    db.session.expire_all()
    return db.session.get(Participant, (cid, user.id))


# The access matrix -------------------------------------------------------------------------------

ROUTES = {
    "edit": lambda m: (f"/messages/{m.id}/edit", {"body": "Is the hall free on 12 December?"}),
    "delete": lambda m: (f"/messages/{m.id}/delete", {}),
    "react": lambda m: (f"/messages/{m.id}/reactions", {"emoji": "👍"}),
}
# who -> route -> expected status (303: done, redirected back to the thread)
MATRIX = {
    "sender": {"edit": 303, "delete": 303, "react": 303},
    "other": {"edit": 403, "delete": 403, "react": 303},
    "stranger": {"edit": 404, "delete": 404, "react": 404},
}


@pytest.mark.parametrize("who", list(MATRIX))
@pytest.mark.parametrize("route", list(ROUTES))
def test_access_matrix_private(private, client, who, route):
    url, data = ROUTES[route](private["message"])
    c = {"sender": private["buyer"], "other": private["seller"], "stranger": private["stranger"]}[who]
    response = c.post(url, data)
    assert response.status_code == MATRIX[who][route], response.get_data(as_text=True)[:300]
    if response.status_code == 303:
        assert response.headers["Location"].endswith(f"/conversations/{private['cid']}#msg-{private['message'].id}")
    # Logged out: to the log-in page, and nothing changed.
    client.logout()
    assert client.post(url, data, csrf=False).status_code in (302, 400)


def test_logged_out_visitors_change_nothing(private, client):
    message = private["message"]
    for route in ROUTES:
        url, data = ROUTES[route](message)
        assert client.post(url, data).status_code == 302  # to log in
    again = reload(message)
    assert again.edited_at is None and again.deleted_at is None and not again.reactions


def test_a_missing_message_is_404(private):
    for route in ROUTES:
        url, data = ROUTES[route](type("M", (), {"id": 10**6})())
        assert private["buyer"].post(url, data).status_code == 404


def test_board_matrix_a_removed_member_and_the_owner(make_client, buyer, seller, make_seller, make_user):
    owner, member, other = buyer, seller, make_seller(display_name="Lights")
    bid = make_board(owner, sellers=[member, other])
    owner_c, member_c, other_c = (logged_in(make_client, u) for u in (owner, member, other))
    assert board_send(member_c, bid, "Stage is 6 m wide", "board-key-0001").status_code == 200
    message = messages_in(bid)[-1]

    assert other_c.post(f"/messages/{message.id}/edit", {"body": "x"}).status_code == 403
    assert owner_c.post(f"/messages/{message.id}/reactions", {"emoji": "🎉"}).status_code == 303
    assert member_c.post(f"/messages/{message.id}/edit", {"body": "Stage is 7 m wide"}).status_code == 303
    assert reload(message).body == "Stage is 7 m wide"

    from rentpe.chat.boards import services as board_services
    board_services.remove_member(db.session.get(Conversation, bid), owner, member.id)
    for route in ROUTES:
        url, data = ROUTES[route](message)
        assert member_c.post(url, data).status_code in (403, 404)
    assert reload(message).deleted_at is None


# Edit --------------------------------------------------------------------------------------------


def test_edit_shows_edited_keeps_the_history_and_moves_no_unread(private, buyer, seller):
    message, cid = private["message"], private["cid"]
    unread_before = participant(cid, seller).unread_count
    response = private["buyer"].post(f"/messages/{message.id}/edit", {"body": "Is the hall free on 12 December?"})
    assert response.status_code == 303
    edited = reload(message)
    assert edited.body == "Is the hall free on 12 December?" and edited.edited_at is not None
    history = db.session.scalars(db.select(MessageEdit).where(MessageEdit.message_id == message.id)).all()
    assert [h.body for h in history] == ["Is the hall free on 12 Decembr?"]
    assert participant(cid, seller).unread_count == unread_before
    page = private["seller"].get(f"/conversations/{cid}").get_data(as_text=True)
    assert "12 December?" in page and "Decembr" not in page and 'class="msg-edited">edited<' in page


def test_the_edit_window_is_15_minutes_on_a_controllable_clock(private, buyer):
    message, conversation = private["message"], db.session.get(Conversation, private["cid"])
    sent = message.created_at
    assert changes.edit_message(conversation, message, buyer, "typo fixed", now=sent + timedelta(minutes=15))
    with pytest.raises(changes.ChatError) as refused:
        changes.edit_message(conversation, reload(message), buyer, "too late", now=sent + timedelta(minutes=15, seconds=1))
    assert refused.value.status == 409 and "15 minutes" in str(refused.value)
    # Over HTTP, on the real clock: a message sent 16 minutes ago is refused, clearly, and kept.
    backdate(message, 16)
    response = private["buyer"].post(f"/messages/{message.id}/edit", {"body": "late"})
    assert response.status_code == 409 and "first 15 minutes" in response.get_data(as_text=True)
    assert reload(message).body == "typo fixed"


@pytest.mark.parametrize("body, status", [("", 422), ("   ", 422), ("x" * 4001, 422)])
def test_a_bad_edit_is_a_clear_4xx(private, body, status):
    response = private["buyer"].post(f"/messages/{private['message'].id}/edit", {"body": body})
    assert response.status_code == status and 'role="alert"' in response.get_data(as_text=True)


def test_hidden_or_deleted_messages_cannot_be_edited_or_reacted_to(private, buyer, seller, moderator):
    message = private["message"]
    hiding.hide_message(message, moderator, hiding.BY_MODERATOR)
    assert private["buyer"].post(f"/messages/{message.id}/edit", {"body": "x"}).status_code == 409
    assert private["seller"].post(f"/messages/{message.id}/reactions", {"emoji": "👍"}).status_code == 409
    assert private["buyer"].post(f"/messages/{message.id}/delete").status_code == 303  # nothing to delete
    assert reload(message).deleted_at is None and not reload(message).reactions


# Delete ------------------------------------------------------------------------------------------


def test_delete_shows_message_deleted_everywhere_and_fixes_unread(private, buyer, seller):
    message, cid = private["message"], private["cid"]
    assert participant(cid, seller).unread_count == 1
    assert private["buyer"].post(f"/messages/{message.id}/delete").status_code == 303
    assert reload(message).deleted_at is not None and reload(message).body  # kept for moderators
    assert participant(cid, seller).unread_count == 0
    for who in ("buyer", "seller"):
        page = private[who].get(f"/conversations/{cid}").get_data(as_text=True)
        assert "Message deleted" in page and "Decembr" not in page
    inbox = private["seller"].get("/inbox").get_data(as_text=True)
    assert "Message deleted" in inbox and "Decembr" not in inbox
    # Reading again counts no deleted message as unread.
    private["seller"].post(f"/conversations/{cid}/read", {"up_to": 0})
    assert participant(cid, seller).unread_count == 0


def test_a_deleted_message_sends_no_email(app, private, seller):
    from rentpe.notifications import worker

    assert db.session.scalars(db.select(Notification).where(Notification.user_id == seller.id)).one()
    private["buyer"].post(f"/messages/{private['message'].id}/delete")
    worker.run_once(now=utcnow() + timedelta(hours=2))
    db.session.expire_all()
    notification = db.session.scalars(db.select(Notification).where(Notification.user_id == seller.id)).one()
    assert notification.sent_at is None and notification.status == "cancelled"


def test_the_purge_removes_deleted_content_after_30_days(app, private, buyer):
    message, conversation = private["message"], db.session.get(Conversation, private["cid"])
    changes.toggle_reaction(conversation, message, buyer, "🙏")
    changes.edit_message(conversation, reload(message), buyer, "Is the hall free on 12 December?")
    changes.delete_message(conversation, reload(message), buyer, now=utcnow() - timedelta(days=31))
    fresh = private["buyer"].post(f"/conversations/{private['cid']}/messages",
                                  {"body": "Another", "client_key": "purge-key-02"})
    assert fresh.status_code == 303
    young = messages_in(private["cid"])[-1]
    changes.delete_message(conversation, young, buyer)

    runner = app.test_cli_runner()
    result = runner.invoke(args=["chat", "purge-deleted"])
    assert result.exit_code == 0, result.output
    assert "Purged 1 deleted message" in result.output
    purged = reload(message)
    assert purged.body == "" and purged.deleted_at is not None
    for model in (MessageEdit, MessageReaction):
        assert not db.session.scalars(db.select(model).where(model.message_id == message.id)).all()
    assert reload(young).body == "Another"  # deleted today: kept for moderators
    assert "Purged 0" in runner.invoke(args=["chat", "purge-deleted"]).output
    result = runner.invoke(args=["chat", "purge-deleted", "--now", (utcnow() + timedelta(days=31)).isoformat()])
    assert "Purged 1 deleted message" in result.output and reload(young).body == ""


# Reactions ---------------------------------------------------------------------------------------


def test_reactions_toggle_one_of_each_per_person_and_show_who(private, buyer, seller):
    message, cid = private["message"], private["cid"]
    url = f"/messages/{message.id}/reactions"
    unread = participant(cid, buyer).unread_count
    notifications = db.session.scalar(db.select(db.func.count()).select_from(Notification))
    for emoji in ("👍", "👍", "👍", "🎉"):  # on, off, on; and another
        assert private["seller"].post(url, {"emoji": emoji}).status_code == 303
    assert private["buyer"].post(url, {"emoji": "🎉"}).status_code == 303
    got = sorted((r.user_id, r.emoji) for r in reload(message).reactions)
    assert got == sorted([(seller.id, "👍"), (seller.id, "🎉"), (buyer.id, "🎉")])
    assert participant(cid, buyer).unread_count == unread  # a reaction is not a message
    assert db.session.scalar(db.select(db.func.count()).select_from(Notification)) == notifications
    page = private["buyer"].get(f"/conversations/{cid}").get_data(as_text=True)
    reactions = page[page.index(f'id="msg-{message.id}-reactions"'):]
    assert f'aria-label="🎉 2: ' in reactions and f'title="{seller.display_name}"' in reactions
    assert f'data-by=" {seller.id} "' in reactions


@pytest.mark.parametrize("emoji", ["", "🤡", "<b>", "👍👍", "x" * 100])
def test_only_the_fixed_set_of_reactions(private, emoji):
    response = private["seller"].post(f"/messages/{private['message'].id}/reactions", {"emoji": emoji})
    assert response.status_code == 400 and not reload(private["message"]).reactions


def test_htmx_gets_the_message_fragment_with_its_stable_ids(private):
    message = private["message"]
    response = private["seller"].post(f"/messages/{message.id}/reactions", {"emoji": "❤️"}, htmx=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith(f'<li id="msg-{message.id}"')
    assert f'id="msg-{message.id}-reactions"' in html and "❤️" in html


def test_own_actions_are_for_the_author_only(private, buyer, seller):
    message, cid = private["message"], private["cid"]
    page = private["seller"].get(f"/conversations/{cid}").get_data(as_text=True)
    item = page[page.index(f'<li id="msg-{message.id}"'):]
    item = item[:item.index("</li>") + 5]
    assert "Edit" in text_shown_to(item, buyer) and "Delete" in text_shown_to(item, buyer)
    assert "Edit" not in text_shown_to(item, seller) and "Delete" not in text_shown_to(item, seller)
    assert 'form="message-actions"' in shown_to(item, seller)  # reactions are for everyone
    assert 'id="message-actions"' in page and 'name="csrf_token"' in page


def test_the_edit_and_delete_pages(private, buyer):
    message = private["message"]
    page = private["buyer"].get(f"/messages/{message.id}/edit").get_data(as_text=True)
    assert "Decembr" in page and 'name="body"' in page
    assert "Delete this message for everyone?" in private["buyer"].get(f"/messages/{message.id}/delete").get_data(
        as_text=True)
    assert "Only the sender" in private["seller"].get(f"/messages/{message.id}/edit").get_data(as_text=True)
    assert private["stranger"].get(f"/messages/{message.id}/edit").status_code == 404


class TestRateLimits:
    @pytest.fixture
    def app_overrides(self):
        return {"RATELIMIT_ENABLED": True}

    def test_reactions_and_edits_are_limited(self, private):
        url = f"/messages/{private['message'].id}/reactions"
        statuses = [private["seller"].post(url, {"emoji": "👍"}).status_code for _ in range(61)]
        assert statuses[:60] == [303] * 60 and statuses[60] == 429
        edit = f"/messages/{private['message'].id}/edit"
        statuses = [private["buyer"].post(edit, {"body": f"v{i}"}).status_code for i in range(21)]
        assert statuses[:20] == [303] * 20 and statuses[20] == 429
        assert "Too many message edits" in private["buyer"].post(edit, {"body": "again"}).get_data(as_text=True)
