"""Presence: who has a live stream right now, on any worker or host, and when we last saw them.

Each open stream holds an entry that expires `PRESENCE_TTL_SECONDS` after its last refresh
(every heartbeat interval, by the process's watch for all its streams at once), so a crashed
worker's streams stop counting on their own. With Redis the
entries are a sorted set per user (member = stream id, score = expiry time) plus a last-seen
timestamp written at each open and close; a refresh is one ZADD per user, nothing else (the last
refresh of a stream that never closed is read back from its score). The embedded default keeps
the same in memory.

`open` / `close` report the transitions (first stream opened, last stream closed) that fire the
presence hooks. A stream that the server ends on purpose (lifetime, slow client, hub drop) is
about to be reopened by its client: its entry lingers for `PRESENCE_GRACE_SECONDS` and the
reconnecting stream takes it over, so the user does not flap offline and online.
"""
import logging
import threading
import time
from datetime import datetime, timezone

import redis

log = logging.getLogger(__name__)

# Last-seen stamps outlive their streams by this much (then "never seen").
LAST_SEEN_SECONDS = 90 * 86400
# A user's streams key lives at least this long after its last open or close (see key_ms).
KEY_SECONDS = 86400


def online(user_ids):
    """The subset of `user_ids` with at least one live stream."""
    from .core import current

    ids = {int(u) for u in user_ids}
    if not ids:
        return set()
    try:
        return current().presence.online(ids)
    except redis.RedisError as exc:
        log.warning("presence unavailable: %s", exc)
        return set()


def last_seen(user_id):
    """When the user last had a live stream (naive UTC), None if never (or long ago)."""
    from .core import current

    try:
        stamp = current().presence.last_seen(int(user_id))
    except redis.RedisError as exc:
        log.warning("presence unavailable: %s", exc)
        return None
    return None if stamp is None else datetime.fromtimestamp(stamp, timezone.utc).replace(tzinfo=None)


class _Settings:
    @property
    def ttl(self):
        return self.config["PRESENCE_TTL_SECONDS"]

    @property
    def grace(self):
        return self.config["PRESENCE_GRACE_SECONDS"]

    @property
    def key_ms(self):
        """How long a user's key outlives the last open or close of one of their streams. A
        refresh only moves its entries' expiry (one command per user, every heartbeat interval),
        so the key must outlast any stream's life: a day, or longer if streams live longer.
        Entries that expired are ignored by every read and dropped at the next open or close."""
        lifetime = self.config["STREAM_LIFETIME_SECONDS"] + self.config["STREAM_LIFETIME_JITTER_SECONDS"]
        return int(max(KEY_SECONDS, lifetime + max(self.ttl, self.grace) + 60) * 1000)


class MemoryPresence(_Settings):
    """The embedded default's presence (one process)."""

    def __init__(self, config):
        self.config = config
        self._lock = threading.Lock()
        self._streams = {}  # user id -> {("S" | "L", stream id): expiry}, never empty
        self._seen = {}

    def _live(self, user_id, now):
        """The user's unexpired entries (a dict kept only while it holds any)."""
        streams = self._streams.pop(user_id, {})
        for member in [m for m, expiry in streams.items() if expiry <= now]:
            del streams[member]
        if streams:
            self._streams[user_id] = streams
        return streams

    def _store(self, user_id, streams):
        if streams:
            self._streams[user_id] = streams
        else:
            self._streams.pop(user_id, None)

    def open(self, user_id, stream_id):
        now = time.time()
        with self._lock:
            streams = self._live(user_id, now)
            first = not streams
            lingering = next((m for m in streams if m[0] == "L"), None)
            if lingering:
                del streams[lingering]  # its client has reconnected: this stream takes over
            streams[("S", stream_id)] = now + self.ttl
            self._store(user_id, streams)
            self._seen[user_id] = now
            return first

    def refresh(self, user_id, stream_id):
        self.refresh_many([(user_id, stream_id)])

    def refresh_many(self, entries):
        """Extend these (user id, stream id) entries by the TTL."""
        now = time.time()
        with self._lock:
            for user_id, stream_id in entries:
                streams = self._live(user_id, now)
                if ("S", stream_id) in streams:  # not one that closed meanwhile
                    streams[("S", stream_id)] = now + self.ttl
                    self._seen[user_id] = now
                self._store(user_id, streams)

    def close(self, user_id, stream_id, reconnecting=False):
        now = time.time()
        with self._lock:
            streams = self._live(user_id, now)
            removed = streams.pop(("S", stream_id), None) is not None
            self._seen[user_id] = now
            if reconnecting and removed:
                streams[("L", stream_id)] = now + self.grace
            self._store(user_id, streams)
            return removed and not reconnecting and not streams

    def online(self, user_ids):
        now = time.time()
        with self._lock:
            return {u for u in user_ids if self._live(u, now)}

    def last_seen(self, user_id):
        with self._lock:
            return self._seen.get(user_id)


