"""The inbox of a busy seller: every conversation reachable a page at a time, the Unread and
Archived views, archive and unarchive, and the seller's dashboard inbox by listing, live too."""
import re

import pytest

from rentpe.chat import services
from rentpe.chat.models import Conversation, Participant
from rentpe.extensions import db
from tests.chat_helpers import contact, conversation_id_from
from tests.stream_helpers import Stream, broker_overrides

ROW = re.compile(r'id="inbox-row-(\d+)"')


@pytest.fixture
def app_overrides(broker):
    return {**broker_overrides(broker), "INBOX_PAGE_SIZE": 3}


@pytest.fixture
def broker():
    return "memory"


def rows_in(html, list_id=None):
    """The conversation ids of the inbox rows, in order (in the list `list_id` if given)."""
    if list_id is not None:
        match = re.search(rf'<ul id="{list_id}"[^>]*>(.*?)</ul>', html, re.S)
        assert match, f"no list #{list_id}"
        html = match.group(1)
    return [int(i) for i in ROW.findall(html)]


@pytest.fixture
def enquiries(make_user, seller, listing):
    """Seven buyers wrote to the seller about the listing, the first one first: conversation ids,
    oldest activity first."""
    ids = []
    for n in range(7):
        buyer = make_user(display_name=f"Buyer {n}")
        message, _ = services.contact_seller(buyer, listing, f"Hello number {n}", f"key-{n:08d}")
        ids.append(message.conversation_id)
    return ids


@pytest.fixture
def seller_client(make_client, seller):
    c = make_client()
    c.login(seller)
    return c


def test_the_inbox_is_paged_newest_activity_first_every_conversation_reachable(seller_client, enquiries):
    newest_first = list(reversed(enquiries))
    shown = []
    for number in (1, 2, 3):
        html = seller_client.get(f"/inbox?page={number}").get_data(as_text=True)
        # Only the first page's list takes new rows live; a later page shown alone has its own id.
        shown += rows_in(html, "inbox-list" if number == 1 else "inbox-list-page")
        assert ("More conversations" in html) == (number < 3)
        assert ("Newer conversations" in html) == (number > 1)
    assert shown == newest_first
    # Past the end: no rows, no error; nonsense: the first page.
    assert rows_in(seller_client.get("/inbox?page=9").get_data(as_text=True)) == []
    assert rows_in(seller_client.get("/inbox?page=x1").get_data(as_text=True)) == newest_first[:3]


