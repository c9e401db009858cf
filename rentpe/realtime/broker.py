"""Brokers: how a published payload reaches the hub of every process with a stream of that user.

Both brokers have the same contract (and the same test suite):

- `publish_many([(user_id, payload), …])` hands payloads over in order: each user's to the
  processes with a stream of that user; a fan-out payload (`event.py`: many users' events in
  one), whose user_id is `ALL`, to every process, which takes its own users' part. It may raise
  when the transport is down (the caller logs it: the SQL log is the source of truth).
- `subscribe(user_id)` returns once payloads published from now on reach this process's hub,
  or at once while the transport is down (the subscription is made on the next connection);
  `BrokerUnavailable` if a live connection does not confirm it in time. `unsubscribe(user_id)`
  undoes one subscribe.
- A transport that can lose payloads (a dropped connection: whatever was published meanwhile is
  gone) calls `resubscribed()` once every subscription is in force again: the hub then has every
  local stream check SQL for events it has not sent (`watch.py`). Streams stay open throughout.

`InProcessBroker` is the embedded default (one process). `RedisBroker` keeps ONE pub/sub
connection per process, shared by all its streams, with one SUBSCRIBE per user channel that has
a local stream (refcounted, UNSUBSCRIBE at zero), and one fan-out channel that every process
subscribes first on every connection (so a user channel's confirmation covers it too). Channel
names come from the configured prefix and the user id, never from a request. `ClusterBroker`
(`cluster.py`) is the same on a Redis Cluster, with one such connection per shard.
"""
import logging
import os
import threading

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .. import metrics

log = logging.getLogger(__name__)


ALL = None  # the "user" of a fan-out payload


class BrokerUnavailable(RuntimeError):
    pass


class InProcessBroker:
    client = None

    def attach(self, deliver, deliver_fanout, resubscribed):
        self._deliver, self._deliver_fanout = deliver, deliver_fanout

    def publish_many(self, messages):
        for user_id, payload in messages:
            if user_id is ALL:
                self._deliver_fanout(payload)
            else:
                self._deliver(user_id, payload)

    def subscribe(self, user_id):
        pass

    def unsubscribe(self, user_id):
        pass

    def shutdown(self):
        pass


class RedisBroker:
    fanout_first = True  # on every connection, before the user channels (see the module docstring)

    def __init__(self, url, prefix, subscribe_timeout=5.0, ping_interval=10.0):
        self.url = url
        self.prefix = prefix
        self.subscribe_timeout = subscribe_timeout
        self.ping_interval = ping_interval
        # Publishing and presence: short timeouts and a single retry, so a request never hangs
        # on a Redis that is down (the event is in SQL either way).
        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, retry=Retry(NoBackoff(), 1), health_check_interval=30
        )
        self._channel_head = f"{prefix}u:".encode()
        self.fanout_channel = f"{prefix}fanout".encode()
        self._lock = threading.Lock()
        self._listener = None
        self._pid = None

    def attach(self, deliver, deliver_fanout, resubscribed):
        self._deliver, self._deliver_fanout, self._resubscribed = deliver, deliver_fanout, resubscribed

    def channel(self, user_id):
        return self.fanout_channel if user_id is ALL else self._channel_head + str(int(user_id)).encode()

    def publish_many(self, messages):
        if len(messages) == 1:  # no pipeline to build
            [(user_id, payload)] = messages
            self.client.publish(self.channel(user_id), payload)
            return
        pipe = self.client.pipeline(transaction=False)
        for user_id, payload in messages:
            pipe.publish(self.channel(user_id), payload)
        pipe.execute()

    def subscribe(self, user_id):
        self.listener().subscribe(self.channel(user_id))

    def unsubscribe(self, user_id):
        self.listener().unsubscribe(self.channel(user_id))

    def listener(self):
        """This process's listener, started on first use (after gunicorn has forked)."""
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._listener = self._new_listener(client_name=f"{self.prefix}hub:{self._pid}")
                self._listener.start()
            return self._listener

    def _new_listener(self, client_name):
        return _Listener(self, client_name)

    def shutdown(self):
        with self._lock:
            listener, self._listener, self._pid = self._listener, None, None
        if listener is not None:
            listener.stop()
        self.client.close()

    def _on_message(self, channel, payload):
        if channel.startswith(self._channel_head):
            self._deliver(int(channel[len(self._channel_head):]), payload)
        elif channel == self.fanout_channel:
            self._deliver_fanout(payload)


