"""The app with features taken away (bench/stripped.py), started as the benchmark starts it
(bench/servers.py: `deploy/gunicorn.conf.py`, a redis-server of this test's own, a scratch
PostgreSQL database made by the migrations and `bench-fixture`): it must still deliver every
message once, and take away exactly what it says (the delivery receipts; the templates)."""
import json
import re
import time
import uuid

import httpx
import pytest
import sqlalchemy as sa

from bench.servers import AppServer, RedisServer, create_database, drop_database, prepare, run_loadgen

pytestmark = pytest.mark.slow

PASSWORD = "stripped-test-password"
USERS = 4
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    work = tmp_path_factory.mktemp("stripped")
    redis = RedisServer().start()
    database = create_database()
    try:
        env = {"DATABASE_URL": database, "REDIS_URL": redis.url}
        prepare(env, USERS, PASSWORD, work / "fixture.json")
        engine = sa.create_engine(database)
        yield {"env": env, "work": work, "engine": engine,
               "conversations": json.loads((work / "fixture.json").read_text())["conversations"]}
        engine.dispose()
    finally:
        redis.stop()
        drop_database(database)


@pytest.fixture
def server_of(setup):
    started = []

    def start(kind):
        server = AppServer(setup["env"], kind=kind, log_path=setup["work"] / f"{kind}.log").start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def drive(server, setup):
    return run_loadgen(server.base, setup["work"] / "fixture.json", PASSWORD, USERS, 10, 1, server.pid,
                       extra=("--drain", "5"), timeout=90)


def count_receipts(setup):
    with setup["engine"].connect() as conn:
        return conn.scalar(sa.text("SELECT count(*) FROM stream_events WHERE kind = 'chat.receipt'"))


def receipts_written_since(setup, before, within=4.0):
    """Whether a receipt was written after `before` receipts, waiting up to `within` seconds:
    the server's watch records deliveries once a round (STREAM_CHECK_SECONDS, 1 s as deployed),
    and the load generator returns as soon as the last message arrives, often before it."""
    deadline = time.monotonic() + within
    while count_receipts(setup) <= before:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def answer_to_a_send(server, setup, text):
    """Log user0 in as a browser does and send `text` as htmx does: the answer's HTML."""
    with httpx.Client(base_url=server.base) as http:
        token = CSRF.search(http.get("/login").text).group(1)
        http.post("/login", data={"email": "user0@bench.test", "password": PASSWORD, "csrf_token": token})
        conversation_id = setup["conversations"]["0-1"]
        token = CSRF.search(http.get(f"/conversations/{conversation_id}").text).group(1)
        return http.post(f"/conversations/{conversation_id}/messages",
                         data={"body": text, "client_key": uuid.uuid4().hex},
                         headers={"HX-Request": "true", "X-CSRFToken": token}).text


@pytest.mark.parametrize("kind, receipts, templates", [
    ("gunicorn", True, True),
    ("gunicorn-no-receipts", False, True),
    ("gunicorn-bare", False, False),
])
def test_a_stripped_app_delivers_everything_without_what_it_takes_away(setup, server_of, kind, receipts, templates):
    server = server_of(kind)
    before = count_receipts(setup)
    report = drive(server, setup)
    assert report["sent"] == 10 and report["post_errors"] == {}, report
    assert (report["lost"], report["duplicated"], report["reordered"]) == (0, 0, 0), report
    assert receipts_written_since(setup, before) is receipts

    answer = answer_to_a_send(server, setup, "Is the <b>tent</b> free?")
    message_id = re.search(r'<li id="msg-(\d+)"', answer).group(1)
    bare = f'<li id="msg-{message_id}"><div class="msg-body">Is the &lt;b&gt;tent&lt;/b&gt; free?</div></li>'
    assert (answer == bare) is not templates
    assert ('name="client_key"' in answer) is templates  # the full answer brings a fresh composer
