"""The broker on a Redis Cluster: sharded pub/sub (Redis 7 `SPUBLISH` / `SSUBSCRIBE`).

`REDIS_CLUSTER_NODES=host:port,host:port,…` (any nodes of the cluster) selects it instead of
`REDIS_URL`. The contract is `broker.py`'s, unchanged; what differs is where a channel lives:

- A sharded channel lives on the primary that owns its hash slot, so the per-user channels
  spread over the shards and a publish crosses only the shard of its user (a plain PUBLISH on a
  cluster is broadcast to every node: it would not scale past one Redis at all).
- Each process holds ONE subscriber connection per shard it has streams on (a `_Shard`: the
  single-Redis listener's loop, speaking SSUBSCRIBE), routed by the channel's slot. Each shard
  connection keeps the single-Redis guarantee: on a new connection it subscribes its channels
  again, then PINGs, and its PONG (every SSUBSCRIBE before it is in force) triggers the sweep of
  the streams (`watch.py`) when that shard's connection had been lost. A shard that is down
  costs only its own streams' pub/sub, which the watch covers from SQL meanwhile.
- A lost shard connection re-reads the slot map (a killed primary's replica takes over its
  slots): channels whose slot moved go to the new owner's connection, which sweeps after its
  PONG, since whatever was published before it subscribed is gone.
- The fan-out channel lives on one shard, so its confirmation no longer rides on a user
  channel's: a subscribe waits for both (or for neither while their shard is down, the sweep
  after its reconnect covering the gap). A user's direct and fan-out payloads may then arrive out
  of order; the hub orders them by seq, as it does for two publishers on one Redis.

The cluster client (publishing, presence) is made on first use: it reads the slot map when made,
and an app must start, and streams open, while the cluster is unreachable.
"""
import logging
import threading

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster, key_slot
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from .broker import BrokerUnavailable, RedisBroker, _Listener

log = logging.getLogger(__name__)


def parse_nodes(text):
    """`host:port,host:port` -> [(host, port)]; a ValueError names what is wrong."""
    nodes = []
    for item in (part.strip() for part in (text or "").split(",")):
        if not item:
            continue
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"REDIS_CLUSTER_NODES wants host:port,host:port…, got {item!r}")
        nodes.append((host, int(port)))
    if not nodes:
        raise ValueError("REDIS_CLUSTER_NODES lists no node")
    return nodes


class LazyCluster:
    """A RedisCluster made on first use, and made again after a failure to make it. Any
    attribute is the client's; an unreachable cluster is a `redis.ConnectionError`, as an
    unreachable single Redis is."""

    def __init__(self, nodes, **options):
        self.nodes = nodes
        self.options = options
        self._lock = threading.Lock()
        self._client = None

    def get(self):
        with self._lock:
            if self._client is None:
                try:
                    self._client = RedisCluster(
                        startup_nodes=[ClusterNode(host, port) for host, port in self.nodes], **self.options
                    )
                except RedisClusterException as exc:
                    raise redis.ConnectionError(f"Redis Cluster unreachable: {exc}") from exc
            return self._client

    def __getattr__(self, name):
        return getattr(self.get(), name)

    def close(self):
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


class ClusterBroker(RedisBroker):
    fanout_first = False  # it has its own shard: see the module docstring

    def __init__(self, nodes, prefix, subscribe_timeout=5.0, ping_interval=10.0):
        self.url = None
        self.nodes = parse_nodes(nodes) if isinstance(nodes, str) else list(nodes)
        self.prefix = prefix
        self.subscribe_timeout = subscribe_timeout
        self.ping_interval = ping_interval
        # As RedisBroker's: short timeouts and one retry, so a request never hangs on a shard
        # that is down (the event is in SQL either way).
        self.client = LazyCluster(
            self.nodes, socket_connect_timeout=2, socket_timeout=5, retry=Retry(NoBackoff(), 1),
        )
        self._channel_head = f"{prefix}u:".encode()
        self.fanout_channel = f"{prefix}fanout".encode()
        self._lock = threading.Lock()
        self._listener = None
        self._pid = None

    def publish_many(self, messages):
        if len(messages) == 1:
            [(user_id, payload)] = messages
            self.client.spublish(self.channel(user_id), payload)
            return
        pipe = self.client.pipeline(transaction=False)  # one round trip per shard involved
        for user_id, payload in messages:
            pipe.spublish(self.channel(user_id), payload)
        pipe.execute()

    def _new_listener(self, client_name):
        return _ClusterListener(self, client_name)


class _Shard(_Listener):
    """The subscriber connection to one primary: the single-Redis listener, in sharded pub/sub."""

    SUBSCRIBE, UNSUBSCRIBE = "SSUBSCRIBE", "SUNSUBSCRIBE"
    MESSAGE, CONFIRMED = b"smessage", b"ssubscribe"

    def __init__(self, router, name, host, port, gap):
        pool = redis.ConnectionPool(
            host=host, port=port, protocol=2, client_name=router.client_name, socket_connect_timeout=2,
            socket_timeout=10,
        )
        super().__init__(router.broker, router.client_name, pool=pool)
        self.router = router
        self.name = name
        # Made for channels taken over from a lost connection: its first connection owes a sweep.
        self._down = gap
        self._thread.name = f"realtime-hub-{name}"

    def _lost(self):
        return self.router.shard_lost(self)

    def release(self, channel):
        """Hand `channel` over to another shard: its state, taken out of this one."""
        with self._lock:
            return self._channels.pop(channel, None)

    def adopt(self, channel, state):
        """Take over a channel (refs and waiters) from a shard that lost its connection."""
        with self._lock:
            self._channels[channel] = state
            state.pending = 0
            state.expect_confirmation()
            if self._conn is not None:
                self._send(self.SUBSCRIBE, channel)
                self._send("PING")  # its PONG: the channel is in force again, so sweep
                self._awaiting_sweep = True
            else:
                self._down = True

    def ready_event(self, channel):
        """What a subscriber waits on for `channel`, None if there is no connection to wait on."""
        with self._lock:
            state = self._channels.get(channel)
            return None if state is None or self._down else state.ready


