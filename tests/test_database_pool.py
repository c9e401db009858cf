"""Pooled connections are pinged when they sat idle, not on every checkout (a message takes four):
a database restart while the pool was idle costs no request."""
import time
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from rentpe import database
from rentpe.extensions import db


@pytest.fixture
def idle_after(monkeypatch):
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.3)


@pytest.fixture
def pings(monkeypatch):
    """How many times the pool pinged a connection (the dialect's own ping, counted)."""
    seen = []
    dialect = db.engine.dialect
    ping = dialect.do_ping
    monkeypatch.setattr(dialect, "do_ping", lambda dbapi_connection: seen.append(1) or ping(dbapi_connection))
    return seen


def test_only_a_connection_that_sat_idle_is_pinged(client, buyer, pings, monkeypatch):
    # The pool's clock stands still unless the test moves it: a slow machine can't make "moments
    # ago" look idle. It stands at the real time, which stamped the connections the fixtures used
    # (a made-up time would make them look idle on a machine that booted less than that ago).
    now = [time.monotonic()]
    monkeypatch.setattr(database, "time", SimpleNamespace(monotonic=lambda: now[0]))
    client.login(buyer)
    db.session.remove()
    for _ in range(3):
        assert client.get("/inbox").status_code == 200
    assert pings == []  # used moments ago: handed out as it is
    now[0] += database.PING_AFTER_IDLE_SECONDS + 0.1
    assert client.get("/inbox").status_code == 200
    assert len(pings) == 1


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_connections_the_database_dropped_while_idle_are_replaced(client, buyer, idle_after, pings):
    client.login(buyer)
    db.session.remove()
    assert client.get("/inbox").status_code == 200
    # The server ends every other session of this database, as a restart would.
    killer = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
    with killer.connect() as conn:
        ended = conn.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    killer.dispose()
    assert ended >= 1
    time.sleep(0.5)
    assert client.get("/inbox").status_code == 200
    assert len(pings) == 1


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_connection_that_dropped_since_its_last_use_costs_one_retry_not_a_500(app, client, buyer, pings):
    app.testing = False  # as in production: an unexpected error would be the 500 page
    client.login(buyer)
    db.session.remove()
    assert client.get("/inbox").status_code == 200
    killer = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
    with killer.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                             " WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    killer.dispose()
    # Used moments ago, so handed out without a ping: the request finds it dead and is told to retry.
    dropped = client.get("/inbox")
    assert dropped.status_code == 503 and dropped.headers["Retry-After"] == "2"
    assert client.get("/inbox").status_code == 200  # the pool connected anew
    assert pings == []
