"""Missed-message e-mail: pending rows written by the send, the worker's rules (delay, reading
cancels, batching, digest, mute, unsubscribe, who gets nothing), real SMTP (aiosmtpd).

The clock is the worker's `now`: a message is sent at the real time, and the worker is run as if
it were some seconds later. Nothing sleeps."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from rentpe.accounts.models import User
from rentpe.chat.models import Message, Participant
from rentpe.extensions import db
from rentpe.models_base import utcnow
from rentpe.notifications import worker
from rentpe.notifications.models import CANCELLED, PENDING, SENDING, SENT, Notification
from tests.chat_helpers import contact, conversation_id_from
from tests.mail_helpers import html_of, smtp, text_of  # noqa: F401 (fixture)

DELAY, BATCH = 300, 900


@pytest.fixture
def app_overrides(smtp):
    return {"MAIL_URL": smtp.url, "NOTIFY_DELAY_S": DELAY, "NOTIFY_BATCH_S": BATCH, "PUBLIC_URL": "https://rentpe.example"}


def later(seconds):
    return utcnow() + timedelta(seconds=seconds)


def rows():
    return db.session.scalars(select(Notification).order_by(Notification.id)).all()


def send(client, conversation_id, body):
    response = client.post(f"/conversations/{conversation_id}/messages", {"body": body})
    assert response.status_code == 303, response.get_data(as_text=True)[:300]


@pytest.fixture
def conversation(buyer_client, listing):
    return conversation_id_from(contact(buyer_client, listing, "Is the hall free on 12 December?"))


def test_the_send_writes_one_pending_row_per_recipient_in_its_transaction(conversation, buyer_client, seller):
    send(buyer_client, conversation, "And is parking included?")
    [row] = rows()  # the second message joined the pending row of the first
    assert (row.user_id, row.conversation_id, row.status) == (seller.id, conversation, PENDING)
    first = db.session.scalars(select(Message).order_by(Message.id)).first()
    assert row.message_id == first.id
    assert row.due_at == first.created_at + timedelta(seconds=DELAY)


def test_unread_message_is_emailed_once_after_the_delay(conversation, smtp, seller, listing):
    assert worker.run_once(now=later(DELAY - 60)).sent == 0
    assert smtp.inbox.messages == []
    done = worker.run_once(now=later(DELAY + 1))
    assert done.sent == 1
    [message] = smtp.inbox.messages
    assert message["To"] == seller.email
    assert message["Subject"] == "1 new message from Asha Verma"
    assert message["List-Unsubscribe"].strip().startswith("<https://rentpe.example/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = text_of(message), html_of(message)
    for part in (text, html):
        assert "Is the hall free on 12 December?" in part
        assert listing.title in part
        assert f"https://rentpe.example/conversations/{conversation}" in part
    [row] = rows()
    assert row.status == SENT and row.sent_at is not None and row.message_count == 1
    assert worker.run_once(now=later(DELAY + 2)).claimed == 0
    assert len(smtp.inbox.messages) == 1


def test_reading_anywhere_before_it_is_due_cancels_it(conversation, smtp, seller, make_client):
    seller_tab = make_client()
    seller_tab.login(seller)
    last = db.session.scalars(select(Message.id).order_by(Message.id.desc())).first()
    assert seller_tab.post(f"/conversations/{conversation}/read", {"up_to": last}).status_code == 204
    done = worker.run_once(now=later(DELAY + 1))
    assert (done.sent, done.cancelled) == (0, 1)
    assert smtp.inbox.messages == []
    assert rows()[0].status == CANCELLED


def test_an_open_page_does_not_count_as_read(conversation, smtp, seller, make_client):
    """Presence is not reading: the seller's page of another conversation, their inbox, open and idle."""
    seller_tab = make_client()
    seller_tab.login(seller)
    assert seller_tab.get("/inbox").status_code == 200
    assert worker.run_once(now=later(DELAY + 1)).sent == 1


