"""Fixtures: app → client → logged-in users, against SQLite *and* PostgreSQL.

Every test that takes `app` (directly or through `client`, `db_session`, factories…) runs once per
database backend. The schema is created only by the Alembic migrations, once per backend per test
session; between tests the tables are emptied. PostgreSQL must be reachable: if it is not, the
PostgreSQL half of the suite errors (never skips).
"""
import hashlib
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from rentpe import create_app
from rentpe.extensions import db

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://127.0.0.1:5432/test")
REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
BACKENDS = ["sqlite", "postgresql"]


def _pg_database_name():
    # One database per test run (checkout, xdist worker and process), so two runs in one checkout
    # at the same time never share (or drop) each other's tables.
    checkout = hashlib.sha1(str(Path(__file__).resolve().parent).encode()).hexdigest()[:8]
    return f"rentpe_test_{checkout}_{WORKER}_{os.getpid()}"


def _pg_admin(*statements):
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    admin.dispose()


def _pg_database_url():
    name = _pg_database_name()
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


@contextmanager
def scratch_database(backend, tmpdir, label="scratch"):
    """An empty database of its own (for migration tests), dropped afterwards."""
    if backend == "sqlite":
        path = tmpdir / f"{label}.db"
        path.unlink(missing_ok=True)
        yield f"sqlite:///{path}"
        path.unlink(missing_ok=True)
        return
    name = f"{_pg_database_name()}_{label}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pytest_sessionfinish(session):
    if "postgresql" in _migrated:
        _pg_admin(f'DROP DATABASE IF EXISTS "{_pg_database_name()}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _tmpdir():
    with tempfile.TemporaryDirectory(prefix="rentpe-tests-") as path:
        yield Path(path)


_migrated = {}


def database_url_for(backend, tmpdir):
    """The URL of a migrated database for `backend`, created on first use in this session."""
    if backend not in _migrated:
        url = f"sqlite:///{tmpdir / 'test.db'}" if backend == "sqlite" else _pg_database_url()
        app = create_app(_overrides(url, tmpdir))
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            db.engine.dispose()
        _migrated[backend] = url
    return _migrated[backend]


def _overrides(url, tmpdir):
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": url,
        "REDIS_URL": None,
        "REDIS_CLUSTER_NODES": None,
        "UPLOAD_FOLDER": str(tmpdir / "uploads"),
        "SERVER_NAME": "localhost",
        "RATELIMIT_ENABLED": False,
    }


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def app_overrides():
    """Override in a test module to change the app's configuration."""
    return {}


@pytest.fixture
def app(backend, _tmpdir, app_overrides):
    url = database_url_for(backend, _tmpdir)
    app = create_app({**_overrides(url, _tmpdir), **app_overrides})
    with app.app_context():
        yield app
        db.session.remove()
        _empty_tables()
        db.engine.dispose()


def _empty_tables():
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(sa.text(f"DELETE FROM {name}"))
            conn.execute(sa.text("DELETE FROM sqlite_sequence")) if _has_sqlite_sequence(conn) else None


