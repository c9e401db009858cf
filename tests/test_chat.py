"""Private buyer–seller chat: first contact, sending, inbox, receipts, input rules, access."""
import re
import threading

import pytest

from rentpe.chat import services
from rentpe.chat.models import Conversation
from rentpe.extensions import db
from tests.chat_helpers import (
    contact, conversation_count, conversation_id_from, message_count, messages_in, participant,
)


def test_first_contact_opens_a_conversation_with_a_listing_card(buyer_client, listing, seller, buyer):
    response = contact(buyer_client, listing, "Hello! Is the hall free on 12 Dec?")
    cid = conversation_id_from(response)
    conversation = db.session.get(Conversation, cid)
    assert (conversation.buyer_id, conversation.seller_id) == (buyer.id, seller.id)
    [message] = messages_in(cid)
    assert message.listing_id == listing.id and message.body == "Hello! Is the hall free on 12 Dec?"
    page = buyer_client.get(f"/conversations/{cid}").get_data(as_text=True)
    assert 'class="msg-card"' in page and listing.title in page
    assert participant(cid, seller).unread_count == 1


def test_a_second_listing_of_the_same_seller_reuses_the_conversation(buyer_client, make_listing, seller):
    first, second = make_listing(seller=seller), make_listing(seller=seller, title="Fairy lights")
    cid = conversation_id_from(contact(buyer_client, first))
    assert conversation_id_from(contact(buyer_client, second, "And the lights?")) == cid
    assert [m.listing_id for m in messages_in(cid)] == [first.id, second.id]
    assert conversation_count() == 1


def test_contacting_your_own_listing_is_refused(client, seller, listing):
    client.login(seller)
    response = contact(client, listing)
    assert response.status_code == 400
    assert "your own listing" in response.get_data(as_text=True)
    assert conversation_count() == 0


def test_contact_needs_login(client, listing):
    response = contact(client, listing)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert message_count() == 0


def test_contact_on_a_paused_listing_is_404(buyer_client, make_listing, seller):
    paused = make_listing(seller=seller, status="paused")
    assert contact(buyer_client, paused).status_code == 404
    assert conversation_count() == 0


@pytest.mark.parametrize("body, stored", [
    ("  hi there  ", "hi there"),
    ("line one\r\nline two", "line one\nline two"),
    ("bell\x07 and\x1b escape", "bell and escape"),
    ("x" * 4000, "x" * 4000),
])
def test_bodies_are_trimmed_and_cleaned(buyer_client, listing, body, stored):
    cid = conversation_id_from(contact(buyer_client, listing, body))
    assert messages_in(cid)[0].body == stored


@pytest.mark.parametrize("body", ["", "   \n\t ", "x" * 4001, "\x01\x02 \x7f"])
def test_invalid_bodies_are_a_composer_error_and_store_nothing(buyer_client, listing, body):
    cid = conversation_id_from(contact(buyer_client, listing, "first"))
    response = buyer_client.post(f"/conversations/{cid}/messages", {"body": body, "client_key": "k" * 16}, htmx=True)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'class="field-error composer-error"' in html and f'id="conv-{cid}-composer"' in html
    assert len(messages_in(cid)) == 1


def test_a_nul_byte_is_refused_and_nothing_stored(buyer_client, listing):
    cid = conversation_id_from(contact(buyer_client, listing, "first"))
    response = buyer_client.post(f"/conversations/{cid}/messages", {"body": "a\x00b", "client_key": "nul-key-00001"})
    assert response.status_code == 400
    assert len(messages_in(cid)) == 1


