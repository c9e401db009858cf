"""The broker on a real Redis Cluster (3 primaries, 3 replicas): sharded pub/sub, one subscriber
connection per shard, shard faults and a primary killed under load. The contract tests shared
with the other brokers are in test_realtime_stream.py and test_realtime_presence.py."""
import logging
import os
import re
import time

import limits
import pytest
import redis

from rentpe import create_app, realtime
from rentpe.extensions import db
from rentpe.realtime.cluster import ClusterBroker
from tests.conftest import Client, EventStream
from tests.factories import UserFactory

pytestmark = pytest.mark.parametrize("broker", ["cluster"], indirect=True)

NOTE = re.compile(r'id="note-([^"]+)"')
UNREACHABLE = "127.0.0.1:1,127.0.0.1:2"


@pytest.fixture
def app_overrides(realtime_overrides):
    return realtime_overrides


@pytest.fixture(autouse=True)
def notes(live):
    realtime.register_renderer("test.note", lambda e: f'<div id="note-{e.data["n"]}">…</div>')


@pytest.fixture
def worker(app):
    """`worker(**settings)`: another process's app on the same database and cluster."""
    made = []

    def make(**settings):
        other = create_app({**app.config, **settings})
        made.append(other)
        return other

    yield make
    for other in made:
        realtime.shutdown(other)
        with other.app_context():
            db.engine.dispose()


def note(users, n):
    realtime.record([u.id for u in users], "test.note", {"n": n})
    db.session.commit()
    realtime.publish_committed()


def shown(messages):
    return [n for m in messages if m.get("data") for n in NOTE.findall(m["data"])]


def channel(app, user):
    return f"{app.config['REALTIME_CHANNEL_PREFIX']}u:{user.id}"


def hub_connections(app, cluster, port):
    name = f"{app.config['REALTIME_CHANNEL_PREFIX']}hub:{os.getpid()}"
    with cluster.client(port) as node:
        return [c for c in node.client_list() if c.get("name") == name]


def shard_channels(app, cluster, port):
    prefix = app.config["REALTIME_CHANNEL_PREFIX"]
    with cluster.client(port) as node:
        found = node.execute_command("PUBSUB", "SHARDCHANNELS", f"{prefix}*")
    return sorted(c.decode()[len(prefix):] for c in found)


def users_on_every_shard(app, cluster, per_shard=1):
    """Users whose channels cover every primary, `per_shard` of them on each."""
    found, by_port = [], {}
    while any(len(by_port.get(port, [])) < per_shard for port in cluster.primaries()):
        user = UserFactory()
        port = cluster.primary_for(channel(app, user))
        if len(by_port.setdefault(port, [])) < per_shard:
            by_port[port].append(user)
            found.append(user)
    db.session.commit()
    return found, by_port


