"""Prometheus metrics: what the README's "What to watch" lists, as numbers an operator can graph.

Every metric is defined here, once; the code that knows an event happened bumps it with one call.
In multiprocess mode an increment is a locked write to a memory-mapped file (~4 µs), so what
happens per event or per connection checkout is tallied in a plain integer instead and written
out once a second by a sampler thread (a greenlet under gevent): events delivered by the streams,
and the pool's checked-out and overflow connections. Nothing is computed per scrape in the
workers: under gunicorn each worker writes its values to files in
`PROMETHEUS_MULTIPROC_DIR` (prometheus_client's multiprocess mode) and the master serves the sum
on `METRICS_BIND` (deploy/gunicorn.conf.py), a port of its own that only the operator's network
reaches; the embedded default serves its one process the same way (serve.py). The app's public
port never answers `/metrics`.

Gauges of one worker (open streams, the pool) keep a series per worker (`pid` label); dead
workers' series are dropped (`child_exit` marks them).
"""
import gc
import os
import threading
import time
import weakref

from flask import has_request_context, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Streams ------------------------------------------------------------------------------------

STREAMS_OPEN = Gauge("rentpe_streams_open", "Open /events streams in this worker", multiprocess_mode="liveall")
STREAM_OPENS = Counter("rentpe_stream_opens", "Streams opened")
# lifetime, slow, end-streams (log-out, suspension), replaced, gap, shutdown, client (it went away).
STREAM_ENDS = Counter("rentpe_stream_ends", "Streams ended, by why", ["reason"])
# The hub's Redis connection dropped: streams stay open, the watch delivers from SQL until it has
# subscribed again (realtime/broker.py), so this is counted here rather than as a stream end.
BROKER_LOST = Counter("rentpe_broker_connections_lost", "Times a worker's Redis pub/sub connection was lost")

# The event log --------------------------------------------------------------------------------

EVENTS_RECORDED = Counter("rentpe_events_recorded", "Durable events written (one per recipient)")
EVENTS_PUBLISHED = Counter("rentpe_events_published", "Durable events handed to the broker after commit")
EVENTS_DELIVERED = Counter("rentpe_events_delivered", "Durable events written to a client by a stream")
PUBLISH_FAILURES = Counter("rentpe_publish_failures", "Publishes the broker refused (clients replay them)")
REPLAYS = Counter("rentpe_replays", "Streams opened with a cursor, replayed from SQL")
EVENTS_REPLAYED = Counter("rentpe_events_replayed", "Events sent by replays")
# behind: more than STREAM_REPLAY_LIMIT events; pruned: the oldest ones it needs are gone;
# ahead: a cursor past the database's last seq (a restored backup).
RESYNCS = Counter("rentpe_resyncs", "Resyncs sent instead of a replay, by cause", ["cause"])
EVENTS_PRUNED = Counter("rentpe_events_pruned", "Events removed by the retention prune")

# Requests -------------------------------------------------------------------------------------

