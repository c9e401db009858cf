"""A session that ends takes its live streams with it: log-out, and "log out everywhere" (the
suspension path), on both brokers."""
from datetime import timedelta

import pytest

from rentpe.accounts.models import UserSession
from rentpe.accounts.services import end_all_sessions
from rentpe.extensions import db
from rentpe.models_base import utcnow

from .chat_helpers import contact, conversation_id_from, message_count
from .conftest import CSRF_META


@pytest.fixture
def app_overrides(realtime_overrides):
    return realtime_overrides


def test_logging_out_ends_the_stream_and_a_reconnect_is_refused(client, buyer, open_stream):
    client.login(buyer)
    stream = open_stream(client, after=0)
    assert stream.next() == {"comment": "open"}

    client.logout()

    stream.read_to_end()
    assert stream.ended
    assert open_stream(client).status_code == 401


def test_ending_all_sessions_ends_every_stream_of_that_user_only(make_client, buyer, seller, open_stream):
    phone, laptop, other = make_client(), make_client(), make_client()
    phone.login(buyer)
    laptop.login(buyer)
    other.login(seller)
    streams = [open_stream(phone, after=0), open_stream(laptop, after=0)]
    bystander = open_stream(other, after=0)

    end_all_sessions(buyer)

    for stream in streams:
        stream.read_to_end()
        assert stream.ended
    assert open_stream(phone).status_code == 401 and open_stream(laptop).status_code == 401
    assert bystander.quiet_for(0.3) == [] and not bystander.ended


# Copied cookies: what an attacker who stole them (or a shared computer) still has after log-out.

def copy_cookies(source, target, names=("session", "remember_token")):
    for name in names:
        cookie = source.raw.get_cookie(name)
        if cookie is not None:
            target.raw.set_cookie(name, cookie.value)


def test_a_copied_session_cookie_stops_working_at_log_out(make_client, buyer, listing, open_stream):
    owner, thief = make_client(), make_client()
    owner.login(buyer)
    copy_cookies(owner, thief)
    conversation = conversation_id_from(contact(owner, listing))
    assert thief.get("/inbox").status_code == 200  # the copy works while the log-in is open

    owner.logout()

    assert thief.get("/inbox").status_code == 302
    assert open_stream(thief).status_code == 401
    before = message_count()
    token = CSRF_META.search(thief.get("/").get_data(as_text=True)).group(1)
    sent = thief.open("post", f"/conversations/{conversation}/messages", data={"body": "still me?", "csrf_token": token})
    assert sent.status_code in (302, 401) and message_count() == before


def test_the_remember_cookie_is_new_at_every_log_in_and_dies_at_log_out(make_client, buyer):
    first, second, thief = make_client(), make_client(), make_client()
    for c in (first, second):
        c.reset_csrf()
        assert c.post("/login", {"email": buyer.email, "password": "password123", "remember": "y"}).status_code == 302
        c.reset_csrf()  # the log-in started a fresh session
    assert first.raw.get_cookie("remember_token").value != second.raw.get_cookie("remember_token").value
    copy_cookies(first, thief, names=("remember_token",))  # the remember cookie alone logs in
    assert thief.get("/inbox").status_code == 200

    first.logout()

    remembered_only = make_client()
    copy_cookies(thief, remembered_only, names=("remember_token",))
    assert remembered_only.get("/inbox").status_code == 302
    assert thief.get("/inbox").status_code == 302
    assert second.get("/inbox").status_code == 200  # the other log-in is untouched


def test_a_log_in_ends_on_the_server_when_it_expires(client, buyer):
    client.login(buyer)
    db.session.execute(db.update(UserSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert client.get("/inbox").status_code == 302


def test_changing_the_password_logs_out_every_other_device_and_ends_their_streams(make_client, buyer, open_stream):
    here, phone, thief = make_client(), make_client(), make_client()
    here.login(buyer)
    phone.login(buyer)
    copy_cookies(here, thief)
    stream = open_stream(phone, after=0)
    assert stream.next() == {"comment": "open"}

    response = here.post("/account", {"current": "password123", "password": "a new secret 42",
                                      "confirm": "a new secret 42"})

    assert response.status_code == 302
    stream.read_to_end()
    assert stream.ended
    assert phone.get("/inbox").status_code == 302 and thief.get("/inbox").status_code == 302
    assert here.get("/inbox").status_code == 200  # the browser that changed it stays in
    here.logout()
    here.login(buyer, password="a new secret 42")


def test_a_wrong_current_password_changes_nothing(client, buyer):
    client.login(buyer)
    response = client.post("/account", {"current": "not it", "password": "a new secret 42",
                                        "confirm": "a new secret 42"})
    assert response.status_code == 422
    assert "not your current password" in response.get_data(as_text=True)
    assert client.get("/inbox").status_code == 200
    client.logout()
    client.login(buyer)


@pytest.mark.parametrize("app_overrides", [{"RATELIMIT_ENABLED": True}])
def test_guessing_the_current_password_is_rate_limited(client, buyer):
    client.login(buyer)
    for _ in range(10):
        client.post("/account", {"current": "guess", "password": "a new secret 42", "confirm": "a new secret 42"})
    response = client.post("/account", {"current": "password123", "password": "a new secret 42",
                                        "confirm": "a new secret 42"})
    assert response.status_code == 429 and "Retry-After" in response.headers


def test_log_out_everywhere_from_the_account_page(make_client, buyer, seller, open_stream):
    here, phone, other = make_client(), make_client(), make_client()
    here.login(buyer)
    phone.login(buyer)
    other.login(seller)
    page = here.get("/account").get_data(as_text=True)
    assert "Log out everywhere" in page and "logged in 2 times" in page
    streams = [open_stream(here, after=0), open_stream(phone, after=0)]

    response = here.post("/account/sessions/end")

    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    for stream in streams:
        stream.read_to_end()
        assert stream.ended
    assert here.get("/inbox").status_code == 302 and phone.get("/inbox").status_code == 302
    assert other.get("/inbox").status_code == 200
