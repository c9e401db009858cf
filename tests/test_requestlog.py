"""Logs an operator can follow: one access line per request (text or JSON), the id a 500 page shows,
and never a password, a message body or a token, whatever goes through the forms."""
import json
import logging
import re

import pytest
from flask.logging import default_handler

from .chat_helpers import contact, conversation_id_from, messages_in

ACCESS = "rentpe.access"


def access_records(caplog):
    return [r for r in caplog.records if r.name == ACCESS]


@pytest.fixture
def app_overrides():
    return {"HANDLE_UNEXPECTED_ERRORS": True}


@pytest.fixture
def failing_route(app):
    def explode():
        raise RuntimeError("the disk is on fire")

    app.add_url_rule("/explode", "explode", explode)
    return "/explode"


def test_one_line_per_request_with_its_id_user_status_and_duration(client, buyer, caplog, failing_route):
    caplog.set_level(logging.INFO)
    client.get("/login")
    client.login(buyer)
    caplog.clear()
    response = client.get("/inbox")
    [line] = access_records(caplog)
    rid = response.headers["X-Request-ID"]
    assert re.fullmatch(rf"{rid} GET /inbox 200 \d+(\.\d)?ms user={buyer.id}", line.getMessage())
    caplog.clear()
    error = client.get(failing_route)
    rid = error.headers["X-Request-ID"]
    assert f'<code id="request-id">{rid}</code>' in error.get_data(as_text=True)  # the page's id is the line's
    [line] = access_records(caplog)
    assert line.getMessage().startswith(f"{rid} GET /explode 500 ")
    caplog.clear()
    client.get("/healthz")
    client.get("/readyz")
    assert access_records(caplog) == []


def test_paths_are_logged_as_their_route_never_with_a_query_or_a_token(client, caplog):
    caplog.set_level(logging.INFO)
    client.get("/search?q=my-secret-query")
    client.get("/unsubscribe/TOKEN-abcdef123456")
    client.get("/no-such-page/TOKEN-in-a-404/at-all")
    lines = [r.getMessage() for r in access_records(caplog)]
    assert [line.split()[2] for line in lines] == ["/search", "/unsubscribe/<token>", "/no-such-page/…"]
    assert not any("secret" in line or "TOKEN" in line for line in lines)


@pytest.mark.parametrize("app_overrides", [{"LOG_FORMAT": "json", "HANDLE_UNEXPECTED_ERRORS": True}])
def test_log_format_json_makes_every_line_one_json_object(client, buyer, caplog, failing_route):
    caplog.set_level(logging.INFO)
    client.login(buyer)
    caplog.clear()
    response = client.get(failing_route)
    lines = [json.loads(default_handler.format(r)) for r in caplog.records if r.name.startswith("rentpe")]
    error, access = [line for line in lines if line["logger"] == "rentpe.errors"][0], lines[-1]
    rid = response.headers["X-Request-ID"]
    assert error["level"] == "ERROR" and error["request_id"] == rid and "the disk is on fire" in error["exception"]
    assert {k: access[k] for k in ("logger", "request_id", "method", "path", "status", "user_id")} == {
        "logger": ACCESS, "request_id": rid, "method": "GET", "path": "/explode", "status": 500, "user_id": buyer.id}
    assert isinstance(access["duration_ms"], float)


SECRETS = {
    "signup password": "Sekrit-Signup-8d1f",
    "new password": "Sekrit-Changed-44a0",
    "wrong password": "Sekrit-Wrong-6b2e",
    "first message": "Sekrit-First-Message-91c3",
    "message": "Sekrit-Message-0f7d",
    "report note": "Sekrit-Report-Note-5e22",
    "unsubscribe token": "Sekrit-Token-7aa9",
}


@pytest.mark.parametrize("app_overrides", [{"LOG_FORMAT": "text"}, {"LOG_FORMAT": "json"}])
def test_no_secret_that_goes_through_a_form_reaches_any_log(app, client, make_client, listing, caplog):
    caplog.set_level(logging.DEBUG)  # everything: Flask's, ours…
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # …and every SQL statement, as an operator may
    email = "newcomer@example.com"
    client.post("/signup", {"display_name": "Newcomer", "email": email,
                            "password": SECRETS["signup password"], "confirm": SECRETS["signup password"]})
    client.post("/logout")
    client.reset_csrf()
    client.post("/login", {"email": email, "password": SECRETS["wrong password"]})
    client.post("/login", {"email": email, "password": SECRETS["signup password"]})
    client.reset_csrf()
    client.post("/account", {"current": SECRETS["signup password"], "password": SECRETS["new password"],
                             "confirm": SECRETS["new password"]})
    client.reset_csrf()  # a new log-in, a new token
    conversation_id = conversation_id_from(contact(client, listing, SECRETS["first message"]))
    client.post(f"/conversations/{conversation_id}/messages",
                {"body": SECRETS["message"], "client_key": "log-test-key-01"}, htmx=True)
    message = messages_in(conversation_id)[-1]
    assert message.body == SECRETS["message"]  # it went through
    client.post(f"/report/message/{message.id}", {"reason": "spam", "note": SECRETS["report note"]})
    make_client().get(f"/unsubscribe/{SECRETS['unsubscribe token']}")
    cookies = [c.value for c in client.raw._cookies.values()]
    assert cookies  # the session (never logged either)

    formatter = default_handler.formatter
    logged = "\n".join(formatter.format(r) for r in caplog.records)
    assert "/conversations/" in logged and "sqlalchemy" in " ".join(r.name for r in caplog.records)
    for what, secret in SECRETS.items():
        assert secret not in logged, what
    for value in cookies + [client.csrf_token()]:
        assert value not in logged
