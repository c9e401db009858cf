"""The watch: a bound on how late a committed event can reach an open stream, whatever Redis does.

Pub/sub is a doorbell that can stay silent: a publish fails while the subscription survives
(Redis refused or timed out one command), or Redis drops the hub's connection and what is
published until it subscribes again is gone. A stream learns of a gap only when a later event of
the same user arrives, and for the last message to a person nothing later may come.

So each process runs one watch (a thread; a greenlet under gevent) while it has open streams:

- every `STREAM_CHECK_SECONDS` it reads the last committed seq of every user with a stream here,
  in ONE query for all of them (never one per stream), and has each stream that is still behind
  the seq read one check earlier catch up from SQL. One check of grace, because an event just
  committed is normally a publish away from its stream; an event older than that was missed. An
  event committed while its recipient has a stream open therefore reaches it within about two
  intervals, even with Redis down the whole time. When the database has seen no write for
  `STREAM_CHECK_QUIET_SECONDS` (one cheap statement a round: `eventlog.log_position`), it
  compares only that often: idle streams cost next to nothing, and the first write ends the quiet;
- when the broker's subscriptions are in force again after a lost connection (`poke`), it checks
  at once and without grace: anything published in the gap is lost for good;
- a stream whose cursor, as the previous comparison found it, is ahead of the user's last seq
  read since then has sent events the database no longer has: an older backup was restored
  under it. Seqs only grow, so nothing else explains it. The stream is ended (`RESTORED`); its
  client reconnects with that cursor and gets a `resync` (stream.py), and the user's counter
  moves past it, so the events recorded from then on are not skipped as already sent.

The same rounds refresh the presence of every stream due (one round trip for all of them).

Catching up is the stream's own indexed read of `seq > cursor` (`Stream._catch_up`); a stream that
is not behind costs nothing but its entry in the one query.

The same rounds keep the delivery cursors: every stream notes the last seq it has written to its
client, and the watch moves those users' `delivered_seq` forward in one statement, then hands
the events passed to the delivery hooks (chat's "Delivered" receipts), in one transaction. A
stream itself never writes, nor calls a feature, however many events it delivers.
"""
import logging
import os
import threading
import time

from ..extensions import db
from . import eventlog, registry
from .hub import RESTORED

log = logging.getLogger(__name__)


# Of a heartbeat interval: how early an entry is refreshed along with one that is due.
REFRESH_EARLY = 0.4


