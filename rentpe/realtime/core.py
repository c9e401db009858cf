"""The app's realtime machinery: settings, broker, hub and presence, made by `init_app`."""
import os

from flask import current_app

from .broker import InProcessBroker, RedisBroker
from .cluster import ClusterBroker
from .hub import Hub
from .presence import MemoryPresence, RedisPresence

DEFAULTS = {
    # A dead client is only noticed when a write fails, and proxies close idle connections
    # (nginx after 60 s by default): a comment every 25 s finds the first and prevents the second.
    # Each one is a write (a system call) per open stream, most of an idle stream's cost: 25 s is
    # also Socket.IO's ping interval.
    "STREAM_HEARTBEAT_SECONDS": 25,
    # Streams end after 5-10 minutes (base + random jitter) so clients resume with Last-Event-ID
    # on whichever worker is least busy, and restarts never wait long for old streams.
    "STREAM_LIFETIME_SECONDS": 300,
    "STREAM_LIFETIME_JITTER_SECONDS": 300,
    # Further behind than this, one `resync` makes the page reload its state instead.
    "STREAM_REPLAY_LIMIT": 500,
    # Payloads waiting for a slow client; when full its stream ends (it replays on reconnect).
    "STREAM_QUEUE_SIZE": 1000,
    # A live event arriving ahead of its predecessor (two commits published out of order) waits
    # this long for it; if it never comes (its publish was lost) the stream ends and replays.
    "STREAM_GAP_SECONDS": 5,
    # Over two heartbeats: a stream refreshes its presence on every heartbeat.
    "PRESENCE_TTL_SECONDS": 60,
    # A stream ended by the server is reopened by its client within a second or two.
    "PRESENCE_GRACE_SECONDS": 10,
    "REALTIME_CHANNEL_PREFIX": "rentpe:",
    "REALTIME_SUBSCRIBE_TIMEOUT_SECONDS": 5,
    # The hub pings Redis after this long without traffic; no answer by the next one = dropped.
    "REALTIME_HUB_PING_SECONDS": 10,
    # The watch (watch.py) compares every local stream with the event log this often, in one
    # query per process: a committed event whose publish was lost reaches its open stream within
    # about two of these, Redis or no Redis.
    "STREAM_CHECK_SECONDS": 1,
    # When nothing has been written to the database for this long (one cheap query a round tells),
    # the watch compares every stream only this often: an idle stream costs next to nothing.
    "STREAM_CHECK_QUIET_SECONDS": 10,
    # A `record` for at least this many users is published once, as a fan-out payload every
    # process reads (event.py), instead of once per user: a board message, not a private one.
    "REALTIME_FANOUT_MIN": 3,
    # Streams one user may hold open on one worker process. Past it, the oldest ends with a
    # `replaced` event, on which the page stops its stream (static/js/stream.js): ten tabs is more
    # than anyone uses at once, and 200 opens by one account can no longer hold every worker's
    # slots and database connections.
    "STREAM_MAX_PER_USER": 10,
    # A stream whose write has not completed in this long is ended: its client stopped reading
    # (or vanished without a FIN). With nginx in front, nginx reads; with gunicorn facing clients
    # directly, this is what frees the greenlet and the socket. Well above the heartbeat.
    "STREAM_WRITE_TIMEOUT_SECONDS": 60,
}


def settings(config, environ=None):
    """DEFAULTS, overridden by the environment (same names), overridden by the app's config."""
    environ = os.environ if environ is None else environ
    found = {}
    for key, default in DEFAULTS.items():
        raw = environ.get(key)
        if key in config or raw in (None, ""):
            found[key] = config.get(key, default)
        elif isinstance(default, str):
            found[key] = raw
        else:
            try:
                found[key] = int(raw) if raw.isdigit() else float(raw)
            except ValueError as exc:
                raise ValueError(f"{key} must be a number of seconds or items, got {raw!r}") from exc
    return found


class Realtime:
    def __init__(self, config):
        self.config = config
        prefix = config["REALTIME_CHANNEL_PREFIX"]
        if config.get("REDIS_CLUSTER_NODES"):
            self.broker = ClusterBroker(
                config["REDIS_CLUSTER_NODES"],
                prefix,
                subscribe_timeout=config["REALTIME_SUBSCRIBE_TIMEOUT_SECONDS"],
                ping_interval=config["REALTIME_HUB_PING_SECONDS"],
            )
            # A user's keys share a hash slot (the Lua scripts touch two of them at once).
            self.presence = RedisPresence(self.broker.client, prefix, config, hash_tag=True)
        elif config.get("REDIS_URL"):
            self.broker = RedisBroker(
                config["REDIS_URL"],
                prefix,
                subscribe_timeout=config["REALTIME_SUBSCRIBE_TIMEOUT_SECONDS"],
                ping_interval=config["REALTIME_HUB_PING_SECONDS"],
            )
            self.presence = RedisPresence(self.broker.client, prefix, config)
        else:
            self.broker = InProcessBroker()
            self.presence = MemoryPresence(config)
        self.hub = Hub(self.broker, config)
        self.watch = None  # watch.py, attached by init_app (it reads the event log)

    def shutdown(self):
        if self.watch is not None:
            self.watch.stop()
        self.hub.end_all()
        self.broker.shutdown()


def current():
    return current_app.extensions["realtime"]