def test_messages_gather_in_one_email_of_at_most_ten_and_the_next_waits_for_the_batching_period(
        conversation, buyer_client, smtp):
    for n in range(2, 15):
        send(buyer_client, conversation, f"Question number {n}")
    assert worker.run_once(now=later(DELAY + 1)).sent == 1
    [first] = smtp.inbox.messages
    text = text_of(first)
    assert "Is the hall free" in text and "Question number 10" in text
    assert "Question number 11" not in text and "and 4 more" in text
    assert first["Subject"] == "14 new messages from Asha Verma"
    sent_at = rows()[0].sent_at

    send(buyer_client, conversation, "Hello? Still there?")
    assert len(rows()) == 2
    assert worker.run_once(now=sent_at + timedelta(seconds=BATCH - 10)).sent == 0  # postponed, not sent
    assert rows()[1].status == PENDING and rows()[1].due_at == sent_at + timedelta(seconds=BATCH)
    assert worker.run_once(now=sent_at + timedelta(seconds=BATCH + 1)).sent == 1
    second = smtp.inbox.messages[1]
    assert "Hello? Still there?" in text_of(second)
    assert "Question number" not in text_of(second)  # what the first e-mail carried is not repeated


def test_a_message_is_escaped_in_the_html_and_a_hidden_one_is_never_quoted(conversation, buyer_client, smtp):
    send(buyer_client, conversation, "<b>bold</b> & <script>alert(1)</script>")
    send(buyer_client, conversation, "Something the moderator hides")
    hidden = db.session.scalars(select(Message).order_by(Message.id.desc())).first()
    hidden.hidden_at = utcnow()
    db.session.commit()
    assert worker.run_once(now=later(DELAY + 1)).sent == 1
    [message] = smtp.inbox.messages
    html = html_of(message)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "<b>bold</b> & <script>alert(1)</script>" in text_of(message)
    assert "moderator hides" not in html and "moderator hides" not in text_of(message)


def test_a_board_message_reaches_every_member_but_the_sender(app, make_user, make_seller, smtp):
    from rentpe.chat.boards import services as boards
    from rentpe.chat.services import send_message

    owner, a, b = make_user(display_name="Owner One"), make_seller(), make_seller()
    board = boards.create_board(owner, "Wedding at the lake", utcnow().date() + timedelta(days=30), "Mumbai")
    boards.add_members(board, owner, [(a, "seller"), (b, "seller")])
    send_message(board, owner, "Welcome, everyone", "k" * 16)
    assert sorted(r.user_id for r in rows()) == sorted([a.id, b.id])
    assert worker.run_once(now=later(DELAY + 1)).sent == 2
    assert {m["Subject"] for m in smtp.inbox.messages} == {"New messages in Wedding at the lake"}
    assert f"https://rentpe.example/boards/{board.id}" in text_of(smtp.inbox.messages[0])


def test_a_board_message_from_someone_blocked_is_never_quoted(app, make_user, make_seller, smtp):
    from rentpe.chat.blocks import block_user
    from rentpe.chat.boards import services as boards
    from rentpe.chat.services import send_message

    owner, a, b = make_user(display_name="Owner One"), make_seller(), make_seller()
    board = boards.create_board(owner, "Haldi", utcnow().date() + timedelta(days=30), "Mumbai")
    boards.add_members(board, owner, [(a, "seller"), (b, "seller")])
    block_user(a, b)  # both stay members; a no longer hears of b
    send_message(board, b, "From the blocked seller", "b" * 16)
    done = worker.run_once(now=later(DELAY + 1))
    assert [m["To"] for m in smtp.inbox.messages] == [db.session.get(User, owner.id).email]  # a: nothing to say
    assert done.cancelled == 1
    send_message(board, owner, "From the owner", "o" * 16)
    worker.run_once(now=later(2 * DELAY + BATCH))
    to_a = [m for m in smtp.inbox.messages if m["To"] == db.session.get(User, a.id).email]
    assert len(to_a) == 1
    assert "From the owner" in text_of(to_a[0]) and "blocked seller" not in text_of(to_a[0])
    assert "blocked seller" not in html_of(to_a[0])


