"""`GET /events`: one Server-Sent Events stream per tab, carrying its user's events.

The order on open is the heart of the delivery contract: register with the hub FIRST (from then
on every publish reaches this stream's inbox), then replay `seq > cursor` from SQL, then the
snapshot fragments, then live events, skipping what the replay already sent. The replay is done
in the view and the DB session released before the generator starts, so no stream holds a
connection while it waits. The generator is plain (no `stream_with_context`): whatever needs a
context later (catching up, presence hooks) pushes a fresh one built from the stream's request.

Live events normally arrive in seq order. Two commits can publish out of order, though, and a
publish can be lost; so the `id:` sent is always the highest seq below which everything was
sent. An event that arrives ahead of a missing one is shown at once without an `id:`; if the
missing one doesn't follow within `STREAM_GAP_SECONDS` the stream reads it from SQL (it is
committed: one user's seqs commit in order). A missing event with nothing after it is found by
the watch (`watch.py`), which has the stream catch up the same way. Catching up happens in place
(`seq > cursor`, rendered as a replay is), without ending the stream.
"""
import logging
import queue
import random
import socket
import time
import uuid

from flask import Blueprint, Response, current_app, g, request, session
from flask.ctx import RequestContext
from flask_login import current_user

from .. import metrics, ratelimits
from ..extensions import db
from . import eventlog as event_log
from . import registry
from .broker import BrokerUnavailable
from .event import OPEN, PING, Durable, Ephemeral, data_lines, frame, html_frame, parse_payload
from .hub import CATCH_UP, GAP, LIFETIME, REPLACED, RESTORED, SHUTDOWN, SLOW

log = logging.getLogger(__name__)

bp = Blueprint("realtime", __name__)

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# Seqs are BIGINT; a longer "number" is beyond any real cursor and means "resync".
MAX_CURSOR_DIGITS = 18
# Payloads taken from the inbox per write (and per delivery-hook call).
BATCH = 100


# Sent by a stream that ends because its user opened too many (see STREAM_MAX_PER_USER): the page
# stops its stream rather than reconnect and push out another tab's.
REPLACED_FRAME = frame(data_lines("Live updates stopped here: too many tabs are open. Reload to resume."),
                       event=REPLACED)


def opens_refused(message):
    return Response(message + "\n", mimetype="text/plain")


@bp.get("/events")
@ratelimits.limit(ratelimits.STREAM_OPENS_PER_USER, ratelimits.per_user, refused=opens_refused, methods=("GET",))
def events():
    if not current_user.is_authenticated:
        # Not a redirect: the client is a fetch() stream, and a 401 makes it back off.
        return Response("Log in to receive live updates.\n", 401, mimetype="text/plain")
    realtime = current_app.extensions["realtime"]
    realtime.hub.make_room(current_user.id, realtime.config["STREAM_MAX_PER_USER"])
    bound_writes(request.environ, realtime.config["STREAM_WRITE_TIMEOUT_SECONDS"])
    try:
        stream = Stream.open(current_user.id, parse_cursor(), request.environ, session._get_current_object())
        event_log.publish_committed()  # whatever a presence hook committed
    except BrokerUnavailable:
        return Response("Live updates are unavailable right now.\n", 503, mimetype="text/plain",
                        headers={"Retry-After": "5"})
    finally:
        db.session.remove()
    response = Response(stream.generate(), mimetype="text/event-stream", headers=HEADERS)
    response.call_on_close(stream.close)
    return response


def bound_writes(environ, seconds):
    """Have every write of this response give up after `seconds` (the connection is then closed,
    and the stream with it). gunicorn hands the app its client socket; other servers (the embedded
    default's) don't, and nothing changes there."""
    sock = environ.get("gunicorn.socket")
    if sock is not None and seconds:
        sock.settimeout(seconds)


