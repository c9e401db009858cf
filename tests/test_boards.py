"""Event boards: a buyer plans one event with several sellers and co-organisers at once.

Creating and managing a board, messages through chat's send path, read state per member, the
owner's moderation, the inbox, and the membership matrix (owner, member, removed member, stranger,
moderator) over every page and action.
"""
import re

import pytest

from rentpe.chat import hiding
from rentpe.chat.boards import services as board_services
from rentpe.chat.models import ORGANISER, REMOVED, SELLER, Conversation
from rentpe.extensions import db
from rentpe.listings import services as listing_services
from tests.board_helpers import (
    board, board_form, board_id_from, make_board, member_row, messages_in, send,
)
from tests.chat_helpers import contact, conversation_id_from, shown_to, text_shown_to


@pytest.fixture
def asha(buyer):
    return buyer


@pytest.fixture
def owner_client(make_client, asha):
    c = make_client()
    c.login(asha)
    return c


def logged_in(make_client, user):
    c = make_client()
    c.login(user)
    return c


# Creating and managing --------------------------------------------------------------------------

def test_a_buyer_creates_a_board_and_finds_it_in_the_inbox(owner_client, asha):
    response = owner_client.post("/boards", board_form(title="  Meera's   wedding ", city="navi mumbai"))
    board_id = board_id_from(response)
    created = board(board_id)
    assert (created.kind, created.title, created.city, created.owner_id) == ("group", "Meera's wedding", "Navi Mumbai", asha.id)
    assert member_row(board_id, asha).role == "owner"
    page = owner_client.get(f"/boards/{board_id}").get_data(as_text=True)
    assert "<h1>Meera&#39;s wedding</h1>" in page and "Navi Mumbai" in page and "1 member" in page
    assert '<small class="role role-owner">Owner</small>' in page
    inbox = owner_client.get("/inbox").get_data(as_text=True)
    assert f'id="inbox-row-{board_id}"' in inbox and f'href="/boards/{board_id}"' in inbox


@pytest.mark.parametrize("field, value, error", [
    ("title", "   ", "Give the board a name."),
    ("title", "x" * 81, "at most 80 characters"),
    ("event_date", "", "When is the event? Pick a date."),
    ("event_date", "2031-02-30", "Not a valid date value."),
    ("event_date", "2001-01-01", "The event date is in the past."),
    ("city", "", "Which city is the event in?"),
    ("city", "y" * 61, "at most 60 characters"),
])
def test_invalid_details_are_form_errors_and_create_nothing(owner_client, field, value, error):
    response = owner_client.post("/boards", {**board_form(), field: value})
    assert response.status_code == 422
    assert error in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(Conversation)) == 0


def test_the_owner_is_offered_sellers_they_talked_to_or_saved_and_invites_a_co_organiser_by_email(
        owner_client, asha, make_seller, make_listing, make_user, make_client):
    talked, saved, unknown = (make_seller(display_name=n) for n in ("Ravi Decor", "Lights Co", "Stranger Seller"))
    contact(owner_client, make_listing(seller=talked), "Do you do mandaps?")
    favourite = make_listing(seller=saved, title="Fairy lights, 200 m")
    listing_services.set_favourite(asha, favourite, saved=True)
    make_listing(seller=unknown)
    meera = make_user(display_name="Meera Shah", email="meera@example.test")
    board_id = make_board(asha)

    manage = owner_client.get(f"/boards/{board_id}/manage").get_data(as_text=True)
    assert "Ravi Decor" in manage and "You talked" in manage
    assert "Lights Co" in manage and "Saved: Fairy lights, 200 m" in manage
    assert "Stranger Seller" not in manage

    response = owner_client.post(f"/boards/{board_id}/members", {"sellers": [str(talked.id), str(saved.id)],
                                                                  "email": " MEERA@example.test "})
    assert response.status_code == 303
    assert {(member_row(board_id, u).role) for u in (talked, saved)} == {SELLER}
    assert member_row(board_id, meera) is None  # invited, not added: she says yes first
    meera_client = make_client()
    meera_client.login(meera)
    assert "You are invited to 1 event board" in meera_client.get("/inbox").get_data(as_text=True)
    assert "Meera &amp; Arjun" in meera_client.get("/boards/invitations").get_data(as_text=True)
    joined = meera_client.post(f"/boards/{board_id}/invitation/accept")
    assert joined.status_code == 303 and joined.headers["Location"].endswith(f"/boards/{board_id}")
    assert member_row(board_id, meera).role == ORGANISER
    page = owner_client.get(f"/boards/{board_id}").get_data(as_text=True)
    assert "4 members" in page
    assert "Seller · Shop" in page and '<small class="role role-organiser">Co-organiser</small>' in page
    assert "Ravi Decor" not in owner_client.get(f"/boards/{board_id}/manage").get_data(as_text=True).split("<h2>Members</h2>")[0]