class _Channel:
    """A user channel's state on the shared connection: `refs` local streams want it; `pending`
    SUBSCRIBEs are not confirmed yet; `ready` is set once the last one is, and only for the
    connection that confirmed it (a new connection starts with a new, unset `ready`)."""

    __slots__ = ("refs", "pending", "ready")

    def __init__(self):
        self.refs = 0
        self.pending = 0
        self.ready = threading.Event()

    def expect_confirmation(self):
        self.pending += 1
        if self.ready.is_set():
            self.ready = threading.Event()  # waiters hold the old one only while it is unset

    def connection_lost(self):
        """Nothing is subscribed any more. Waiters are let go (the sweep after the next
        connection covers their streams), and nobody may take the old confirmation for a new
        one: a `ready` left set here once let a stream opened during the reconnect go live on a
        channel that was not subscribed, and miss what was published before it was again."""
        metrics.BROKER_LOST.inc()
        self.pending = 0
        self.ready.set()
        self.ready = threading.Event()


class _Listener:
    """One thread (a greenlet under gevent) reading the shared pub/sub connection.

    Commands are written by the subscribing thread under a lock while this thread reads, so a
    subscription takes effect at once. redis-py's reconnect-and-resubscribe is not used: it
    silently loses what was published meanwhile. Instead a new connection subscribes every
    channel again, then sends a PING: Redis answers in order, so its PONG means every one of
    those SUBSCRIBEs is in force, and only then is the hub told (`resubscribed`) to have its
    streams check SQL for what the gap swallowed. Checking earlier would leave a window between
    the check and the SUBSCRIBE in which a publish is lost with nothing left to reveal it.
    """

    SUBSCRIBE, UNSUBSCRIBE = "SUBSCRIBE", "UNSUBSCRIBE"
    MESSAGE, CONFIRMED = b"message", b"subscribe"

    def __init__(self, broker, client_name, pool=None):
        self.broker = broker
        self.client_name = client_name
        self._pool = pool or redis.ConnectionPool.from_url(
            broker.url, protocol=2, client_name=client_name, socket_connect_timeout=2, socket_timeout=10
        )
        self._lock = threading.Lock()
        self._channels = {}
        self._conn = None
        self._broken = False
        self._awaiting_sweep = False
        self._down = False  # the last attempt to connect failed, or the connection was lost
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="realtime-hub", daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stopped.set()
        with self._lock:
            conn = self._conn
        if conn is not None:
            conn.disconnect()
        self._thread.join(timeout=5)
        self._pool.disconnect()

    def subscribe(self, channel):
        if not self._confirmed(self._add(channel)):
            self.unsubscribe(channel)
            raise BrokerUnavailable("Redis did not confirm the subscription in time")
        # Confirmed, or Redis is unreachable: then the stream opens anyway and replays; the next
        # connection subscribes this channel, and the check after it sends what the stream
        # missed meanwhile (the watch covers the time until then). Only ephemeral events
        # (typing, presence) are lost while Redis is away, as they would be anyway.

    def _add(self, channel):
        """One more local stream wants `channel`: its confirmation to wait for, or None when
        there is no connection to wait on (see subscribe)."""
        with self._lock:
            state = self._channels.setdefault(channel, _Channel())
            state.refs += 1
            if state.refs == 1:
                state.expect_confirmation()
                self._send(self.SUBSCRIBE, channel)
            return None if self._down else state.ready

    def _confirmed(self, ready):
        """False only when a live connection did not confirm in time."""
        return ready is None or ready.wait(self.broker.subscribe_timeout) or self._down

    def unsubscribe(self, channel):
        with self._lock:
            state = self._channels.get(channel)
            if state is None or state.refs == 0:
                return
            state.refs -= 1
            if state.refs == 0:
                self._send(self.UNSUBSCRIBE, channel)
                if state.pending == 0:
                    del self._channels[channel]

    def _send(self, *command):
        # Lock held. Without a connection the command waits for the next one (see _connected).
        if self._conn is None:
            return
        try:
            self._conn.send_command(*command, check_health=False)
        except (redis.RedisError, OSError) as exc:
            log.warning("realtime hub could not send %s: %s", command[0], exc)
            self._broken = True

    def _run(self):
        delay = 0.1
        while not self._stopped.is_set():
            conn = self._pool.make_connection()
            try:
                conn.connect()
                self._connected(conn)
                delay = 0.1
                self._listen(conn)
            except Exception as exc:  # any failure means the same: this connection is done
                if not self._stopped.is_set():
                    log.warning("realtime hub lost its Redis connection: %s", exc)
            finally:
                self._disconnected()
                conn.disconnect()
            if self._stopped.is_set() or not self._lost():
                break
            # Whatever is published until the next connection's SUBSCRIBEs are in force is gone
            # from pub/sub; the streams stay open and catch up from SQL after it (and the watch
            # catches them up meanwhile). Retry soon: every second away is a second of delay.
            self._stopped.wait(delay)
            delay = min(delay * 2, 1.0)

    def _connected(self, conn):
        with self._lock:
            # A sweep is owed only after a gap: a connection lost, or an attempt that failed while
            # streams opened without waiting. On the process's first connection every stream
            # waited for its confirmation before replaying, so nothing can have been missed (and a
            # sweep then would only race the streams' own replays).
            gap = self._down
            self._conn, self._broken, self._down = conn, False, False
            if self.broker.fanout_first:
                self._send(self.SUBSCRIBE, self.broker.fanout_channel)  # first: see the module docstring
            for channel, state in list(self._channels.items()):
                if state.refs:
                    state.pending = 0
                    state.expect_confirmation()
                    self._send(self.SUBSCRIBE, channel)
                else:
                    del self._channels[channel]
            self._send("PING")  # its PONG follows every confirmation above (see the class)
            self._awaiting_sweep = gap

    def _lost(self):
        """After a lost connection or a failed attempt: True to try again (a shard of a cluster
        may hand its channels to another node and stop instead)."""
        return True

    def _disconnected(self):
        with self._lock:
            self._conn, self._down = None, True
            self._awaiting_sweep = False
            for channel, state in list(self._channels.items()):
                state.connection_lost()
                if not state.refs:
                    del self._channels[channel]

    def _listen(self, conn):
        awaiting_pong = False
        while not self._stopped.is_set():
            if self._broken:
                raise redis.ConnectionError("a command could not be sent")
            if conn.can_read(timeout=self.broker.ping_interval):
                self._handle(conn.read_response())
                awaiting_pong = False
            elif awaiting_pong:
                raise redis.TimeoutError("no answer to PING")
            else:
                # A half-open TCP connection looks exactly like a quiet channel: ask.
                with self._lock:
                    self._send("PING")
                awaiting_pong = True

    def _handle(self, reply):
        kind = reply[0]
        if kind == self.MESSAGE:
            self.broker._on_message(reply[1], reply[2])
        elif kind == b"pong":
            with self._lock:
                sweep, self._awaiting_sweep = self._awaiting_sweep, False
            if sweep:
                self.broker._resubscribed()
        elif kind == self.CONFIRMED:
            with self._lock:
                state = self._channels.get(reply[1])
                if state is None or not state.pending:
                    return
                state.pending -= 1
                if state.pending == 0:
                    if state.refs:
                        state.ready.set()
                    else:
                        del self._channels[reply[1]]
