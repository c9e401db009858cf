"""The Socket.IO peer of the delivery benchmark (bench/peers/socketio_peer.py), started as the
benchmark starts it (bench/servers.py: gunicorn's gevent worker, two workers, a redis-server of
this test's own, a scratch PostgreSQL database made by the migrations and `bench-fixture`):
it must log the bench users in, deliver each message once to the other participant, answer each
send with the stored message, and leave the rows in RentPe's tables."""
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
import socketio
import sqlalchemy as sa

from bench.servers import AppServer, RedisServer, create_database, drop_database, prepare, run_loadgen

pytestmark = pytest.mark.slow

PASSWORD = "peer-test-password"
USERS = 4


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    work = tmp_path_factory.mktemp("peer")
    redis = RedisServer().start()
    database = create_database()
    server = None
    try:
        env = {"DATABASE_URL": database, "REDIS_URL": redis.url}
        prepare(env, USERS, PASSWORD, work / "fixture.json")
        conversations = json.loads((work / "fixture.json").read_text())["conversations"]
        server = AppServer(env, kind="peer", workers=2, log_path=work / "peer.log").start()
        engine = sa.create_engine(database)
        yield {"server": server, "conversations": conversations, "engine": engine, "fixture": work / "fixture.json"}
        engine.dispose()
    finally:
        if server is not None:
            server.stop()
        redis.stop()
        drop_database(database)


def token_for(base, i, password=PASSWORD):
    data = urllib.parse.urlencode({"email": f"user{i}@bench.test", "password": password}).encode()
    with urllib.request.urlopen(urllib.request.Request(base + "/login", data=data), timeout=10) as response:
        return json.load(response)["token"]


class User:
    def __init__(self, base, i):
        self.index = i
        self.received = []
        self.lock = threading.Lock()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("message", self._message)
        self.sio.connect(base, transports=["websocket"], auth={"token": token_for(base, i)}, wait_timeout=10)

    def _message(self, data):
        with self.lock:
            self.received.append(data)

    def send(self, conversation_id, body, client_key=None):
        return self.sio.call("send_message", {"conversation_id": conversation_id, "body": body,
                                              "client_key": client_key or uuid.uuid4().hex}, timeout=10)


def test_messages_arrive_once_acks_carry_the_stored_rows(peer):
    base, conversations, engine = peer["server"].base, peer["conversations"], peer["engine"]
    users = [User(base, i) for i in range(USERS)]
    try:
        tag = uuid.uuid4().hex[:6]
        acks = {}
        for n in range(20):
            k = n % 2
            sender = users[2 * k + (n // 2) % 2]
            body = f"{tag}-{n}"
            ack = sender.send(conversations[f"{2 * k}-{2 * k + 1}"], body)
            assert ack["ok"], ack
            assert ack["message"]["body"] == body and ack["message"]["sender_id"]
            acks[body] = (ack["message"], sender.index ^ 1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(len(u.received) for u in users) < 20:
            time.sleep(0.05)
        time.sleep(0.3)  # anything extra (a duplicate) would arrive by now

        for body, (message, recipient) in acks.items():
            arrivals = [(u.index, m) for u in users for m in u.received if m["body"] == body]
            assert [i for i, _ in arrivals] == [recipient], (body, arrivals)  # once, and only to the other side
            assert arrivals[0][1] == message  # the event is the stored message the ack carried

        with engine.connect() as conn:
            rows = {r.body: r for r in conn.execute(sa.text(
                "SELECT id, conversation_id, sender_id, body, client_key FROM messages WHERE body LIKE :p"),
                {"p": f"{tag}-%"})}
            assert {b: r.id for b, r in rows.items()} == {b: m["id"] for b, (m, _) in acks.items()}
            for body, (message, _) in acks.items():
                assert rows[body].conversation_id == message["conversation_id"]
                assert rows[body].client_key == message["client_key"]
            for key, conversation_id in conversations.items():
                last_id, count = conn.execute(sa.text(
                    "SELECT last_message_id, message_count FROM conversations WHERE id = :id"),
                    {"id": conversation_id}).one()
                mine = [m["id"] for m, _ in acks.values() if m["conversation_id"] == conversation_id]
                assert last_id == max(mine) and count >= len(mine)
    finally:
        for u in users:
            u.sio.disconnect()


def test_a_resent_client_key_is_stored_once_and_not_emitted_again(peer):
    base, conversations, engine = peer["server"].base, peer["conversations"], peer["engine"]
    buyer, seller = User(base, 0), User(base, 1)
    try:
        body, key = f"again-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
        first = buyer.send(conversations["0-1"], body, key)
        second = buyer.send(conversations["0-1"], body, key)
        assert first["ok"] and second["message"] == first["message"]
        time.sleep(0.5)
        assert [m["id"] for m in seller.received] == [first["message"]["id"]]
        assert buyer.send(conversations["2-3"], "not my conversation")["ok"] is False
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM messages WHERE body = :b"), {"b": body}).scalar() == 1
    finally:
        buyer.sio.disconnect()
        seller.sio.disconnect()


def test_a_wrong_password_gets_no_token_and_no_connection(peer):
    base = peer["server"].base
    with pytest.raises(urllib.error.HTTPError) as refused:
        token_for(base, 0, "wrong-password")
    assert refused.value.code == 401
    refused.value.close()
    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(base, transports=["websocket"], auth={"token": "forged"}, wait_timeout=5)


def test_the_load_generator_drives_the_peer(peer):
    server = peer["server"]
    report = run_loadgen(server.base, peer["fixture"], PASSWORD, USERS, 10, 1, server.pid, extra=("--drain", "5"),
                         transport="socketio", timeout=60)
    assert report["sent"] == 10 and report["post_errors"] == {}, report
    assert (report["lost"], report["duplicated"], report["reordered"]) == (0, 0, 0), report
    assert report["latency_ms"]["max"] is not None and report["server_cpu_s_per_1000"] is not None