def test_htmx_send_answers_with_the_message_and_a_fresh_composer(buyer_client, listing):
    cid = conversation_id_from(contact(buyer_client, listing, "first"))
    response = buyer_client.post(f"/conversations/{cid}/messages",
                                 {"body": "second one", "client_key": "key-0000000001"}, htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    [message] = [m for m in messages_in(cid) if m.body == "second one"]
    assert f'id="msg-{message.id}"' in html and html.count("second one") == 1
    assert f'hx-target="#conv-{cid}-messages"' in html
    new_key = re.search(r'name="client_key" value="([^"]+)"', html).group(1)
    assert new_key != "key-0000000001"


def test_plain_form_send_redirects_back(buyer_client, listing):
    cid = conversation_id_from(contact(buyer_client, listing, "first"))
    response = buyer_client.post(f"/conversations/{cid}/messages", {"body": "no js", "client_key": "key-0000000002"})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/conversations/{cid}")
    assert "no js" in buyer_client.get(f"/conversations/{cid}").get_data(as_text=True)


def test_the_same_client_key_stores_one_message_and_answers_the_same(buyer_client, listing):
    cid = conversation_id_from(contact(buyer_client, listing, "first"))
    data = {"body": "double click", "client_key": "dup-key-123456"}
    one = buyer_client.post(f"/conversations/{cid}/messages", data, htmx=True)
    two = buyer_client.post(f"/conversations/{cid}/messages", data, htmx=True)
    assert one.status_code == two.status_code == 200
    assert [m.body for m in messages_in(cid)].count("double click") == 1
    msg_id = [m.id for m in messages_in(cid) if m.body == "double click"][0]
    assert f'id="msg-{msg_id}"' in one.get_data(as_text=True) and f'id="msg-{msg_id}"' in two.get_data(as_text=True)


def test_the_same_contact_key_stores_one_message(buyer_client, listing):
    r1 = contact(buyer_client, listing, "hello", client_key="contact-key-1")
    r2 = contact(buyer_client, listing, "hello", client_key="contact-key-1")
    assert conversation_id_from(r1) == conversation_id_from(r2)
    assert message_count() == 1


def test_bodies_are_escaped_newlines_kept_links_safe(buyer_client, listing):
    body = '<script>alert(1)</script>\n<img src=x onerror=alert(2)>\nsee https://example.com/a?b=1&c=2.'
    cid = conversation_id_from(contact(buyer_client, listing, body))
    html = buyer_client.get(f"/conversations/{cid}").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert '<a href="https://example.com/a?b=1&amp;c=2" rel="nofollow noopener" target="_blank">' in html
    assert "&lt;/script&gt;\n&lt;img" in html  # the newline is kept (shown with pre-wrap)


def test_inbox_lists_conversations_by_last_activity_with_unread_counts(app, make_client, make_user, seller, listing):
    buyers = [make_user(display_name=f"Buyer {i}") for i in range(3)]
    for b in buyers:
        c = make_client()
        c.login(b)
        contact(c, listing, f"from {b.display_name}")
    seller_client = make_client()
    seller_client.login(seller)
    html = seller_client.get("/inbox").get_data(as_text=True)
    order = [html.index(f"Buyer {i}") for i in (2, 1, 0)]
    assert order == sorted(order)
    assert re.search(r'id="unread-badge"[^>]*data-count="3"', html)
    assert html.count('class="inbox-row unread"') == 3
    dashboard = seller_client.get("/dashboard/inbox").get_data(as_text=True)
    assert all(f"from Buyer {i}" in dashboard for i in range(3))


def test_the_sellers_inbox_puts_unread_conversations_first(make_client, make_user, seller_client, listing):
    for name in ("Early bird", "Late riser"):
        c = make_client()
        c.login(make_user(display_name=name))
        contact(c, listing, f"hello from {name}")
    html = seller_client.get("/dashboard/inbox").get_data(as_text=True)
    assert html.index("Late riser") < html.index("Early bird")  # newest first while both are unread
    late = re.search(r'id="inbox-row-(\d+)"[^>]*>\s*<a href="/conversations/(\d+)">(?:(?!</li>).)*Late riser', html, re.S)
    seller_client.get(f"/conversations/{late.group(2)}")  # read: the older, unread one goes on top
    for page in ("/dashboard/inbox", "/dashboard"):
        html = seller_client.get(page).get_data(as_text=True)
        assert html.index("Early bird") < html.index("Late riser"), page


def test_dashboard_inbox_filters_by_listing(make_client, make_user, seller, make_listing):
    hall, lights = make_listing(seller=seller), make_listing(seller=seller, title="Fairy lights")
    for listing, name in ((hall, "Hall fan"), (lights, "Lights fan")):
        c = make_client()
        c.login(make_user(display_name=name))
        contact(c, listing, f"about {listing.title}")
    sc = make_client()
    sc.login(seller)
    html = sc.get(f"/dashboard/inbox?listing={lights.id}").get_data(as_text=True)
    assert "Lights fan" in html and "Hall fan" not in html


def test_opening_the_conversation_reads_it_and_the_receipt_says_seen(buyer_client, seller_client, listing, seller, buyer):
    cid = conversation_id_from(contact(buyer_client, listing, "hi"))
    assert 'data-status="sent"' in buyer_client.get(f"/conversations/{cid}").get_data(as_text=True)
    seller_client.get(f"/conversations/{cid}")
    assert participant(cid, seller).unread_count == 0
    assert 'data-status="seen"' in buyer_client.get(f"/conversations/{cid}").get_data(as_text=True)


def test_the_seen_line_says_which_message_was_seen(buyer_client, seller_client, listing):
    """The receipt sits under the thread; when the seller's reply is the last message there, "Seen"
    alone would read as if the reply was seen. It names the buyer's message and links to it."""
    cid = conversation_id_from(contact(buyer_client, listing, "Is the hall free on 12 Dec?"))
    seller_client.post(f"/conversations/{cid}/messages", {"body": "Yes it is", "client_key": "reply-key-0001"})
    mine, reply = messages_in(cid)
    html = buyer_client.get(f"/conversations/{cid}").get_data(as_text=True)
    line = re.search(rf'<p id="conv-{cid}-receipt"[^>]*>(.*?)</p>', html).group(1)
    assert re.fullmatch(rf'<a class="receipt-of" href="#msg-{mine.id}">Your last message</a> · Seen \d\d:\d\d', line)
    assert f'id="msg-{mine.id}"' in html


def test_delivered_comes_between_sent_and_seen(buyer_client, listing, seller):
    cid = conversation_id_from(contact(buyer_client, listing, "hi"))
    [message] = messages_in(cid)
    services.mark_delivered(seller.id, {cid: message.id})
    assert 'data-status="delivered"' in buyer_client.get(f"/conversations/{cid}").get_data(as_text=True)


def test_a_receipts_order_grows_with_every_step_of_every_message(buyer_client, seller_client, listing, seller):
    """Pages keep the receipt with the higher data-order (static/js/chat.js): each step of a
    message, and a newer message's first step, must rank above everything before it."""
    def receipt():
        html = buyer_client.get(f"/conversations/{cid}").get_data(as_text=True)
        status, order = re.search(rf'id="conv-{cid}-receipt"[^>]*data-status="(\w*)" data-order="(\d+)"', html).groups()
        return status, int(order)

    cid = conversation_id_from(contact(buyer_client, listing, "one"))
    steps = [receipt()]
    [first] = messages_in(cid)
    services.mark_delivered(seller.id, {cid: first.id})
    steps.append(receipt())
    seller_client.post(f"/conversations/{cid}/read", {"up_to": str(first.id)})
    steps.append(receipt())
    buyer_client.post(f"/conversations/{cid}/messages", {"body": "two", "client_key": "k-two-000002"})
    steps.append(receipt())
    assert [status for status, _ in steps] == ["sent", "delivered", "seen", "sent"]
    orders = [order for _, order in steps]
    assert orders == sorted(set(orders)), orders


def test_read_cursor_only_moves_forward_and_is_clamped(buyer_client, seller_client, listing, seller):
    cid = conversation_id_from(contact(buyer_client, listing, "one"))
    buyer_client.post(f"/conversations/{cid}/messages", {"body": "two", "client_key": "k-two-000001"})
    first, second = messages_in(cid)
    assert seller_client.post(f"/conversations/{cid}/read", {"up_to": str(first.id)}).status_code == 204
    assert participant(cid, seller).unread_count == 1
    seller_client.post(f"/conversations/{cid}/read", {"up_to": "999999999"})
    assert participant(cid, seller).last_read_message_id == second.id
    assert participant(cid, seller).unread_count == 0
    seller_client.post(f"/conversations/{cid}/read", {"up_to": str(first.id)})
    assert participant(cid, seller).last_read_message_id == second.id
    assert seller_client.post(f"/conversations/{cid}/read", {"up_to": "abc"}).status_code == 400


def test_older_messages_page_backwards(buyer_client, listing):
    cid = conversation_id_from(contact(buyer_client, listing, "message 0"))
    for i in range(1, 35):
        buyer_client.post(f"/conversations/{cid}/messages", {"body": f"message {i}", "client_key": f"key-older-{i:04d}"})
    page = buyer_client.get(f"/conversations/{cid}").get_data(as_text=True)
    assert "message 34" in page and "message 5<" in page and "message 4<" not in page
    oldest_shown = messages_in(cid)[5].id
    older = buyer_client.get(f"/conversations/{cid}/messages?before={oldest_shown}", headers={"HX-Request": "true"})
    html = older.get_data(as_text=True)
    assert "message 0<" in html and "message 4<" in html and "message 5<" not in html
    assert f'id="conv-{cid}-older" class="older" hx-swap-oob="true"></p>' in html
    no_js = buyer_client.get(f"/conversations/{cid}?before={oldest_shown}").get_data(as_text=True)
    assert "message 0<" in no_js and "Back to the newest messages" in no_js


ROUTES = [
    ("get", "/conversations/{cid}", None),
    ("get", "/conversations/{cid}/messages?before=999", None),
    ("post", "/conversations/{cid}/messages", {"body": "intruder", "client_key": "intruder-key-1"}),
    ("post", "/conversations/{cid}/read", {"up_to": "999"}),
    ("post", "/conversations/{cid}/typing", {}),
]


@pytest.mark.parametrize("method, url, data", ROUTES)
@pytest.mark.parametrize("who, expected", [
    ("anonymous", 302), ("stranger", 404), ("moderator", 404), ("buyer", None), ("seller", None),
])
def test_access_matrix(make_client, buyer, seller, moderator, make_user, listing, method, url, data, who, expected):
    owner = make_client()
    owner.login(buyer)
    cid = conversation_id_from(contact(owner, listing, "private"))
    client = make_client()
    person = {"stranger": make_user(), "moderator": moderator, "buyer": buyer, "seller": seller}.get(who)
    if person is not None:
        client.login(person)
    url = url.format(cid=cid)
    response = client.get(url) if method == "get" else client.post(url, data)
    if expected is None:
        assert response.status_code in (200, 204, 302, 303)
    else:
        assert response.status_code == expected
        assert "private" not in response.get_data(as_text=True)
        assert [m.body for m in messages_in(cid)] == ["private"]


def test_first_messages_racing_share_one_conversation(app, backend, buyer, listing):
    """Two first contacts at once (threads, each its own app context and connection)."""
    barrier = threading.Barrier(4)
    errors = []
    User, Listing, buyer_id, listing_id = type(buyer), type(listing), buyer.id, listing.id

    def first_contact(i):
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                services.contact_seller(db.session.get(User, buyer_id), db.session.get(Listing, listing_id),
                                        f"racing {i}", f"race-key-{i:04d}")
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            with app.app_context():
                db.session.remove()

    threads = [threading.Thread(target=first_contact, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert conversation_count() == 1
    assert message_count() == 4
    conversation = db.session.scalars(db.select(Conversation)).one()
    assert participant(conversation.id, listing.seller).unread_count == 4