class Watch:
    def __init__(self, hub, presence, config):
        self.hub = hub
        self.presence = presence
        self.config = config
        self._lock = threading.Lock()
        self._thread = None
        self._pid = None
        self._app = None
        self._retired = []  # closed streams whose last writes are not recorded yet
        self._connection = None  # the check's own database connection, while the watch runs
        self._position = None  # the database's position (eventlog.log_position) at the last round
        self._moved = self._compared = 0.0  # when it last changed; the last full comparison
        self._poked = threading.Event()
        self._stopped = threading.Event()
        hub.on_resubscribed = self.poke

    def ensure_running(self, app):
        """Called after a stream registered: start the watch if this process has none (the
        first stream, a forked worker, or after the watch stopped for want of streams)."""
        with self._lock:
            if self._stopped.is_set() or (self._thread is not None and self._pid == os.getpid()):
                return
            if self._pid != os.getpid():
                # A forked worker: its parent's streams and connection are not its own.
                self._retired, self._connection = [], None
            self._app, self._pid = app, os.getpid()
            self._thread = threading.Thread(target=self._run, name="realtime-watch", daemon=True)
            self._thread.start()

    def poke(self):
        """Check every stream now, without grace (called by the hub after a resubscribe)."""
        self._poked.set()

    def stop(self):
        self._stopped.set()
        self._poked.set()

    def retire(self, subscription):
        """A closing stream's last writes still count as delivered: recorded in the next round."""
        with self._lock:
            if subscription.flushed is not None and subscription.reported is not None \
                    and subscription.flushed > subscription.reported:
                self._retired.append(subscription)

    def _run(self):
        earlier, next_check = {}, time.monotonic() + self.config["STREAM_CHECK_SECONDS"]
        while not self._stopped.is_set():
            # Waking for presence as often as streams beat (25 s in production, less in tests).
            tick = min(self.config["STREAM_CHECK_SECONDS"], self.config["STREAM_HEARTBEAT_SECONDS"])
            poked = self._poked.wait(max(0.0, min(tick, next_check - time.monotonic())))
            if poked:
                # Cleared only when seen: a poke landing just after a wait that timed out stays
                # set for the next wait (clearing it unconditionally would drop it, and with it
                # the only check that finds what a reconnect swallowed).
                self._poked.clear()
            if self._stopped.is_set():
                self._release_connection()
                return
            with self._lock:
                subscriptions = self.hub.subscriptions()
                if not subscriptions and not self._retired:
                    self._thread = None  # a stream registering from now on starts a new one
                    self._release_connection()
                    return
                check = poked or time.monotonic() >= next_check
                retired, self._retired = (self._retired, []) if check else ([], self._retired)
            self._refresh_presence(subscriptions)
            if not check:
                continue
            next_check = time.monotonic() + self.config["STREAM_CHECK_SECONDS"]
            try:
                self._record_deliveries(subscriptions + retired)
                if not poked and self._quiet():
                    continue
                now = self._last_seqs({s.user_id for s in subscriptions}) if subscriptions else {}
                self._compared = time.monotonic()
            except Exception as exc:  # the database is unreachable: try again next time
                log.warning("realtime watch could not read or write the event log: %s", exc)
                with self._lock:
                    self._retired.extend(s for s in retired if s.flushed > s.reported)
                continue
            for subscription in subscriptions:
                due = now if poked else earlier
                cursor, checked = subscription.cursor, subscription.checked
                last = now.get(subscription.user_id, 0)
                if checked is not None and checked > last:
                    log.warning("user %s's stream sent seq %s, the database's last is %s (a backup restored?):"
                                " ending it to resync", subscription.user_id, checked, last)
                    subscription.end(RESTORED)
                    continue
                subscription.checked = cursor
                if cursor is not None and cursor < due.get(subscription.user_id, 0):
                    subscription.catch_up()
            earlier = now

    def _refresh_presence(self, subscriptions):
        """Every heartbeat interval, each stream's presence entry is extended: the due ones of
        this round in one round trip (a refresh per stream made most of an idle stream's cost)."""
        now, heartbeat = time.monotonic(), self.config["STREAM_HEARTBEAT_SECONDS"]
        # Due within the next tick counts as due now. And once one is due, so is every entry
        # refreshed more than REFRESH_EARLY of a heartbeat ago: streams opened seconds apart are
        # refreshed in the same round trip from then on, instead of one round trip a second (an
        # entry lives PRESENCE_TTL_SECONDS, more than twice a heartbeat).
        tick = min(self.config["STREAM_CHECK_SECONDS"], heartbeat)
        due_after = heartbeat - tick
        ages = [(s, now - s.refreshed) for s in subscriptions if s.stream_id is not None]
        if not any(age >= due_after for _, age in ages):
            return
        due = [s for s, age in ages if age >= due_after - REFRESH_EARLY * heartbeat]
        try:
            self.presence.refresh_many([(s.user_id, s.stream_id) for s in due])
        except Exception as exc:
            log.warning("presence unavailable: %s", exc)
            return
        for subscription in due:
            subscription.refreshed = now

    def _record_deliveries(self, subscriptions):
        moved, ranges = [], {}
        for subscription in subscriptions:
            flushed, reported = subscription.flushed, subscription.reported
            if flushed is None or reported is None or flushed <= reported:
                continue
            moved.append((subscription, flushed))
            after, up_to = ranges.get(subscription.user_id, (reported, flushed))
            ranges[subscription.user_id] = (min(after, reported), max(up_to, flushed))
        if not ranges:
            return
        with self._app.app_context():
            try:
                eventlog.advance_delivered(ranges)
                delivered = eventlog.events_delivered(ranges, registry.delivery_kinds())
                db.session.commit()
                registry.call_delivery_hooks(delivered)
                eventlog.publish_committed()  # what the hooks committed
            finally:
                db.session.remove()
        for subscription, flushed in moved:
            subscription.reported = flushed

    def _quiet(self):
        """True when this round need not compare every stream: nothing has been written to the
        database for STREAM_CHECK_QUIET_SECONDS (one cheap statement tells), and the last full
        comparison is more recent than that. An event committed while it is quiet moves the
        position, and the rounds after it compare (so its stream catches up within two rounds, as
        ever). A transaction that wrote its event more than that long before its commit, and whose
        publish was lost too, is caught by the next comparison, at most that long later."""
        position = self._read(eventlog.log_position)
        now, quiet = time.monotonic(), self.config["STREAM_CHECK_QUIET_SECONDS"]
        if position != self._position:
            self._position, self._moved = position, now
        return now - self._moved >= quiet and now - self._compared < quiet

    def _last_seqs(self, user_ids):
        return self._read(lambda connection: eventlog.last_seqs(user_ids, connection))

    def _read(self, query):
        # On a connection of its own, kept while the watch runs, in autocommit: a round is one
        # statement or two, with no BEGIN/ROLLBACK around them and no pool checkout (nor its
        # idle ping).
        if self._connection is None:
            with self._app.app_context():
                self._connection = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            return query(self._connection)
        except Exception:
            self._release_connection(invalid=True)
            raise

    def _release_connection(self, invalid=False):
        connection, self._connection = self._connection, None
        if connection is not None:
            if invalid:
                connection.invalidate()
            connection.close()