def test_removed_members_get_nothing(app, make_user, make_seller, smtp):
    from rentpe.chat.boards import services as boards
    from rentpe.chat.services import send_message

    owner, a = make_user(), make_seller()
    board = boards.create_board(owner, "Birthday", utcnow().date() + timedelta(days=30), "Pune")
    boards.add_members(board, owner, [(a, "seller")])
    send_message(board, owner, "Hi", "k" * 16)
    boards.remove_member(board, owner, a.id)
    done = worker.run_once(now=later(DELAY + 1))
    assert (done.sent, done.cancelled) == (0, 1)
    assert rows()[0].last_error == "no longer a member"


def test_suspended_people_get_nothing_and_no_row_is_made_for_them(conversation, buyer_client, seller, smtp):
    db.session.get(User, seller.id).is_suspended = True
    db.session.commit()
    assert worker.run_once(now=later(DELAY + 1)).cancelled == 1  # suspended after the row was made
    send(buyer_client, conversation, "Anyone?")
    assert [r.status for r in rows()] == [CANCELLED]  # none made while suspended
    assert smtp.inbox.messages == []


def test_blocking_stops_the_email(conversation, seller, make_client, smtp):
    seller_tab = make_client()
    seller_tab.login(seller)
    assert seller_tab.post(f"/conversations/{conversation}/block").status_code in (302, 303)
    assert worker.run_once(now=later(DELAY + 1)).cancelled == 1
    assert smtp.inbox.messages == []


def test_mute_from_the_conversation_page(conversation, buyer_client, seller, make_client, smtp):
    seller_tab = make_client()
    seller_tab.login(seller)
    page = seller_tab.get(f"/conversations/{conversation}").get_data(as_text=True)
    assert f'action="/conversations/{conversation}/mute"' in page
    assert seller_tab.post(f"/conversations/{conversation}/mute", {"muted": "1"}).status_code == 303
    assert db.session.get(Participant, (conversation, seller.id)).muted
    assert worker.run_once(now=later(DELAY + 1)).cancelled == 1
    send(buyer_client, conversation, "Muted?")
    assert [r.status for r in rows()] == [CANCELLED]  # a muted conversation makes no row
    assert "Turn e-mail back on" in seller_tab.get(f"/conversations/{conversation}").get_data(as_text=True)
    assert seller_tab.post(f"/conversations/{conversation}/mute", {"muted": "0"}).status_code == 303
    send(buyer_client, conversation, "Now?")
    assert worker.run_once(now=later(DELAY + 1)).sent == 1
    assert smtp.inbox.messages[0]["To"] == seller.email


def test_mute_is_for_participants_only(conversation, make_user, make_client):
    stranger = make_client()
    stranger.login(make_user())
    assert stranger.post(f"/conversations/{conversation}/mute", {"muted": "1"}).status_code == 404


def test_one_click_unsubscribe_works_without_a_session_and_changes_only_that_person(
        conversation, smtp, seller, buyer, make_client):
    worker.run_once(now=later(DELAY + 1))
    url = smtp.inbox.messages[0]["List-Unsubscribe"].strip().strip("<>").removeprefix("https://rentpe.example")
    anonymous = make_client()
    page = anonymous.get(url)
    assert page.status_code == 200 and seller.email in page.get_data(as_text=True)
    assert db.session.get(User, seller.id).notify_email == "immediate"  # a GET changes nothing
    # RFC 8058: the mail client POSTs this body, without cookies or a form token.
    response = anonymous.post(url, {"List-Unsubscribe": "One-Click"}, csrf=False)
    assert response.status_code == 200
    assert db.session.get(User, seller.id).notify_email == "never"
    assert db.session.get(User, buyer.id).notify_email == "immediate"
    assert anonymous.post(url[:-3] + "xyz", {"List-Unsubscribe": "One-Click"}, csrf=False).status_code == 400


