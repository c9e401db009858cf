"""When every database connection is taken, requests are refused with a 503 the client retries,
never a 500: a stream reconnecting is told to try again shortly (htmx backs off and retries)."""
from contextlib import ExitStack

import pytest
import sqlalchemy as sa

from rentpe.extensions import db


@pytest.fixture
def app_overrides():
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 2, "max_overflow": 0, "pool_timeout": 0.2}}


def take_every_connection(stack):
    db.session.remove()
    while True:
        try:
            stack.enter_context(db.engine.connect())
        except sa.exc.TimeoutError:
            return


@pytest.mark.parametrize("url", ["/events", "/inbox", "/"])
def test_no_free_connection_is_a_503_to_retry(client, buyer, url):
    client.login(buyer)
    with ExitStack() as held:
        take_every_connection(held)
        response = client.get(url)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert url == "/events" or "RentPe is very busy right now" in response.get_data(as_text=True)
    again = client.get(url, buffered=False)  # once one is free, it works again
    assert again.status_code == 200
    again.close()