# Milliseconds to seconds: a send is a few ms alone, hundreds under a burst.
SEND_SECONDS = Histogram("rentpe_send_seconds", "A message's send, from the request's arrival to its commit",
                         buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
RATE_LIMITED = Counter("rentpe_rate_limit_refusals", "Requests refused by a rate limit, by limit", ["limit"])

# The process ----------------------------------------------------------------------------------

# Gen 2 pauses grow with what the worker holds (0.17 s at 3,000 streams). Only generations 1 and 2
# are observed: gen 0 runs every ~700 allocations, takes microseconds, and an observation per
# collection would cost more than the pause it measures.
GC_PAUSE = Histogram("rentpe_gc_pause_seconds", "Garbage-collector pauses (generations 1 and 2)", ["generation"],
                     buckets=(.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))
POOL_CHECKED_OUT = Gauge("rentpe_db_pool_checked_out", "Database connections in use in this worker",
                         multiprocess_mode="liveall")
POOL_OVERFLOW = Gauge("rentpe_db_pool_overflow", "Connections beyond the pool's size open in this worker",
                      multiprocess_mode="liveall")
POOL_TIMEOUTS = Counter("rentpe_db_pool_timeouts", "Requests refused (503) for want of a free connection")

# Missed-message e-mail ------------------------------------------------------------------------

EMAILS_SENT = Counter("rentpe_emails_sent", "Missed-message e-mails the mail server accepted")
EMAILS_FAILED = Counter("rentpe_emails_failed", "Missed-message e-mails that failed (retried or given up)")


def since_request_start():
    """Seconds since this request arrived (None outside one): stamped by `requestlog`."""
    if not has_request_context():
        return None
    started = request.environ.get("rentpe.started")
    return time.perf_counter() - started if started is not None else None


def observe_send():
    """A send just committed: its latency since the request arrived (not when run outside one)."""
    seconds = since_request_start()
    if seconds is not None:
        SEND_SECONDS.observe(seconds)


class Tally:
    """A count bumped on a hot path (`add`: one integer addition), written to `counter` by the
    sampler. Under gevent nothing preempts the addition; with threads a rare lost count is
    accepted (these are metrics, not accounts)."""

    __slots__ = ("counter", "value")

    def __init__(self, counter):
        self.counter, self.value = counter, 0

    def add(self, amount=1):
        self.value += amount

    def flush(self):
        amount, self.value = self.value, 0
        if amount:
            self.counter.inc(amount)


DELIVERED = Tally(EVENTS_DELIVERED)

# Seconds between two writes of the tallies and the pool gauges: a scrape every 15 s or more sees
# them at most this stale.
SAMPLE_SECONDS = 1.0
_engines = weakref.WeakSet()
_sampler = {"pid": None}
_sampler_lock = threading.Lock()


def flush():
    """Write the tallies and the pool's state to their metrics now."""
    DELIVERED.flush()
    checked_out = overflow = 0
    for engine in list(_engines):
        pool = engine.pool  # (`dispose()` replaces it)
        checked_out += pool.checkedout()
        overflow += max(pool.overflow(), 0)
    POOL_CHECKED_OUT.set(checked_out)
    POOL_OVERFLOW.set(overflow)


def _sample():
    while True:
        time.sleep(SAMPLE_SECONDS)
        try:
            flush()
        except Exception:  # never let a metric end the thread
            pass


def start_sampler():
    """One sampler per process (started in the worker, after gunicorn's fork)."""
    with _sampler_lock:
        if _sampler["pid"] == os.getpid():
            return
        _sampler["pid"] = os.getpid()
    threading.Thread(target=_sample, name="rentpe-metrics", daemon=True).start()


# The GC callback --------------------------------------------------------------------------------

_gc_started = [0.0]
_GC_CHILDREN = {1: GC_PAUSE.labels("1"), 2: GC_PAUSE.labels("2")}


def _on_gc(phase, info):
    generation = info["generation"]
    if generation == 0:
        return
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    else:
        _GC_CHILDREN[generation].observe(time.perf_counter() - _gc_started[0])


def watch_gc():
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


# The database pool ------------------------------------------------------------------------------

def watch_pool(engine):
    """Sample this engine's pool (a QueuePool: PostgreSQL, or a SQLite file) once a second."""
    if hasattr(engine.pool, "checkedout") and hasattr(engine.pool, "overflow"):
        _engines.add(engine)


# Exposition -------------------------------------------------------------------------------------

def registry():
    """What a scrape reads: every worker's files in multiprocess mode, else this process."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return REGISTRY
    from prometheus_client import multiprocess

    collected = CollectorRegistry()
    multiprocess.MultiProcessCollector(collected, path=path)
    return collected


def exposition():
    """(body, content type) of a scrape (of this process: its tallies are written first)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        flush()
    return generate_latest(registry()), CONTENT_TYPE_LATEST


def serve(bind):
    """Serve the metrics on `bind` ("host:port") from a thread of this process: gunicorn's master
    (which serves no requests) or the embedded default's one process. Returns the server."""
    from prometheus_client import start_http_server

    host, _, port = bind.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host or "127.0.0.1", registry=registry())
    return server


def init_app(app):
    from .extensions import db

    watch_gc()
    with app.app_context():
        for engine in db.engines.values():
            watch_pool(engine)
    start_sampler()
