"""gunicorn settings for RentPe: gevent workers serving pages and long-lived SSE streams.

    gunicorn -c deploy/gunicorn.conf.py app:app

Bind address and worker count come from the environment (`GUNICORN_BIND`, `WEB_CONCURRENCY`);
everything else is fixed here because it follows from how the `/events` stream works (see
docs/architecture.md, "The stream's settings"). Command-line flags override these values.

This file must not import the application: gevent patches the standard library when each worker
starts, and anything imported here (in the master, before the fork) would hold unpatched sockets.
"""
import os
import resource
import tempfile

# Where to listen. Behind nginx this is a local address; nginx speaks HTTP/2 to browsers, which
# lifts the six-connections-per-origin limit that streams would otherwise exhaust.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# One worker per core: a gevent worker serves thousands of idle streams from one process, so more
# processes only help with CPU (template rendering), not with concurrency.
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)

# Cooperative greenlets: an open stream costs a greenlet and a socket, not a thread.
worker_class = "gevent"

# The size of each worker's greenlet pool. Every open SSE stream holds one slot for its whole life
# (a tab open all day holds it all day), so the default of 1000 would cap a worker at 1000 open
# tabs; past the cap new connections wait in the accept queue, and that includes page loads and
# form POSTs, not just streams. Capacity is workers x worker_connections; each slot is a file
# descriptor, hence the file limit raised in `on_starting` below.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "5000"))

# For gevent workers this is a liveness check, not a request deadline: the worker pings the master
# every second from a greenlet, so streams can stay open for minutes. A worker is killed (with every
# stream on it) only if its event loop is blocked this long by CPU work or unpatched C code.
timeout = 30

# On shutdown or restart, gunicorn waits this long for open requests. Streams don't count: TERM
# ends them at once (`post_worker_init` below). Keep it short (5-10 s) anyway: nothing is lost
# when a stream is cut, the browser reconnects with Last-Event-ID and the server replays from SQL.
graceful_timeout = 8

# Seconds an idle keep-alive connection stays open between requests. Long enough for a page's
# follow-up requests (CSS, JS, the stream) and for nginx's upstream keep-alive to reuse it; short
# enough not to pin pool slots on idle sockets. It does not limit a stream, which is one response.
keepalive = 5

# Never preload: gevent's worker patches the standard library (sockets, threads, ssl) when the
# worker starts, after the fork. An app imported in the master would create its connection pools
# and Redis clients with unpatched sockets, and each one would block the whole worker.
preload_app = False

# Restarts from max_requests wait for open streams like any shutdown (graceful_timeout); streams
# end on their own after a few minutes anyway, so workers are not recycled by request count.
max_requests = 0

# No control socket: its default path is one per user account ($XDG_RUNTIME_DIR or ~/.gunicorn),
# so a second instance on the host (a blue/green deploy, a test server) would take it over. The
# process is managed with signals (TERM to stop, HUP to reload) by the process manager instead.
control_socket_disable = True

# Errors go to stderr, where the process manager (systemd, docker) collects them. The access log
# is the app's own (rentpe/requestlog.py: one line per request with its request id, user id and
# duration, JSON with LOG_FORMAT=json, the health probes left out), also on stderr; gunicorn's
# would be a second line per request, with the query string.
accesslog = None
errorlog = "-"

# Metrics (rentpe/metrics.py). With METRICS_BIND set ("127.0.0.1:9464", or a private address
# Prometheus scrapes), each worker writes its values to files in PROMETHEUS_MULTIPROC_DIR
# (prometheus_client's multiprocess mode) and the master, which serves no requests, serves their
# sum on that address: a port of its own, never the public one. The directory must be set before
# any worker imports prometheus_client, hence here, in the master; it is emptied at start-up so no
# series of an earlier run survives.
METRICS_BIND = os.environ.get("METRICS_BIND") or None
if METRICS_BIND and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="rentpe-metrics-")


def on_starting(server):
    """Raise the open-file limit in the master, so every worker inherits it: each stream is a socket.
    Empty the metrics directory of an earlier run."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if METRICS_BIND and directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.endswith(".db"):
                os.unlink(os.path.join(directory, name))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = server.cfg.worker_connections + 256  # plus database, Redis and log descriptors
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


# What the `Server` response header says: nothing about the software or its version (a banner
# only helps someone looking for servers with a known hole). gunicorn has no setting for it.
SERVER_BANNER = "RentPe"


def post_fork(server, worker):
    """Each worker, before it serves: the `Server` banner, and psycopg2 made cooperative before
    the app opens any connection.

    psycopg2 is C code: without a wait callback a query blocks the worker's event loop, and every
    stream and request on that worker waits for it. psycogreen's callback yields to gevent instead.
    """
    import gunicorn.http.wsgi

    gunicorn.http.wsgi.SERVER = SERVER_BANNER  # read by every Response gunicorn builds

    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgresql", "postgres://")):
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()


def post_worker_init(worker):
    """Keep the application's own objects out of the garbage collector's full collections.

    A full collection walks every tracked object and stops the whole worker meanwhile: every
    stream and request on it (with 3,000 open streams, ~0.3 s). What the worker holds once it has
    loaded the app (modules, models, templates, compiled statements) lives as long as the worker;
    frozen, no collection walks it again. Collected first, so nothing frozen is garbage.
    """
    import gc

    gc.collect()
    gc.freeze()
    _end_streams_on_term(worker)


def _end_streams_on_term(worker):
    """On TERM (a stop, a deploy) gunicorn stops accepting and waits up to graceful_timeout for
    the worker's open requests, and a stream never ends by itself: every stop would wait the whole
    time, then cut the streams, and a stream whose client left silently (nothing written to it
    since) would hold the worker just the same. So TERM also ends the worker's streams at once
    (`realtime.exiting`): their clients reconnect with their cursors to a worker that stays, and
    this one exits as soon as its other requests are answered."""
    import signal

    import gevent

    app = worker.wsgi
    if "realtime" not in getattr(app, "extensions", {}):
        return
    from rentpe import realtime

    handle_exit = worker.handle_exit  # gunicorn's: stop the serving loop

    def exit_ending_streams(sig, frame):
        handle_exit(sig, frame)
        gevent.spawn(realtime.exiting, app)  # not in the signal handler itself: it takes locks

    signal.signal(signal.SIGTERM, exit_ending_streams)


def when_ready(server):
    """Serve the workers' metrics from the master (a thread: the master is not gevent-patched and
    serves nothing else). prometheus_client only, never the app: see the note at the top."""
    if not METRICS_BIND:
        return
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    host, _, port = METRICS_BIND.rpartition(":")
    start_http_server(int(port), addr=host or "127.0.0.1", registry=registry)
    server.log.info("metrics on http://%s/metrics", METRICS_BIND)


def child_exit(server, worker):
    """A worker is gone: its live gauges (open streams, pool) stop counting; its counters stay."""
    if METRICS_BIND:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
