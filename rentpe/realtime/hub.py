"""The per-process fan-out: each open stream has an inbox; the broker feeds them by user.

Plain `queue`/`threading` primitives: under gevent's monkey-patching they are cooperative, and
the same code runs in ordinary threads in the tests.
"""
import collections
import logging
import queue
import threading
import time

from .event import END, parse_fanout

log = logging.getLogger(__name__)

# Why a stream ended, as far as the client is concerned. All but END_STREAMS and CLOSED expect
# the client to reconnect at once and replay from its cursor.
LIFETIME = "lifetime"
SLOW = "slow"
SHUTDOWN = "shutdown"  # the worker is exiting
GAP = "gap"
END_STREAMS = "end-streams"
REPLACED = "replaced"  # the user opened more streams than STREAM_MAX_PER_USER: the oldest ends
RESTORED = "restored"  # the database is behind what the stream sent (an older backup restored)
CLOSED = "closed"

# Put in an inbox (instead of a payload) when its stream may have missed a publish: the stream
# reads what it has not sent from SQL (`Stream._catch_up`).
CATCH_UP = "catch-up"


class Subscription:
    """One open stream's inbox: broker payloads, then `None` once the stream must end."""

    def __init__(self, user_id, maxsize):
        self.user_id = user_id
        self.maxsize = maxsize
        self.ended = None
        # Every seq <= cursor has been sent to the client; None until the stream has replayed.
        # The watch (watch.py) compares it with the user's last committed seq.
        self.cursor = None
        # The cursor as the watch's previous comparison found it (see watch.py: a database that
        # went back in time).
        self.checked = None
        self.catching_up = False
        # The delivery cursor: `flushed` is the last seq the stream has written to its client,
        # `reported` the last one the watch has recorded (watch.py). None until replayed.
        self.flushed = self.reported = None
        # Presence: this stream's entry (its id), refreshed by the watch (monotonic seconds).
        self.stream_id = None
        self.refreshed = self.opened = time.monotonic()
        self._items = collections.deque()
        # The stream waits on `_wake`, a plain lock held while nobody is waiting and released to
        # wake the waiter (a lock's timed acquire is one C call, under gevent a semaphore's; a
        # Condition's wait allocates a lock and runs a dozen Python calls, and an idle stream
        # waits once a heartbeat). `_waiting` and the deque are guarded by `_mutex`.
        self._mutex = threading.Lock()
        self._wake = threading.Lock()
        self._wake.acquire()
        self._waiting = False

    def _append(self, payload):
        """Under `_mutex`: queue `payload` and wake the stream if it waits."""
        self._items.append(payload)
        if self._waiting:
            self._waiting = False
            self._wake.release()

    def put(self, payload):
        """False when the inbox is full (the client is not keeping up)."""
        with self._mutex:
            if self.ended:
                return True
            if len(self._items) >= self.maxsize:
                return False
            self._append(payload)
            return True

    def catch_up(self):
        """Have the stream read what it has not sent from SQL (once, however often asked until
        it has). A catch-up is never refused for a full inbox: the stream is reading anyway."""
        with self._mutex:
            if self.ended or self.catching_up:
                return
            self.catching_up = True
            self._append(CATCH_UP)

    def end(self, reason):
        """Drop whatever is waiting and wake the stream so it ends (it replays on reconnect)."""
        with self._mutex:
            if self.ended:
                return
            self.ended = reason
            self._items.clear()
            self._append(None)

    def get(self, timeout):
        """The next payload, None when the stream must end; queue.Empty after `timeout`.
        One reader (the stream's own loop)."""
        with self._mutex:
            if self._items:
                return self._items.popleft()
            self._waiting = True
        woken = self._wake.acquire(timeout=max(timeout, 0))
        with self._mutex:
            if not woken:
                if self._waiting:
                    self._waiting = False  # nothing came
                else:
                    self._wake.acquire()  # released just after the timeout: take it back
            if not self._items:
                raise queue.Empty
            return self._items.popleft()

    def drain(self, limit):
        with self._mutex:
            items = []
            while self._items and len(items) < limit:
                items.append(self._items.popleft())
            return items


class Hub:
    def __init__(self, broker, config):
        self.broker = broker
        self.config = config
        self._lock = threading.Lock()
        self._local = {}
        self.ended = None  # set by `end_all`: streams registered from then on end at once too
        self.on_resubscribed = None  # set by the watch: called when the broker may have lost payloads
        broker.attach(self.deliver, self.deliver_fanout, self.resubscribed)

    def register(self, user_id):
        """A new inbox for `user_id`, live once this returns: the broker has confirmed the
        subscription, so anything published from now on reaches it."""
        subscription = Subscription(user_id, self.config["STREAM_QUEUE_SIZE"])
        with self._lock:
            self._local.setdefault(user_id, set()).add(subscription)
            if self.ended:  # this process is exiting: the stream sends its replay, then ends
                subscription.end(self.ended)
        try:
            self.broker.subscribe(user_id)
        except BaseException:
            self._discard(subscription)
            raise
        return subscription

    def make_room(self, user_id, limit):
        """End the oldest of `user_id`'s open streams here until fewer than `limit` remain (a new
        one is about to open). Returns how many were ended."""
        with self._lock:
            open_ = sorted((s for s in self._local.get(user_id, ()) if not s.ended), key=lambda s: s.opened)
        oldest = open_[:max(0, len(open_) - limit + 1)]
        for subscription in oldest:
            subscription.end(REPLACED)
        return len(oldest)

    def unregister(self, subscription):
        if self._discard(subscription):
            self.broker.unsubscribe(subscription.user_id)

    def _discard(self, subscription):
        with self._lock:
            local = self._local.get(subscription.user_id)
            if not local or subscription not in local:
                return False
            local.discard(subscription)
            if not local:
                del self._local[subscription.user_id]
            return True

    def deliver(self, user_id, payload):
        with self._lock:
            subscriptions = list(self._local.get(user_id, ()))
        for subscription in subscriptions:
            if payload == END:
                subscription.end(END_STREAMS)
            elif not subscription.put(payload):
                subscription.end(SLOW)  # a client that can't keep up replays on reconnect

    def deliver_fanout(self, payload):
        """A fan-out payload (many users' events in one, `event.py`): each local user's event into
        their streams' inboxes, already parsed; the other users' are not this process's."""
        try:
            fanout = parse_fanout(payload)
        except ValueError:
            log.warning("ignoring a malformed fan-out payload %r", payload[:40])
            return
        with self._lock:
            local = {user_id: list(self._local[user_id]) for user_id in fanout.user_ids() if user_id in self._local}
        for user_id, message in fanout.durables(local):
            for subscription in local[user_id]:
                if not subscription.put(message):
                    subscription.end(SLOW)

    def subscriptions(self):
        with self._lock:
            return [s for local in self._local.values() for s in local]

    def resubscribed(self):
        """The broker's subscriptions are in force again after a gap in which payloads may have
        been lost: every stream checks SQL (through the watch) for what it has not sent."""
        if self.on_resubscribed is not None:
            self.on_resubscribed()

    def end_all(self, reason=SHUTDOWN):
        """End every stream here, and every one registered from now on (the process is exiting)."""
        with self._lock:
            self.ended = reason
            subscriptions = [s for local in self._local.values() for s in local]
        for subscription in subscriptions:
            subscription.end(reason)