@pytest.mark.parametrize("data, error", [
    ({"sellers": "{stranger}"}, "Not a valid choice"),
    ({}, "Choose a seller or enter an e-mail address."),
    ({"sellers": "abc"}, "Invalid choice"),
])
def test_only_offered_sellers_and_known_addresses_can_be_added(owner_client, asha, make_seller, data, error):
    board_id = make_board(asha)
    stranger = make_seller()
    data = {k: v.format(stranger=stranger.id) for k, v in data.items()}
    response = owner_client.post(f"/boards/{board_id}/members", data)
    assert response.status_code == 422
    assert error.lower() in response.get_data(as_text=True).lower()
    assert len(board(board_id).participants) == 1


def test_a_board_has_at_most_max_members(owner_client, asha, make_user, make_seller, make_listing, make_client,
                                         monkeypatch):
    monkeypatch.setattr(board_services, "MAX_MEMBERS", 2)
    board_id = make_board(asha, organisers=[make_user()])
    talked = make_seller()
    contact(owner_client, make_listing(seller=talked), "Free on the 12th?")
    response = owner_client.post(f"/boards/{board_id}/members", {"sellers": [str(talked.id)]})
    assert response.status_code == 422
    assert "at most 2 members" in response.get_data(as_text=True)
    third = make_user(email="third@example.test")
    assert owner_client.post(f"/boards/{board_id}/members", {"email": "third@example.test"}).status_code == 303
    invited = make_client()
    invited.login(third)
    refused = invited.post(f"/boards/{board_id}/invitation/accept", follow_redirects=True)
    assert "already has 2 members" in refused.get_data(as_text=True)
    assert member_row(board_id, third) is None


def test_the_owner_renames_the_board_and_moves_its_date(owner_client, asha):
    board_id = make_board(asha)
    response = owner_client.post(f"/boards/{board_id}/details", board_form(title="Sangeet night", days=60, city="pune"))
    assert response.status_code == 303
    renamed = board(board_id)
    assert (renamed.title, renamed.city) == ("Sangeet night", "Pune")
    bad = owner_client.post(f"/boards/{board_id}/details", board_form(title=""))
    assert bad.status_code == 422 and board(board_id).title == "Sangeet night"


def test_a_member_leaves_and_the_owner_cannot(make_client, owner_client, asha, seller):
    board_id = make_board(asha, sellers=[seller])
    ravi = logged_in(make_client, seller)
    assert "Leave" in ravi.get(f"/boards/{board_id}").get_data(as_text=True)
    assert ravi.get(f"/boards/{board_id}/leave").status_code == 200
    response = ravi.post(f"/boards/{board_id}/leave")
    assert response.status_code == 303 and response.headers["Location"].endswith("/inbox")
    gone = ravi.get(f"/boards/{board_id}")
    assert gone.status_code == 403 and "You left this board." in gone.get_data(as_text=True)
    assert f"inbox-row-{board_id}" not in ravi.get("/inbox").get_data(as_text=True)
    refused = owner_client.post(f"/boards/{board_id}/leave")
    assert refused.status_code == 409 and "close it instead" in refused.get_data(as_text=True)
    assert member_row(board_id, asha).left_at is None