def test_never_and_digest_and_hourly_preferences(conversation, buyer_client, seller, smtp, make_user, listing):
    user = db.session.get(User, seller.id)
    user.notify_email = "daily"
    db.session.commit()
    hour = utcnow().replace(minute=0, second=0, microsecond=0)
    assert worker.run_once(now=later(DELAY + 1)).postponed == 1
    due = rows()[0].due_at
    assert due.minute == 0 and due.hour == 3 and due > utcnow()
    assert worker.run_once(now=due - timedelta(seconds=1)).sent == 0
    assert worker.run_once(now=due).sent == 1
    assert hour  # the digest's hour is NOTIFY_DIGEST_HOUR (UTC)

    user = db.session.get(User, seller.id)
    user.notify_email = "never"
    db.session.commit()
    send(buyer_client, conversation, "Hello again")
    assert len(rows()) == 1  # none made for someone who turned e-mail off


def test_daily_digest_gathers_every_conversation_in_one_email(app, make_user, make_listing, seller, smtp, make_client):
    user = db.session.get(User, seller.id)
    user.notify_email = "daily"
    db.session.commit()
    for name in ("Asha", "Bilal", "Chitra"):
        buyer = make_user(display_name=name)
        client = make_client()
        client.login(buyer)
        contact(client, make_listing(seller=seller), f"Hi from {name}")
    assert worker.run_once(now=later(DELAY + 1)).postponed == 3
    due = rows()[0].due_at
    assert worker.run_once(now=due).sent == 3
    [digest] = smtp.inbox.messages
    assert digest["Subject"] == "Your RentPe digest: 3 unread messages in 3 conversations"
    for name in ("Asha", "Bilal", "Chitra"):
        assert f"Hi from {name}" in text_of(digest)


def test_hourly_waits_an_hour_after_the_last_email_of_any_conversation(app, make_user, make_listing, seller, smtp,
                                                                      make_client):
    user = db.session.get(User, seller.id)
    user.notify_email = "hourly"
    db.session.commit()
    clients = []
    for name in ("Asha", "Bilal"):
        client = make_client()
        client.login(make_user(display_name=name))
        clients.append(client)
    contact(clients[0], make_listing(seller=seller), "First")
    assert worker.run_once(now=later(DELAY + 1)).sent == 1
    sent_at = rows()[0].sent_at
    contact(clients[1], make_listing(seller=seller), "Second")
    assert worker.run_once(now=later(DELAY + 1)).postponed == 1
    assert rows()[1].due_at == sent_at + timedelta(seconds=3600)
    assert worker.run_once(now=sent_at + timedelta(seconds=3601)).sent == 1


def test_smtp_down_then_up_retries_with_backoff(conversation, smtp, seller):
    smtp.stop()
    now = later(DELAY + 1)
    done = worker.run_once(now=now)
    assert (done.sent, done.failed) == (0, 1)
    [row] = rows()
    assert row.status == SENDING and row.lease_until == now + timedelta(seconds=30) and row.attempts == 1
    assert worker.run_once(now=now + timedelta(seconds=29)).claimed == 0
    done = worker.run_once(now=now + timedelta(seconds=30))
    assert done.failed == 1 and rows()[0].lease_until == now + timedelta(seconds=90)  # 30, then 60
    smtp.start()
    assert worker.run_once(now=now + timedelta(seconds=90)).sent == 1
    assert rows()[0].status == SENT and rows()[0].attempts == 3
    assert [m["To"] for m in smtp.inbox.messages] == [seller.email]