# Members are "S:<stream id>" for open streams and "L:<stream id>" for streams the server ended
# whose client is expected back within the grace period.
_OPEN = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local first = redis.call('ZCARD', KEYS[1]) == 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(member, 1, 2) == 'L:' then
    redis.call('ZREM', KEYS[1], member)
    break
  end
end
redis.call('ZADD', KEYS[1], ARGV[2], 'S:' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[5])
if first then return 1 end
return 0
"""

_CLOSE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local removed = redis.call('ZREM', KEYS[1], 'S:' .. ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[5])
if ARGV[3] == '1' then
  if removed == 1 then
    redis.call('ZADD', KEYS[1], ARGV[4], 'L:' .. ARGV[2])
    redis.call('PEXPIRE', KEYS[1], ARGV[6])
  end
  return 0
end
if removed == 1 and redis.call('ZCARD', KEYS[1]) == 0 then return 1 end
return 0
"""


class RedisPresence(_Settings):
    def __init__(self, client, prefix, config, hash_tag=False):
        self.client = client
        self.prefix = prefix
        self.config = config
        # On a Redis Cluster a user's two keys must share a hash slot (a script touches both):
        # "{42}" in both names. A single Redis keeps its key names (and its last-seen stamps).
        self.hash_tag = hash_tag
        self._scripts = None  # registered on first use: a cluster client connects when made

    def _script(self, which):
        if self._scripts is None:
            self._scripts = {"open": self.client.register_script(_OPEN), "close": self.client.register_script(_CLOSE)}
        return self._scripts[which]

    def _keys(self, user_id):
        user = f"{{{user_id}}}" if self.hash_tag else user_id
        return [f"{self.prefix}presence:{user}", f"{self.prefix}seen:{user}"]

    def open(self, user_id, stream_id):
        now = time.time()
        args = [repr(now), repr(now + self.ttl), stream_id, self.key_ms, LAST_SEEN_SECONDS]
        return self._script("open")(keys=self._keys(user_id), args=args) == 1

    def refresh(self, user_id, stream_id):
        self.refresh_many([(user_id, stream_id)])

    def refresh_many(self, entries):
        """Extend these (user id, stream id) entries by the TTL: one round trip for all of them
        (each process's watch refreshes its due streams together, not each stream on its own)."""
        now = time.time()
        by_user = {}
        for user_id, stream_id in entries:
            by_user.setdefault(user_id, []).append(stream_id)
        pipe = self.client.pipeline(transaction=False)
        for user_id, stream_ids in by_user.items():
            # XX: a stream closed meanwhile (its entry removed) is not brought back.
            pipe.zadd(self._keys(user_id)[0], {f"S:{stream_id}": now + self.ttl for stream_id in stream_ids}, xx=True)
        pipe.execute()

    def close(self, user_id, stream_id, reconnecting=False):
        now = time.time()
        args = [repr(now), stream_id, "1" if reconnecting else "0", repr(now + self.grace), LAST_SEEN_SECONDS, self.key_ms]
        return self._script("close")(keys=self._keys(user_id), args=args) == 1

    def online(self, user_ids):
        ordered = sorted(user_ids)
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        for user_id in ordered:
            pipe.zcount(self._keys(user_id)[0], f"({now!r}", "+inf")
        return {u for u, count in zip(ordered, pipe.execute()) if count}

    def last_seen(self, user_id):
        """The stamp of the last open or close, or the last refresh of a stream that ended
        without a close (its worker died): its entry's expiry less the TTL."""
        streams, seen = self._keys(user_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.get(seen)
        pipe.zrange(streams, -1, -1, withscores=True)
        raw, latest = pipe.execute()
        stamps = [float(raw)] if raw is not None else []
        stamps += [score - self.ttl for _, score in latest]
        return min(max(stamps), time.time()) if stamps else None