def test_the_owner_removes_a_member_who_then_has_no_access_at_all(make_client, owner_client, asha, seller):
    board_id = make_board(asha, sellers=[seller])
    ravi = logged_in(make_client, seller)
    send(ravi, board_id, "Before: our quote is ready", "before-key-001")
    send(owner_client, board_id, "Thanks!", "owner-key-0001")
    assert owner_client.get(f"/boards/{board_id}/members/{seller.id}/remove").status_code == 200
    assert owner_client.post(f"/boards/{board_id}/members/{seller.id}/remove").status_code == 303
    assert member_row(board_id, seller).left_reason == REMOVED
    send(owner_client, board_id, "After: a secret plan", "owner-key-0002")

    page = ravi.get(f"/boards/{board_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 403 and "You were removed from this board." in html
    assert "Before:" not in html and "After:" not in html
    older = ravi.get(f"/conversations/{board_id}/messages?before=999999", headers={"HX-Request": "true"})
    assert older.status_code == 404 and "After:" not in older.get_data(as_text=True)
    assert ravi.get(f"/conversations/{board_id}").status_code == 404
    inbox = ravi.get("/inbox").get_data(as_text=True)
    assert f"inbox-row-{board_id}" not in inbox and 'data-count="0"' in inbox
    assert member_row(board_id, seller).unread_count == 0
    assert "2 members" not in owner_client.get(f"/boards/{board_id}").get_data(as_text=True)


def test_the_owner_cannot_remove_themselves(owner_client, asha, seller):
    board_id = make_board(asha, sellers=[seller])
    response = owner_client.post(f"/boards/{board_id}/members/{asha.id}/remove")
    assert response.status_code == 409
    assert member_row(board_id, asha).left_at is None


def test_a_removed_member_added_again_sees_the_whole_history_read(make_client, owner_client, asha, seller):
    board_id = make_board(asha, sellers=[seller])
    board_services.remove_member(board(board_id), asha, seller.id)
    send(owner_client, board_id, "Sent while Ravi was out", "owner-key-0003")
    board_services.add_members(board(board_id), asha, [(seller, SELLER)])
    ravi = logged_in(make_client, seller)
    page = ravi.get(f"/boards/{board_id}")
    assert page.status_code == 200 and "Sent while Ravi was out" in page.get_data(as_text=True)
    assert member_row(board_id, seller).unread_count == 0


def test_closing_keeps_the_history_and_stops_new_messages_and_members(owner_client, asha, make_client, seller, make_user):
    board_id = make_board(asha, sellers=[seller])
    send(owner_client, board_id, "Final headcount: 180", "owner-key-0004")
    assert owner_client.get(f"/boards/{board_id}/close").status_code == 200
    assert owner_client.post(f"/boards/{board_id}/close").status_code == 303
    ravi = logged_in(make_client, seller)
    page = ravi.get(f"/boards/{board_id}").get_data(as_text=True)
    assert "Final headcount: 180" in page and "This board was closed" in page
    assert f'id="conv-{board_id}-composer" class="composer"' not in page
    refused = send(ravi, board_id, "one more thing", "late-key-00001")
    assert refused.status_code == 403 and "This board is closed" in refused.get_data(as_text=True)
    assert [m.body for m in messages_in(board_id)] == ["Final headcount: 180"]
    make_user(email="late@example.test")
    assert owner_client.post(f"/boards/{board_id}/members", {"email": "late@example.test"}).status_code == 409
    assert owner_client.post(f"/boards/{board_id}/details", board_form(title="Renamed")).status_code == 409


# Messages ---------------------------------------------------------------------------------------

def test_members_write_through_the_chat_send_path(make_client, owner_client, asha, seller):
    board_id = make_board(asha, sellers=[seller])
    ravi = logged_in(make_client, seller)
    response = send(ravi, board_id, "Mandap quote: ₹1,20,000 <b>all-in</b>", "ravi-key-00001")
    assert response.status_code == 200 and f'hx-target="#conv-{board_id}-messages"' in response.get_data(as_text=True)
    again = send(ravi, board_id, "Mandap quote: ₹1,20,000 <b>all-in</b>", "ravi-key-00001")
    assert again.status_code == 200 and len(messages_in(board_id)) == 1
    assert member_row(board_id, asha).unread_count == 1
    page = owner_client.get(f"/boards/{board_id}").get_data(as_text=True)
    assert '<span class="msg-sender for-others">Ravi Kumar</span>' in shown_to(page, asha)
    own_page = ravi.get(f"/boards/{board_id}").get_data(as_text=True)
    assert "msg-sender" not in shown_to(own_page, seller)  # not on my own message
    assert "&lt;b&gt;all-in&lt;/b&gt;" in page and "<b>all-in" not in page
    assert member_row(board_id, asha).unread_count == 0
    no_js = send(ravi, board_id, "Without JavaScript", "ravi-key-00002", htmx=False)
    assert no_js.status_code == 303
    assert ravi.get(no_js.headers["Location"]).headers["Location"].endswith(f"/boards/{board_id}")


def test_without_javascript_a_refused_board_message_is_the_board_page_with_the_composer_error(
        make_client, asha, seller):
    board_id = make_board(asha, sellers=[seller])
    response = send(logged_in(make_client, seller), board_id, "x" * 4001, "nojs-board-0001", htmx=False)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "<html" in page
    assert f'id="conv-{board_id}-members"' in page  # the board's page, not a private conversation's
    assert 'composer-error" role="alert">Messages can be at most' in page
    assert messages_in(board_id) == []


@pytest.mark.parametrize("body", ["", "   ", "x" * 4001])
def test_board_messages_follow_the_same_body_rules(make_client, asha, seller, body):
    board_id = make_board(asha, sellers=[seller])
    response = send(logged_in(make_client, seller), board_id, body, "rules-key-0001")
    assert response.status_code == 422 and "composer-error" in response.get_data(as_text=True)
    assert messages_in(board_id) == []


def test_a_listing_card_is_shared_into_the_board(owner_client, asha, seller, make_listing):
    hall = make_listing(seller=seller, title="Lakeside lawn")
    listing_services.set_favourite(asha, hall, saved=True)
    board_id = make_board(asha, sellers=[seller])
    page = owner_client.get(f"/boards/{board_id}").get_data(as_text=True)
    assert f'<option value="{hall.id}">Lakeside lawn</option>' in page
    response = owner_client.post(f"/boards/{board_id}/share", {"listing_id": str(hall.id), "body": "",
                                                                "client_key": "share-key-0001"})
    assert response.status_code == 303
    [message] = messages_in(board_id)
    assert (message.listing_id, message.body) == (hall.id, "Lakeside lawn")
    assert 'class="msg-card"' in owner_client.get(f"/boards/{board_id}").get_data(as_text=True)
    draft = make_listing(seller=seller, status="draft")
    hidden = owner_client.post(f"/boards/{board_id}/share", {"listing_id": str(draft.id), "client_key": "share-key-0002"})
    assert hidden.status_code == 404 and len(messages_in(board_id)) == 1


def test_seen_by_counts_the_other_members_with_names_on_demand(make_client, owner_client, asha, seller, make_user):
    meera = make_user(display_name="Meera Shah")
    board_id = make_board(asha, sellers=[seller], organisers=[meera])
    send(owner_client, board_id, "Can everyone do Saturday?", "seen-key-00001")
    page = owner_client.get(f"/boards/{board_id}").get_data(as_text=True)
    assert "<summary>Seen by 0 of 2</summary>" in page and "Not yet: Meera Shah, Ravi Kumar" in page
    logged_in(make_client, seller).get(f"/boards/{board_id}")
    page = owner_client.get(f"/boards/{board_id}").get_data(as_text=True)
    assert "<summary>Seen by 1 of 2</summary>" in page
    assert "Seen: Ravi Kumar</p>" in page and "Not yet: Meera Shah" in page
    board_services.remove_member(board(board_id), asha, meera.id)
    assert "<summary>Seen by 1 of 1</summary>" in owner_client.get(f"/boards/{board_id}").get_data(as_text=True)


def test_the_owner_removes_a_message_for_everyone(make_client, owner_client, asha, seller):
    board_id = make_board(asha, sellers=[seller])
    ravi = logged_in(make_client, seller)
    send(ravi, board_id, "Call me on 98200 00000, cash only", "spam-key-00001")
    [message] = messages_in(board_id)
    url = f"/boards/{board_id}/messages/{message.id}/remove"
    assert "Call me on" in owner_client.get(url).get_data(as_text=True)
    assert ravi.post(url).status_code == 403
    assert owner_client.post(url).status_code == 303
    assert owner_client.post(url).status_code == 404  # already removed
    for who in (owner_client, ravi):
        html = who.get(f"/boards/{board_id}").get_data(as_text=True)
        assert "This message was removed by the board owner." in html and "Call me on" not in html
    assert "message removed" in ravi.get("/inbox").get_data(as_text=True)
    assert messages_in(board_id)[0].body.startswith("Call me on")  # kept for the record


def test_hiding_is_a_service_moderators_use_in_private_conversations_too(make_client, buyer, seller, listing, moderator):
    buyer_client = logged_in(make_client, buyer)
    cid = conversation_id_from(contact(buyer_client, listing, "Pay outside RentPe and save 10%"))
    [message] = messages_in(cid)
    assert hiding.hide_message(message, moderator, hiding.BY_MODERATOR) is True
    assert hiding.hide_message(message, moderator, hiding.BY_MODERATOR) is False
    for who in (buyer_client, logged_in(make_client, seller)):
        html = who.get(f"/conversations/{cid}").get_data(as_text=True)
        assert "This message was removed by a moderator." in html and "Pay outside" not in html
    with pytest.raises(ValueError):
        hiding.hide_message(message, moderator, "because")


def test_the_inbox_lists_boards_beside_private_conversations_with_unread_counts(
        make_client, owner_client, asha, seller, listing):
    ravi = logged_in(make_client, seller)
    cid = conversation_id_from(contact(owner_client, listing, "Is the hall free?"))
    board_id = make_board(asha, sellers=[seller], title="Diwali party")
    send(owner_client, board_id, "Welcome to the board!", "welcome-key-01")
    send(owner_client, board_id, "Budget is 2 lakh", "welcome-key-02")
    inbox = ravi.get("/inbox").get_data(as_text=True)
    assert inbox.index(f'id="inbox-row-{board_id}"') < inbox.index(f'id="inbox-row-{cid}"')
    assert "Diwali party" in inbox and "Asha: Budget is 2 lakh" in text_shown_to(inbox, seller)
    assert "You: Budget is 2 lakh" in text_shown_to(owner_client.get("/inbox").get_data(as_text=True), asha)
    assert re.search(rf'id="inbox-row-{board_id}"[^>]*class="inbox-row board-row unread"', inbox)
    assert re.search(r'id="unread-badge"[^>]*data-count="3"', inbox)
    assert f'inbox-row-{board_id}' in ravi.get("/dashboard/inbox").get_data(as_text=True)


# Who may do what -----------------------------------------------------------------------------

PEOPLE = ["anonymous", "owner", "member", "removed", "stranger", "moderator"]
ACTIONS = {
    # action: (method, url, data, expected by person in PEOPLE order)
    "page": ("get", "/boards/{b}", None, (302, 200, 200, 403, 404, 404)),
    "chat page": ("get", "/conversations/{b}", None, (302, 302, 302, 404, 404, 404)),
    "history": ("get", "/conversations/{b}/messages?before={m}", None, (302, 200, 200, 404, 404, 404)),
    "send": ("post", "/conversations/{b}/messages", {"body": "intruder?", "client_key": "matrix-key-01"},
             (302, 200, 200, 404, 404, 404)),
    "read": ("post", "/conversations/{b}/read", {"up_to": "{m}"}, (302, 204, 204, 404, 404, 404)),
    "typing": ("post", "/conversations/{b}/typing", {}, (302, 204, 204, 404, 404, 404)),
    "share": ("post", "/boards/{b}/share", {"listing_id": "{l}", "client_key": "matrix-key-02"},
              (302, 303, 303, 403, 404, 404)),
    "manage": ("get", "/boards/{b}/manage", None, (302, 200, 403, 403, 404, 404)),
    "rename": ("post", "/boards/{b}/details", {"title": "intruder?", "event_date": "2099-01-01", "city": "Goa"},
               (302, 303, 403, 403, 404, 404)),
    "add": ("post", "/boards/{b}/members", {"email": "new@example.test"}, (302, 303, 403, 403, 404, 404)),
    "remove member": ("post", "/boards/{b}/members/{o}/remove", {}, (302, 303, 403, 403, 404, 404)),
    "remove message": ("post", "/boards/{b}/messages/{m}/remove", {}, (302, 303, 403, 403, 404, 404)),
    "close": ("post", "/boards/{b}/close", {}, (302, 303, 403, 403, 404, 404)),
    "leave": ("post", "/boards/{b}/leave", {}, (302, 409, 303, 403, 404, 404)),
}


@pytest.mark.parametrize("action", ACTIONS)
def test_membership_matrix(make_client, asha, seller, moderator, make_user, make_seller, listing, action):
    """Each person in turn tries the action on a board of their own (so one person's success
    doesn't change what the next one finds); nothing refused changes anything."""
    member, removed, other = make_seller(display_name="Lights Co"), make_user(display_name="Ex Member"), make_user()
    make_user(email="new@example.test")
    people = {"owner": asha, "member": member, "removed": removed, "stranger": other, "moderator": moderator}
    clients = {who: logged_in(make_client, person) for who, person in people.items()}
    clients["anonymous"] = make_client()
    method, url, data, expected = ACTIONS[action]
    outcomes = {}
    for who in PEOPLE:
        board_id = make_board(asha, sellers=[member, seller], organisers=[removed])
        send(clients["owner"], board_id, "members only", f"secret-key-{who}")
        board_services.remove_member(board(board_id), asha, removed.id)
        [message] = messages_in(board_id)
        values = dict(b=board_id, m=message.id, o=seller.id, l=listing.id)
        headers = {"HX-Request": "true"} if action in ("history", "send") else {}
        target, form = url.format(**values), {k: v.format(**values) for k, v in (data or {}).items()}
        client = clients[who]
        response = client.get(target, headers=headers) if method == "get" else client.post(target, form, headers=headers)
        outcomes[who] = response.status_code
        if response.status_code in (403, 404):
            assert "members only" not in response.get_data(as_text=True), who
            assert board(board_id).title == "Meera & Arjun's wedding" and board(board_id).closed_at is None, who
            assert [(m.body, m.hidden_at) for m in messages_in(board_id)] == [("members only", None)], who
            assert member_row(board_id, seller).left_at is None, who
    assert outcomes == dict(zip(PEOPLE, expected))