def test_without_mail_url_emails_are_eml_files_listed_on_the_development_page(app, conversation, tmp_path, smtp,
                                                                              seller, make_client):
    app.config.update(MAIL_URL=None, MAIL_FILE_PATH=str(tmp_path / "mail"))
    from rentpe.notifications import mail

    app.config["MAIL_BACKEND"] = "rentpe.notifications.mail.EmailBackend"
    mail.init_app(app)
    assert worker.run_once(now=later(DELAY + 1)).sent == 1
    [eml] = list((tmp_path / "mail").glob("*.eml"))
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in eml.read_bytes()
    viewer = make_client()
    page = viewer.get("/dev/mail").get_data(as_text=True)
    assert "1 new message from Asha Verma" in page
    one = viewer.get(f"/dev/mail/{eml.name}")
    assert one.status_code == 200 and "Is the hall free" in one.get_data(as_text=True)  # the text part
    assert "style-src 'unsafe-inline'" not in one.headers["Content-Security-Policy"]
    html = viewer.get(f"/dev/mail/{eml.name}/html")
    assert html.status_code == 200 and "Is the hall free" in html.get_data(as_text=True)
    assert "style-src 'unsafe-inline'" in html.headers["Content-Security-Policy"]
    assert "script-src" not in html.headers["Content-Security-Policy"]  # default-src 'none' covers it
    assert viewer.get("/dev/mail/..%2Fsecret_key").status_code == 404
    app.config["ENV_NAME"] = "production"
    assert viewer.get("/dev/mail").status_code == 404


def test_a_deleted_account_gets_nothing(conversation, seller, smtp):
    db.session.execute(db.delete(User).where(User.id == seller.id))  # the database's cascades, as an admin would
    db.session.commit()
    assert rows() == []  # its pending e-mails go with it
    assert worker.run_once(now=later(DELAY + 1)).claimed == 0
    assert smtp.inbox.messages == []


def test_a_board_is_muted_from_its_page(app, make_user, make_seller, make_client, smtp):
    from rentpe.chat.boards import services as boards
    from rentpe.chat.services import send_message

    owner, member = make_user(), make_seller()
    board = boards.create_board(owner, "Sangeet night", utcnow().date() + timedelta(days=20), "Delhi")
    boards.add_members(board, owner, [(member, "seller")])
    tab = make_client()
    tab.login(member)
    page = tab.get(f"/boards/{board.id}").get_data(as_text=True)
    assert f'action="/conversations/{board.id}/mute"' in page
    response = tab.post(f"/conversations/{board.id}/mute", {"muted": "1"})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/boards/{board.id}")
    send_message(board, owner, "Muted members get no e-mail", "k" * 16)
    assert rows() == []
    assert tab.post(f"/conversations/{board.id}/mute", {"muted": "maybe"}).status_code == 400


def test_an_email_the_server_refuses_for_good_is_given_up_after_a_few_tries(conversation, smtp):
    smtp.inbox.refuse = True
    now = later(DELAY + 1)
    for attempt in range(1, 5):
        assert worker.run_once(now=now).failed == 1
        assert rows()[0].status == SENDING
        now = rows()[0].lease_until
    assert worker.run_once(now=now).cancelled == 1
    assert rows()[0].status == CANCELLED and rows()[0].last_error.startswith("refused: (554")


def test_a_round_past_half_its_lease_hands_the_rest_back_unsent(app, conversation, smtp):
    """A worker slower than its lease must not send what another may have claimed meanwhile."""
    app.config.update(NOTIFY_LEASE_S=0)
    done = worker.run_once(now=rows()[0].due_at)
    assert (done.claimed, done.sent) == (1, 0) and smtp.inbox.messages == []
    [row] = rows()
    assert row.status == SENDING and row.claim is None and row.attempts == 0
    app.config.update(NOTIFY_LEASE_S=120)
    assert worker.run_once(now=later(DELAY + 1)).sent == 1


def test_a_daily_digest_gathers_more_conversations_than_one_claim_holds(app, make_user, make_listing, seller, smtp,
                                                                       make_client):
    user = db.session.get(User, seller.id)
    user.notify_email = "daily"
    db.session.commit()
    for name in ("Asha", "Bilal", "Chitra", "Dev"):
        client = make_client()
        client.login(make_user(display_name=name))
        contact(client, make_listing(seller=seller), f"Hi from {name}")
    worker.run_once(now=later(DELAY + 1), limit=10)
    due = rows()[0].due_at
    done = worker.run_once(now=due, limit=2)  # claims 2, then the person's other 2 for the digest
    assert (done.claimed, done.sent) == (4, 4)
    [digest] = smtp.inbox.messages
    assert digest["Subject"] == "Your RentPe digest: 4 unread messages in 4 conversations"