def _has_sqlite_sequence(conn):
    return conn.execute(sa.text("SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'")).first() is not None


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class Client:
    """A test client that sends the CSRF token the way a browser form does.

    Each request runs in its own app context, as in production: its own `g` and its own database
    session. Afterwards the test's session is expired, so the test reads what the request wrote.
    """

    def __init__(self, app):
        self.app = app
        self.raw = app.test_client()
        self._token = None

    def open(self, method, *args, **kwargs):
        with self.app.app_context():
            response = getattr(self.raw, method)(*args, **kwargs)
        db.session.expire_all()
        return response

    def csrf_token(self):
        if self._token is None:
            page = self.open("get", "/").get_data(as_text=True)
            self._token = CSRF_META.search(page).group(1)
        return self._token

    def reset_csrf(self):
        self._token = None

    def get(self, *args, **kwargs):
        return self.open("get", *args, **kwargs)

    def post(self, url, data=None, htmx=False, csrf=True, headers=None, **kwargs):
        data = dict(data or {})
        if csrf and "csrf_token" not in data:
            data["csrf_token"] = self.csrf_token()
        headers = dict(headers or {})
        if htmx:
            headers["HX-Request"] = "true"
        return self.open("post", url, data=data, headers=headers, **kwargs)

    def login(self, user, password="password123"):
        self.reset_csrf()
        response = self.post("/login", {"email": user.email, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        self.reset_csrf()
        return response

    def logout(self):
        response = self.post("/logout")
        self.reset_csrf()
        return response


@pytest.fixture
def client(app):
    return Client(app)


@pytest.fixture
def make_client(app):
    """A fresh client per call: for tests with several people at once."""
    return lambda: Client(app)


@pytest.fixture
def buyer_client(client, buyer):
    """The default client, logged in as the buyer."""
    client.login(buyer)
    return client


@pytest.fixture
def seller_client(make_client, seller):
    """A second client, logged in as the seller."""
    c = make_client()
    c.login(seller)
    return c



# Live updates: both brokers, tiny timings, and a stream reader ----------------------------------

@pytest.fixture(params=["inprocess", "redis"])
def broker(request):
    """The broker under test. "cluster" (a Redis Cluster of 3 shards, started once per session)
    is asked for by the contract tests that run on it too: `parametrize("broker", …, indirect=True)`."""
    return request.param


# The contract tests that run on the Redis Cluster as well (delivery, replay, presence,
# end_streams): the rest of the stream suite exercises the hub and the stream, not the transport.
ON_EVERY_BROKER = pytest.mark.parametrize("broker", ["inprocess", "redis", "cluster"], indirect=True)


@pytest.fixture(scope="session")
def redis_cluster():
    """A real Redis Cluster, 3 primaries and 3 replicas on loopback ports, for the whole session
    (about 2 s to start). Tests that kill a node restore it (`restore_cluster`)."""
    from tests.redis_cluster import LocalCluster

    cluster = LocalCluster()
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    yield cluster
    cluster.stop()


@pytest.fixture
def realtime_overrides(broker, request):
    """App settings for tests of live behaviour: the broker under test, a channel prefix of this
    test's own (Redis is shared), and stream timings small enough to watch them happen."""
    cluster = request.getfixturevalue("redis_cluster") if broker == "cluster" else None
    return {
        "REDIS_URL": REDIS_TEST_URL if broker == "redis" else None,
        "REDIS_CLUSTER_NODES": cluster.nodes if cluster else None,
        "REALTIME_CHANNEL_PREFIX": f"rentpe-test:{uuid.uuid4().hex[:12]}:",
        "STREAM_HEARTBEAT_SECONDS": 0.05,
        "STREAM_LIFETIME_SECONDS": 5,
        "STREAM_LIFETIME_JITTER_SECONDS": 0,
        "STREAM_GAP_SECONDS": 1,
        "PRESENCE_TTL_SECONDS": 1,
        "PRESENCE_GRACE_SECONDS": 1,
        "REALTIME_HUB_PING_SECONDS": 0.5,
    }


@pytest.fixture
def live(app):
    """Renderers and hooks a test registers are dropped afterwards, and the app's streams and
    Redis connections closed."""
    from rentpe import realtime
    from rentpe.realtime import registry

    saved = registry.saved()
    # Generic realtime tests see only what they register (not chat's renderers and snapshots).
    registry.restore(({}, {}, [], {}, []))
    yield
    registry.restore(saved)
    realtime.shutdown(app)


@pytest.fixture
def open_stream(live):
    """`open_stream(client, after=None, last_event_id=None)` -> an EventStream on /events."""
    opened = []

    def open_(client, after=None, last_event_id=None):
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        query = {"after": after} if after is not None else {}
        stream = EventStream(client.get("/events", headers=headers, query_string=query))
        opened.append(stream)
        return stream

    yield open_
    for stream in opened:
        stream.close()


SSE_LINE = re.compile(r"\r\n|\r|\n")


class EventStream:
    """Reads an SSE response the way a browser's parser does (WHATWG "Server-sent events"):
    lines end at CRLF, CR or LF; a blank line ends a message; `:` starts a comment.

    Messages are dicts: {"id", "event", "data"} (id/event None when the frame had none), and
    comments {"comment": text}. Reading blocks on the response, so streams under test need a
    short heartbeat; every read has a deadline.
    """

    def __init__(self, response):
        self.response = response
        self.status_code = response.status_code
        self.headers = response.headers
        self.ended = False
        self._chunks = response.iter_encoded() if response.status_code == 200 else iter(())
        self._text = ""
        self._pending = []
        self._fields = {}

    def _parse(self, text):
        self._text += text
        *lines, self._text = SSE_LINE.split(self._text)
        for line in lines:
            if not line:
                if self._fields:
                    data = self._fields.get("data")
                    self._pending.append({"id": self._fields.get("id"), "event": self._fields.get("event"),
                                          "data": "\n".join(data) if data is not None else None})
                self._fields = {}
            elif line.startswith(":"):
                self._pending.append({"comment": line[1:].strip()})
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    self._fields.setdefault("data", []).append(value)
                elif name in ("id", "event"):
                    self._fields[name] = value

    def next(self, timeout=3.0):
        """The next message or comment; None once the stream has ended."""
        deadline = time.monotonic() + timeout
        while not self._pending:
            if self.ended:
                return None
            assert time.monotonic() < deadline, "the stream sent nothing in time"
            try:
                self._parse(next(self._chunks).decode())
            except StopIteration:
                self.ended = True
                self.close()  # as a WSGI server does once the body is done
        return self._pending.pop(0)

    def messages(self, count, timeout=3.0):
        """The next `count` messages, skipping comments."""
        found = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            item = self.next(max(deadline - time.monotonic(), 0))
            assert item is not None, f"the stream ended after {found}"
            if "comment" not in item:
                found.append(item)
        return found

    def read_until(self, predicate, timeout=3.0):
        """Everything up to and including the first item matching `predicate`."""
        found = []
        deadline = time.monotonic() + timeout
        while True:
            item = self.next(max(deadline - time.monotonic(), 0))
            assert item is not None, f"the stream ended after {found}"
            found.append(item)
            if predicate(item):
                return found

    def quiet_for(self, seconds):
        """The messages (not comments) that arrive within `seconds`."""
        found = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            item = self.next()
            if item is None:
                break
            if "comment" not in item:
                found.append(item)
        return found

    def read_to_end(self, timeout=3.0):
        """Everything until the server ends the stream."""
        found = []
        deadline = time.monotonic() + timeout
        while (item := self.next(max(deadline - time.monotonic(), 0))) is not None:
            found.append(item)
        return found

    def close(self):
        self.response.close()



# Real servers and a real browser -------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def live_server(app, tmp_path):
    """`live_server(**env)` -> the base URL of a new gunicorn (deploy/gunicorn.conf.py, one gevent
    worker) serving this test's database, Redis and channel prefix; `env` adds or overrides
    settings, `graceful_timeout` gunicorn's (1 s here, 8 s deployed). Each call is another process,
    like another host behind the proxy. Stopped after the test. (tests/e2e has its own seeded
    server; these serve the in-process `app`'s data.)"""
    started = []
    # The rate limits count in the shared Redis, by user id: a test's own prefix, shared by its
    # hosts, so the users of earlier tests and runs (the same ids, other databases) count nothing.
    limits_prefix = f"rentpe-test-limits-{secrets.token_hex(4)}"

    def start(graceful_timeout=1, **env):
        port, log_path = _free_port(), tmp_path / f"gunicorn-{len(started)}.log"
        settings = {
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"] or "",
            "REDIS_CLUSTER_NODES": app.config.get("REDIS_CLUSTER_NODES") or "",
            "SECRET_KEY": "shared-by-every-host",
            "REALTIME_CHANNEL_PREFIX": app.config["REALTIME_CHANNEL_PREFIX"],
            "RATELIMIT_KEY_PREFIX": limits_prefix,
            **env,
        }
        command = [str(Path(sys.executable).parent / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "-w", "1",
                   "-b", f"127.0.0.1:{port}", "--graceful-timeout", str(graceful_timeout), "app:app"]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **settings},
                                       stdout=log, stderr=subprocess.STDOUT)
        started.append(process)
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 30
        while True:  # the port opens before the worker has loaded the app: wait for a page
            assert process.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(url + "/", timeout=2) as response:
                    if response.status == 200:
                        return url
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)

    start.processes = started  # by call order: a test may signal one (SIGHUP: a deploy)
    yield start
    for process in started:
        process.terminate()
    for process in started:
        process.wait(timeout=15)


from tests.factories import *  # noqa: E402,F401,F403  (fixtures built on the factories)