def eventually(check, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def logged_in(make_client, user):
    client = make_client()
    client.login(user)
    return client


def test_each_users_channel_lives_on_its_shard_with_one_connection_per_shard(app, make_client, open_stream,
                                                                            redis_cluster):
    assert isinstance(app.extensions["realtime"].broker, ClusterBroker)
    users, by_port = users_on_every_shard(app, redis_cluster)
    streams = [open_stream(logged_in(make_client, user)) for user in users for _ in range(2)]
    fanout_port = redis_cluster.primary_for(f"{app.config['REALTIME_CHANNEL_PREFIX']}fanout")
    for port, [user] in by_port.items():
        expected = [f"u:{user.id}"] + (["fanout"] if port == fanout_port else [])
        assert shard_channels(app, redis_cluster, port) == sorted(expected)
        assert len(hub_connections(app, redis_cluster, port)) == 1  # two tabs, one connection
    for stream in streams:
        stream.close()
    eventually(lambda: all(shard_channels(app, redis_cluster, port) == (["fanout"] if port == fanout_port else [])
                           for port in by_port))


def test_events_reach_users_on_every_shard_and_a_fanout_is_one_publish(app, make_client, open_stream,
                                                                        redis_cluster, worker):
    users, _ = users_on_every_shard(app, redis_cluster)
    streams = {user.id: open_stream(logged_in(make_client, user), after=0) for user in users}
    other = worker()  # another process: its own shard connections
    with other.app_context():
        for user in users:
            note([user], f"to-{user.id}")
        before = _spublishes(redis_cluster)
        note(users, "all")  # three users or more: one fan-out payload
        assert _spublishes(redis_cluster) - before == 1
    for user in users:
        assert [(m["id"], n) for m in streams[user.id].messages(2) for n in shown([m])] == \
            [("1", f"to-{user.id}"), ("2", "all")]


def _spublishes(cluster):
    total = 0
    for port in cluster.live_ports():
        with cluster.client(port) as node:
            total += node.info("commandstats").get("cmdstat_spublish", {}).get("calls", 0)
    return total


def test_a_dropped_shard_connection_keeps_streams_open_and_loses_nothing(app, make_client, open_stream,
                                                                          redis_cluster):
    app.config["STREAM_CHECK_SECONDS"] = 60  # not the watch's rounds: the sweep after resubscribing
    users, by_port = users_on_every_shard(app, redis_cluster)
    streams = {user.id: open_stream(logged_in(make_client, user), after=0) for user in users}
    port, [victim] = next(iter(by_port.items()))
    with redis_cluster.client(port) as node:
        node.client_kill_filter(_type="pubsub")  # this shard's connections only
    note([victim], "during")  # published while that shard reconnects: gone from pub/sub
    assert shown(streams[victim.id].messages(1, timeout=3)) == ["during"]
    for user in users:
        note([user], "after")
        assert shown(streams[user.id].messages(1)) == ["after"]
        assert not streams[user.id].ended


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # as in production; 15 s each
def test_a_primary_killed_under_load_loses_nothing_and_duplicates_nothing(app, make_client, redis_cluster,
                                                                          live, caplog):
    """kill -9 of the primary holding some users' channels (and maybe the fan-out) while events
    flow: its replica takes over, the hub moves those channels to it and sweeps; every stream
    ends up with every event once, in seq order (a stream the server ends reconnects with
    Last-Event-ID, as the browser does)."""
    users, by_port = users_on_every_shard(app, redis_cluster, per_shard=2)
    clients = {user.id: logged_in(make_client, user) for user in users}
    victim_port = redis_cluster.primary_for(channel(app, users[0]))
    received = {user.id: [] for user in users}  # (connection, id, note)
    connections = {user.id: 0 for user in users}
    streams = {user.id: _open(clients[user.id], 0) for user in users}
    # A tab never read during the run: its subscription holds the channel from start to end, so the
    # channel reaches the new primary only by the hub moving it, not by a stream opened afresh.
    holder = _open(clients[users[0].id], 0)
    total = 150
    try:
        with caplog.at_level(logging.WARNING, logger="rentpe.realtime"):
            for n in range(total):
                if n == total // 3:
                    redis_cluster.kill(victim_port)
                user = users[n % len(users)]
                note([user] if n % 10 else users, n)  # every tenth a fan-out to everyone
                time.sleep(0.02)
                if n % 10 == 0:
                    _drain(streams, clients, received, timeout=0, connections=connections)
            expected = {user.id: [str(n) for n in _notes_for(user, users, total)] for user in users}
            deadline = time.monotonic() + 20
            while any(sorted(set(_shown(received[u])), key=int) != expected[u] for u in received):
                assert time.monotonic() < deadline, {
                    u: sorted(set(expected[u]) - set(_shown(received[u])), key=int) for u in received}
                _drain(streams, clients, received, timeout=0.2, connections=connections)
        for user in users:
            # Every event shown; none twice on one connection (a stream the server ended for a gap
            # may, on reconnect, replay one it had shown ahead without an id: the page swaps it by
            # id, in place); and the ids the client holds only ever move forward, each seq once (an
            # event shown ahead of a missing one carries no id; the id that closes the gap covers it).
            assert sorted(set(_shown(received[user.id])), key=int) == expected[user.id]
            for connection in {c for c, _, _ in received[user.id]}:
                on_it = [n for c, _, n in received[user.id] if c == connection]
                assert len(on_it) == len(set(on_it))
            ids = [int(i) for _, i, _ in received[user.id] if i]
            assert ids == sorted(set(ids)) and ids[-1] == len(expected[user.id])
        new_primary = redis_cluster.primary_for(channel(app, users[0]))
        assert new_primary != victim_port  # the replica took over
        # ...and this process's hub moved the channel there, on a connection of its own.
        eventually(lambda: f"u:{users[0].id}" in shard_channels(app, redis_cluster, new_primary), timeout=5)
        assert len(hub_connections(app, redis_cluster, new_primary)) == 1
    finally:
        for stream in [*streams.values(), holder]:
            stream.close()
        redis_cluster.restart(victim_port)  # back as a replica: 3 + 3 again for the next tests
        redis_cluster.wait_until_ok()


def _shown(received):
    return [n for _, _, n in received]


def _notes_for(user, users, total):
    return [n for n in range(total) if n % 10 == 0 or users[n % len(users)] is user]


def _open(client, cursor):
    return EventStream(client.get("/events", headers={"Last-Event-ID": str(cursor)}))


def _drain(streams, clients, received, timeout, connections):
    """Read what each stream has (heartbeats keep coming: for `timeout` at most, at least one
    heartbeat's worth); reopen ended ones after their last id, as htmx does."""
    for user_id in list(streams):
        deadline = time.monotonic() + max(timeout, 0.06)
        while time.monotonic() < deadline:
            try:
                item = streams[user_id].next(timeout=max(deadline - time.monotonic(), 0))
            except AssertionError:  # nothing more in time
                break
            if item is None:  # ended by the server (a gap it could not close): resume
                streams[user_id].close()
                cursor = next((i for _, i, _ in reversed(received[user_id]) if i), 0)
                streams[user_id] = _open(clients[user_id], cursor)
                connections[user_id] += 1
                continue
            if item.get("data"):  # (shown without an id: ahead of one still missing)
                for n in NOTE.findall(item["data"]):
                    received[user_id].append((connections[user_id], item["id"], n))


def test_the_whole_cluster_unreachable_at_send_time_is_logged_and_replayed_later(buyer, client, open_stream,
                                                                                  worker, caplog):
    cut_off = worker(REDIS_CLUSTER_NODES=UNREACHABLE)
    with cut_off.app_context(), caplog.at_level(logging.WARNING, logger="rentpe.realtime"):
        note([buyer], "while-down")
    assert "could not publish 1 stream event(s)" in caplog.text
    client.login(buyer)
    assert shown(open_stream(client, after=0).messages(1)) == ["while-down"]


def test_with_the_cluster_unreachable_a_stream_opens_and_gets_its_events_from_sql(buyer, worker):
    cut_off = worker(REDIS_CLUSTER_NODES=UNREACHABLE, REALTIME_SUBSCRIBE_TIMEOUT_SECONDS=0.3,
                     STREAM_CHECK_SECONDS=0.2)
    client = Client(cut_off)
    client.login(buyer)
    stream = EventStream(client.get("/events", query_string={"after": 0}))
    try:
        assert stream.next()["comment"] == "open"
        with cut_off.app_context():
            note([buyer], "no-redis")
        committed = time.monotonic()
        arrived = stream.read_until(lambda m: NOTE.search(m.get("data") or ""), timeout=2)
        assert shown(arrived) == ["no-redis"]
        assert time.monotonic() - committed < 2 * 0.2 + 0.5
    finally:
        stream.close()


def test_rate_limits_count_on_the_cluster(app, buyer, client, open_stream, redis_cluster):
    from rentpe import ratelimits

    prefix = app.config["REALTIME_CHANNEL_PREFIX"] + "limits"
    other = create_app({**app.config, "RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": prefix}})
    try:
        assert other.config["RATELIMIT_STORAGE_URI"].startswith("redis+cluster://")
        limited_client = Client(other)
        limited_client.login(buyer)
        allowance = min(item.amount for item in limits.parse_many(ratelimits.STREAM_OPENS_PER_USER.value))
        for _ in range(allowance):
            stream = EventStream(limited_client.get("/events", query_string={"after": 0}))
            assert stream.status_code == 200
            stream.close()
        refused = EventStream(limited_client.get("/events", query_string={"after": 0}))
        assert refused.status_code == 429
        cluster = redis.cluster.RedisCluster(host="127.0.0.1", port=redis_cluster.ports[0])
        try:
            assert any(True for _ in cluster.scan_iter(match=f"{prefix}*", target_nodes=redis.cluster.RedisCluster.PRIMARIES))
        finally:
            cluster.close()
    finally:
        realtime.shutdown(other)
        with other.app_context():
            db.engine.dispose()