def close_after_response(environ):
    """This process is exiting: the connection closes once the response is complete, instead of
    waiting (kept alive) for a next request, which belongs to a process that stays (the client's
    reconnect). gunicorn hands the app its client socket; other servers don't, and nothing changes
    there."""
    sock = environ.get("gunicorn.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RD)  # the response still goes out; the next read finds the end
        except OSError:
            pass


def parse_cursor():
    """`Last-Event-ID`, else `?after=`. Anything else that isn't a plain number counts as 0; no
    cursor at all is None: a fresh stream, which starts at the user's current seq (replaying the
    whole log for a client that names no position would cost up to STREAM_REPLAY_LIMIT renders
    per open)."""
    raw = (request.headers.get("Last-Event-ID") or request.args.get("after") or "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()):
        return 0
    return int(raw) if len(raw) <= MAX_CURSOR_DIGITS else 10**MAX_CURSOR_DIGITS


@bp.before_app_request
def remember_cursor():
    # Read before the page reads its data: an event committed in between is then replayed
    # (harmless, fragments are idempotent) instead of skipped.
    if request.method in ("GET", "HEAD") and request.endpoint not in ("static", "realtime.events"):
        if current_user.is_authenticated:
            g.realtime_cursor = event_log.last_seq(current_user.id)


@bp.app_template_global("realtime_cursor")
def page_cursor():
    """The `?after=` for this page's stream (read at the start of the request when possible)."""
    if "realtime_cursor" not in g:
        g.realtime_cursor = event_log.last_seq(current_user.id) if current_user.is_authenticated else 0
    return g.realtime_cursor


@bp.after_app_request
def publish_after_request(response):
    event_log.publish_committed()  # the safety net for a service that forgot
    return response


class Stream:
    def __init__(self, app, user_id, environ, session):
        self.app = app
        self.realtime = app.extensions["realtime"]
        self.config = self.realtime.config
        self.user_id = user_id
        # Without the request Werkzeug files into its environ (Flask unfiles it when the view's
        # context ends, not from a copy): an idle stream would keep that request's parsed query,
        # cookies and headers alive for its whole life. Hook contexts file theirs and unfile it.
        self.environ = {key: value for key, value in environ.items() if key != "werkzeug.request"}
        self.session = session  # the request's, decoded once: hooks render with it, never save it
        self.id = uuid.uuid4().hex
        self.subscription = None
        self.backlog = []
        # Kinds whose delivery someone waits for (a receipt): only they move the delivery cursor,
        # so a stream that wrote nothing but board messages leaves the watch nothing to record.
        self.awaited = frozenset(registry.delivery_kinds())
        self.delivering = False  # sent one of those since the watch last took the cursor
        self.written = 0  # durable events written since the last `_flushed` (for the metrics)
        self._seen = 0
        self.ahead = set()  # seqs > seen + 1 already sent (without id)
        self.gap_since = None
        self.ended = None
        self.closed = False

    @property
    def seen(self):
        """Every seq <= seen has been sent; it is the `id:` the client holds."""
        return self._seen

    @seen.setter
    def seen(self, seq):
        self._seen = seq
        if self.subscription is not None:
            self.subscription.cursor = seq  # what the watch compares with the event log

    @classmethod
    def open(cls, user_id, cursor, environ, session):
        stream = cls(current_app._get_current_object(), user_id, environ, session)
        stream.subscription = stream.realtime.hub.register(user_id)
        stream.realtime.watch.ensure_running(stream.app)
        try:
            stream._replay(cursor)
            # Events up to the client's cursor reached it through an earlier stream: the delivery
            # cursor moves on from there, as this stream's writes reach the client.
            stream.subscription.flushed = stream.subscription.reported = min(
                stream.seen if cursor is None else cursor, stream.seen)
            stream.backlog.extend(html_frame(html) for html in registry.render_snapshots(user_id))
            stream._presence_open()
        except BaseException:
            stream.realtime.hub.unregister(stream.subscription)
            raise
        metrics.STREAM_OPENS.inc()
        metrics.STREAMS_OPEN.inc()
        return stream

    # Opening (in the view: app + request context, DB session) ------------------------------

    def _replay(self, cursor):
        if cursor is None:  # a fresh stream (see parse_cursor): from now on, nothing to replay
            self.seen = event_log.last_seq(self.user_id)
            return
        limit = self.config["STREAM_REPLAY_LIMIT"]
        last, rows = event_log.replay(self.user_id, cursor, limit + 1)  # one indexed read
        metrics.REPLAYS.inc()
        if cursor > last:
            # A cursor from another database (a restored backup), or made up: the counter is moved
            # past it, so the seqs recorded from now on are ones this client has never seen. One
            # longer than any real cursor (parse_cursor) is only answered.
            if cursor < 10**MAX_CURSOR_DIGITS:
                last = event_log.skip_past(self.user_id, cursor)
            return self._resync(last, "ahead")
        if len(rows) > limit:
            return self._resync(last, "behind")
        if cursor < last and (not rows or rows[0].seq != cursor + 1):
            return self._resync(last, "pruned")  # the oldest events it needs are gone
        metrics.EVENTS_REPLAYED.inc(len(rows))
        self.written += len(rows)
        for row in rows:
            self.backlog.append(html_frame(registry.render(row), id=row.seq))  # id-only if None
            self.delivering = self.delivering or row.kind in self.awaited
        self.seen = rows[-1].seq if rows else cursor

    def _resync(self, last, cause):
        metrics.RESYNCS.labels(cause).inc()
        self.backlog.append(self._resync_frame(last))

    def _resync_frame(self, last):
        # Too far behind to replay event by event: the page reloads its state, and the `id:`
        # moves the client's cursor to now. Later events come live.
        self.seen = last
        self.ahead.clear()
        self.gap_since = None
        return frame(data_lines(str(self.seen)), id=self.seen, event="resync")

    def _presence_open(self):
        try:
            first = self.realtime.presence.open(self.user_id, self.id)
        except Exception as exc:
            log.warning("presence unavailable: %s", exc)
            first = False
        # From now on the watch refreshes the entry (only now: a refresh before the open would
        # make the open look like a second tab's).
        self.subscription.refreshed = time.monotonic()
        self.subscription.stream_id = self.id
        if first:
            registry.call_presence_hooks(self.user_id, True)

    # Streaming (no context, no DB connection) --------------------------------------------

    def generate(self):
        heartbeat = self.config["STREAM_HEARTBEAT_SECONDS"]
        gap_seconds = self.config["STREAM_GAP_SECONDS"]
        lifetime = self.config["STREAM_LIFETIME_SECONDS"] + random.uniform(0, self.config["STREAM_LIFETIME_JITTER_SECONDS"])
        deadline = time.monotonic() + lifetime
        yield OPEN
        if self.backlog:
            backlog, self.backlog = "".join(self.backlog), []
            yield backlog
        self._flushed()
        next_beat = time.monotonic() + heartbeat
        while True:
            now = time.monotonic()
            if now >= deadline:
                self.ended = LIFETIME
                return
            if self.gap_since is not None and now >= self.gap_since + gap_seconds:
                # The missing event's publish was lost: it is committed (seqs of one user commit
                # in order), so SQL has it. Still missing after that, the client replays.
                text = self._catch_up()
                if text:
                    yield text
                self._flushed()
                if self.gap_since is not None:
                    self.ended = GAP
                    return
                continue
            if now >= next_beat:
                yield PING  # (the watch refreshes this stream's presence, with all the others)
                next_beat = time.monotonic() + heartbeat
                continue
            wake = min(deadline, next_beat, self.gap_since + gap_seconds if self.gap_since is not None else deadline)
            try:
                first = self.subscription.get(wake - now)
            except queue.Empty:
                continue
            text = self._consume([first, *self.subscription.drain(BATCH - 1)])
            if text:
                yield text
            self._flushed()
            if self.ended:
                if self.ended == REPLACED:
                    yield REPLACED_FRAME
                if self.ended == SHUTDOWN:
                    close_after_response(self.environ)
                return

    def _consume(self, payloads):
        out = []
        for payload in payloads:
            if payload is None:
                self.ended = self.subscription.ended
                break
            if payload is CATCH_UP:
                out.append(self._catch_up())
                continue
            if isinstance(payload, Durable):  # from a fan-out, parsed once by the hub
                out.append(self._durable(payload))
                continue
            try:
                message = parse_payload(payload)
            except ValueError:
                log.warning("ignoring a malformed stream payload %r", payload[:40])
                continue
            if isinstance(message, Ephemeral):
                out.append(message.text)
            elif isinstance(message, Durable):
                out.append(self._durable(message))
        return "".join(out)

    def _durable(self, message):
        seq = message.seq
        if seq <= self.seen or seq in self.ahead:
            return ""  # already sent (by the replay, or earlier out of order)
        self.delivering = self.delivering or message.kind in self.awaited
        self.written += 1
        if seq != self.seen + 1:
            self.ahead.add(seq)
            if self.gap_since is None:
                self.gap_since = time.monotonic()
            return frame(message.body)
        self.seen = seq
        while self.seen + 1 in self.ahead:
            self.ahead.discard(self.seen + 1)
            self.seen += 1
        self.gap_since = time.monotonic() if self.ahead else None
        return frame(message.body, id=self.seen)

    def _catch_up(self):
        """What the watch found unsent (a publish lost, or swallowed by a Redis reconnect): read
        `seq > seen` from SQL and send it as a replay would, in place, without ending the stream.
        Events already sent ahead without an id are skipped by `_durable`."""
        self.subscription.catching_up = False  # from now on, a later finding queues another
        limit = self.config["STREAM_REPLAY_LIMIT"]
        with self._context():
            rows = event_log.events_after(self.user_id, self.seen, limit + 1)
            if len(rows) > limit:
                metrics.RESYNCS.labels("behind").inc()
                return self._resync_frame(event_log.last_seq(self.user_id))
            rendered = [(row, registry.render(row)) for row in rows]
        return "".join(self._durable(Durable(row.seq, row.kind, data_lines(html))) for row, html in rendered)

    def _flushed(self):
        # The server has taken what was yielded (the generator resumed): the watch moves the
        # delivery cursor to here in its next round.
        if self.written:
            metrics.DELIVERED.add(self.written)
            self.written = 0
        if self.delivering:
            self.subscription.flushed = self.seen
            self.delivering = bool(self.ahead)  # what was sent ahead counts once the gap closes

    def _context(self):
        return _HookContext(self.app, self.environ, self.session)

    # Closing (call_on_close: always runs, even if the generator never started) ------------

    def close(self):
        if self.closed:
            return
        self.closed = True
        metrics.STREAMS_OPEN.dec()
        metrics.STREAM_ENDS.labels(self.ended or "client").inc()
        self.realtime.watch.retire(self.subscription)  # before leaving the hub: the watch sees it somewhere
        self.realtime.hub.unregister(self.subscription)
        reconnecting = self.ended in (LIFETIME, SLOW, SHUTDOWN, GAP, RESTORED)  # the client comes right back
        try:
            offline = self.realtime.presence.close(self.user_id, self.id, reconnecting)
        except Exception as exc:
            log.warning("presence unavailable: %s", exc)
            return
        if offline:
            with self._context():
                registry.call_presence_hooks(self.user_id, False)


class _HookContext:
    """A fresh app context and a request context rebuilt from the stream's request and its
    session (not decoded from the cookie again), for hooks that run after the view returned.
    Publishes what they committed; releases the database session."""

    def __init__(self, app, environ, session):
        self.app_context = app.app_context()
        self.request_context = RequestContext(app, environ, session=session)

    def __enter__(self):
        self.app_context.push()
        self.request_context.push()
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is not None:
                log.error("realtime hook failed", exc_info=(exc_type, exc, tb))
                db.session.rollback()
            event_log.publish_committed()  # what the hooks committed, even if one failed later
        finally:
            db.session.remove()
            self.request_context.pop()
            self.app_context.pop()
        return exc_type is not None and issubclass(exc_type, Exception)  # a hook never breaks the stream