def test_more_adds_the_rows_after_the_last_one_shown_even_when_others_moved_up(seller_client, enquiries, seller):
    html = seller_client.get("/inbox").get_data(as_text=True)
    more = re.search(r'hx-get="([^"]+)"[^>]*>More conversations', html).group(1).replace("&amp;", "&")
    assert "after=" in more
    # Meanwhile the oldest conversation gets a message: it moves to the top (live), not into "More".
    oldest = db.session.get(Conversation, enquiries[0])
    services.send_message(oldest, seller, "Still available", "late-answer1")
    answer = seller_client.get(more, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert '<hx-partial hx-target="#inbox-list" hx-swap="upsert key:data-key sort:desc">' in answer
    assert rows_in(answer) == list(reversed(enquiries))[3:6]
    assert 'id="inbox-list-more"' in answer and "hx-swap-oob" in answer
    # Without JavaScript the same link is the next page.
    assert re.search(r'href="/inbox\?page=2"[^>]*\s+hx-get', html)


@pytest.mark.parametrize("url", ["/inbox?filter=spam", "/inbox?after=1;2", "/inbox?after=", "/dashboard/inbox?after=9-x",
                                 "/dashboard/inbox?filter=%00"])
def test_a_filter_or_cursor_that_is_not_one_is_a_clear_400(seller_client, url):
    response = seller_client.get(url)
    assert response.status_code == 400
    assert "make sense to us" in response.get_data(as_text=True)


def test_unread_and_archived_views_and_archive_per_person(seller_client, make_client, enquiries, seller):
    first, second = enquiries[6], enquiries[5]  # the newest two
    seller_client.get(f"/conversations/{first}")  # read
    unread = seller_client.get("/inbox?filter=unread").get_data(as_text=True)
    assert first not in rows_in(unread, "inbox-list-unread") and second in rows_in(unread, "inbox-list-unread")
    assert 'class="inbox only-unread"' in unread

    response = seller_client.post(f"/conversations/{second}/archive", htmx=True)
    assert response.status_code == 200 and response.get_data(as_text=True) == ""
    everything = []
    for number in (1, 2, 3):
        everything += rows_in(seller_client.get(f"/inbox?page={number}").get_data(as_text=True))
    assert second not in everything and len(everything) == 6
    archived = seller_client.get("/inbox?filter=archived").get_data(as_text=True)
    assert rows_in(archived, "inbox-list-archived") == [second]
    # Per person: the buyer still has it.
    buyer_id = db.session.get(Conversation, second).buyer_id
    assert db.session.get(Participant, (second, buyer_id)).archived_message_id is None

    # A new message brings it back, to the top.
    conversation = db.session.get(Conversation, second)
    services.send_message(conversation, conversation.participant(buyer_id).user, "One more question", "again0000001")
    assert rows_in(seller_client.get("/inbox").get_data(as_text=True))[0] == second
    assert rows_in(seller_client.get("/inbox?filter=archived").get_data(as_text=True), "inbox-list-archived") == []

    # Archive again, then unarchive without JavaScript: back where it was.
    seller_client.post(f"/conversations/{second}/archive")
    response = seller_client.post(f"/conversations/{second}/unarchive", {"next": "/inbox?filter=archived"})
    assert response.status_code == 303 and response.headers["Location"] == "/inbox?filter=archived"
    assert rows_in(seller_client.get("/inbox").get_data(as_text=True))[0] == second


def test_only_a_participant_can_archive(make_client, make_user, enquiries):
    stranger = make_client()
    stranger.login(make_user(display_name="Nosy"))
    for action in ("archive", "unarchive"):
        assert stranger.post(f"/conversations/{enquiries[0]}/{action}").status_code == 404
    assert all(p.archived_message_id is None for p in db.session.scalars(db.select(Participant)))


def test_the_dashboard_inbox_is_paged_and_filtered_by_listing(seller_client, enquiries, make_listing, seller, make_user):
    other = make_listing(seller=seller, title="Fairy lights")
    buyer = make_user(display_name="Lights buyer")
    message, _ = services.contact_seller(buyer, other, "Lights for Saturday?", "lights000001")
    html = seller_client.get("/dashboard").get_data(as_text=True)
    assert rows_in(html, "seller-inbox-list") == [message.conversation_id, enquiries[6], enquiries[5]]
    by_listing = seller_client.get(f"/dashboard/inbox?listing={other.id}").get_data(as_text=True)
    assert rows_in(by_listing, f"seller-inbox-listing-{other.id}") == [message.conversation_id]
    page2 = seller_client.get(f"/dashboard/inbox?page=2").get_data(as_text=True)
    assert rows_in(page2, "seller-inbox-list-page") == [enquiries[4], enquiries[3], enquiries[2]]


@pytest.mark.parametrize("broker", ["memory", "redis"])
def test_live_rows_go_only_to_the_lists_they_belong_to(seller_client, make_client, make_user, listing, make_listing,
                                                       seller, broker):
    other = make_listing(seller=seller, title="Fairy lights")
    buyer = make_user(display_name="Meena")
    buyer_client = make_client()
    buyer_client.login(buyer)
    cid = conversation_id_from(contact(buyer_client, listing, "About the hall"))
    stream = Stream(seller_client, "/events?after=0")
    try:
        buyer_client.post(f"/conversations/{cid}/messages", {"body": "And a date?", "client_key": "date00000001"}, htmx=True)
        assert stream.contains("And a date?")
        rows = next(e["data"] for e in stream.events() if f'id="inbox-row-{cid}"' in e["data"] and "And a date?" in e["data"])
        targets = re.findall(r'<hx-partial hx-target="#([^"]+)"', rows)
        assert targets == [f"inbox-row-{cid}", "inbox-list", "inbox-list-unread", "seller-inbox-list",
                           "seller-inbox-list-unread", f"seller-inbox-listing-{listing.id}"]
        assert f"seller-inbox-listing-{other.id}" not in rows and "inbox-list-archived" not in rows

        # Archived, then read in another tab: the row moves within the archived view only.
        seller_client.post(f"/conversations/{cid}/archive", htmx=True)
        seller_client.post(f"/conversations/{cid}/read", {"up_to": 10**9})
        assert stream.read_until(lambda s: "#inbox-list-archived" in s.text)
        read = next(e["data"] for e in stream.events() if "#inbox-list-archived" in e["data"])
        assert re.findall(r'<hx-partial hx-target="#([^"]+)"', read) == [
            f"inbox-row-{cid}", "inbox-list-archived", "seller-inbox-list-archived"]
    finally:
        stream.close()


def test_the_buyers_live_row_has_no_dashboard_copies(make_client, buyer, listing, seller):
    buyer_client = make_client()
    buyer_client.login(buyer)
    cid = conversation_id_from(contact(buyer_client, listing, "Hello"))
    stream = Stream(buyer_client, "/events?after=0")
    try:
        services.send_message(db.session.get(Conversation, cid), seller, "Hi there", "hi0000000001")
        assert stream.contains("Hi there")
        assert "seller-inbox" not in stream.text and "#inbox-list-unread" in stream.text
    finally:
        stream.close()


@pytest.mark.parametrize("broker", ["memory", "redis"])
def test_archiving_moves_the_row_in_the_persons_other_pages(seller_client, make_client, seller, enquiries, broker):
    cid = enquiries[-1]
    other_tab = make_client()
    other_tab.login(seller)
    stream = Stream(other_tab, "/events?after=0")
    try:
        seller_client.post(f"/conversations/{cid}/archive", htmx=True)
        assert stream.read_until(lambda s: "#inbox-list-archived" in s.text)
        frame = next(e["data"] for e in stream.events() if "#inbox-list-archived" in e["data"])
        assert re.findall(r'<hx-partial hx-target="#([^"]+)"', frame) == [
            f"inbox-row-{cid}", "inbox-list-archived", "seller-inbox-list-archived"]
        moves = lambda: [e["data"] for e in stream.events()  # noqa: E731
                         if f'<hx-partial hx-target="#inbox-row-{cid}" hx-swap="delete">' in e["data"]]
        seen = len(moves())
        seller_client.post(f"/conversations/{cid}/unarchive", htmx=True)
        assert stream.read_until(lambda s: len(moves()) > seen)
        back = moves()[-1]
        assert 'hx-target="#inbox-list"' in back and "#inbox-list-archived" not in back
    finally:
        stream.close()
