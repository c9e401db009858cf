"""Errors are never silent: an unexpected exception is logged with its traceback and a request id
the error page shows; a `next` carrying control characters is never followed."""
import logging

import pytest

HOSTILE_NEXT = [
    "/%0D%0ASet-Cookie:x=1",
    "/%0ASet-Cookie:x=1",
    "/%0D",
    "/%09/evil.example",  # browsers drop the tab: //evil.example
    "/%00",
    "/%7F",
    "/%C2%85x",  # NEL, a C1 control
]


@pytest.mark.parametrize("next_", HOSTILE_NEXT)
def test_a_next_with_control_characters_is_not_followed(client, buyer, next_):
    client.login(buyer)
    response = client.get(f"/login?next={next_}")
    # NUL is refused before any view (request_rules); the rest go home instead.
    assert (response.status_code, response.headers.get("Location")) in ((302, "/"), (400, None))
    assert "x=1" not in str(response.headers)


@pytest.mark.parametrize("next_", HOSTILE_NEXT)
def test_logging_in_with_a_hostile_next_lands_on_the_home_page(client, buyer, next_):
    client.reset_csrf()
    response = client.post(f"/login?next={next_}", {"email": buyer.email, "password": "password123"})
    assert (response.status_code, response.headers.get("Location")) in ((302, "/"), (400, None))


def test_a_plain_next_is_still_followed(client, buyer):
    client.login(buyer)
    assert client.get("/login?next=/inbox%3Fpage%3D2").headers["Location"] == "/inbox?page=2"


@pytest.fixture
def app_overrides():
    return {"HANDLE_UNEXPECTED_ERRORS": True}


@pytest.fixture
def failing_route(app):
    def explode():
        raise RuntimeError("the disk is on fire")

    app.add_url_rule("/explode", "explode", explode)
    return "/explode"


@pytest.mark.parametrize("htmx", [False, True])
def test_an_unexpected_error_is_logged_with_its_traceback_and_the_page_shows_its_id(client, failing_route, caplog,
                                                                                       htmx):
    with caplog.at_level(logging.ERROR, logger="rentpe.errors"):
        response = client.get(failing_route, headers={"HX-Request": "true"} if htmx else {})

    assert response.status_code == 500
    request_id = response.headers["X-Request-ID"]
    assert len(request_id) == 16
    page = response.get_data(as_text=True)
    assert f'<code id="request-id">{request_id}</code>' in page
    assert ("<html" in page) is not htmx  # htmx gets the fragment, where the action was
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert request_id in record.getMessage() and "GET /explode" in record.getMessage()
    assert record.exc_info and "the disk is on fire" in caplog.text and "Traceback" in caplog.text


def test_each_request_gets_its_own_id(client, failing_route):
    first, second = client.get(failing_route), client.get(failing_route)
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