class _ClusterListener:
    """This process's shard connections, and which one holds each channel."""

    def __init__(self, broker, client_name):
        self.broker = broker
        self.client_name = client_name
        self._lock = threading.Lock()
        self._shards = {}  # node name -> _Shard
        self._owner = {}  # channel -> _Shard, for every channel with a local subscriber
        self._refs = {}  # channel -> local subscribers (the fan-out channel: one, for good)
        self._unrouted = set()  # channels waiting for the slot map (cluster unreachable so far)
        self._stopped = threading.Event()
        self._router = None

    def start(self):
        with self._lock:
            self._refs[self.broker.fanout_channel] = 1
            self._route_or_defer(self.broker.fanout_channel, gap=False)

    def stop(self):
        self._stopped.set()
        with self._lock:
            shards = list(self._shards.values())
        for shard in shards:
            shard.stop()

    def subscribe(self, channel):
        with self._lock:
            self._refs[channel] = self._refs.get(channel, 0) + 1
            if self._refs[channel] == 1:
                shard = self._route_or_defer(channel, gap=False)
            else:
                shard = self._owner.get(channel)
                if shard is not None:
                    shard._add(channel)
        if shard is None:
            return  # the slot map is unknown (cluster unreachable): the router's sweep covers it
        if not shard._confirmed(shard.ready_event(channel)) or not self._fanout_confirmed():
            self.unsubscribe(channel)
            raise BrokerUnavailable("Redis Cluster did not confirm the subscription in time")

    def unsubscribe(self, channel):
        with self._lock:
            refs = self._refs.get(channel, 0)
            if refs == 0:
                return
            self._refs[channel] = refs - 1
            shard = self._owner.get(channel)
            if refs == 1:
                del self._refs[channel]
                self._owner.pop(channel, None)
                self._unrouted.discard(channel)
        if shard is not None:
            shard.unsubscribe(channel)

    def _fanout_confirmed(self):
        with self._lock:
            shard = self._owner.get(self.broker.fanout_channel)
        return shard is None or shard._confirmed(shard.ready_event(self.broker.fanout_channel))

    # Routing ------------------------------------------------------------------------------------

    def _node(self, channel):
        """The primary that owns `channel`'s slot, by the client's slot map (read on first use)."""
        return self.broker.client.nodes_manager.get_node_from_slot(key_slot(channel))

    def _shard_for(self, node, gap):
        # Lock held.
        shard = self._shards.get(node.name)
        if shard is None:
            shard = self._shards[node.name] = _Shard(self, node.name, node.host, node.port, gap)
            shard.start()
        return shard

    def _route_or_defer(self, channel, gap):
        """Lock held. The shard now holding one reference to `channel`, or None when the slot map
        cannot be read (the router retries, and the shard it routes to sweeps after it connects)."""
        try:
            node = self._node(channel)
        except (redis.RedisError, RedisClusterException) as exc:
            log.warning("realtime hub cannot read the Redis Cluster's slot map: %s", exc)
            self._unrouted.add(channel)
            self._start_router()
            return None
        shard = self._shard_for(node, gap)
        self._owner[channel] = shard
        for _ in range(self._refs[channel]):
            shard._add(channel)
        return shard

    def _start_router(self):
        # Lock held.
        if self._router is None or not self._router.is_alive():
            self._router = threading.Thread(target=self._route_later, name="realtime-hub-router", daemon=True)
            self._router.start()

    def _route_later(self):
        delay = 0.1
        while not self._stopped.wait(delay):
            try:
                self.broker.client.nodes_manager.initialize()
            except Exception:
                delay = min(delay * 2, 1.0)
                continue
            with self._lock:
                channels = list(self._unrouted)
                if not channels:
                    return
                self._unrouted.clear()
                for channel in channels:
                    # Streams opened meanwhile did not wait: the new connection sweeps (gap).
                    if self._route_or_defer(channel, gap=True) is None:
                        break

    def shard_lost(self, shard):
        """A shard's connection was lost or could not be made: re-read the slot map and move the
        channels whose slot has a new owner (a failover). False when the shard is left with no
        channel, and stops."""
        try:
            self.broker.client.nodes_manager.initialize()
        except Exception as exc:
            log.warning("realtime hub cannot read the Redis Cluster's slot map: %s", exc)
            return True
        with self._lock:
            for channel in [c for c, owner in self._owner.items() if owner is shard]:
                try:
                    node = self._node(channel)
                except Exception:  # a slot not covered yet: stay, and look again next time
                    continue
                if node.name == shard.name:
                    continue
                state = shard.release(channel)
                target = self._shard_for(node, gap=True)
                self._owner[channel] = target
                if state is not None:
                    target.adopt(channel, state)
            if any(owner is shard for owner in self._owner.values()) or self._stopped.is_set():
                return True
            if self._shards.get(shard.name) is shard:
                del self._shards[shard.name]
            shard._stopped.set()
            return False
