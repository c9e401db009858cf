"""GET /events: replay from SQL, then live, with nothing lost and nothing shown twice.

Every test runs against both brokers (in-process, Redis) and both databases. Events are of a
test-only kind, "test.note", rendered as `<div id="note-N">`.
"""
import re
import threading
import time

import limits
import pytest
from flask import render_template_string, request
from flask_login import current_user

from rentpe import realtime
from rentpe.realtime import eventlog
from rentpe.extensions import db
from tests.conftest import ON_EVERY_BROKER

NOTE = re.compile(r'id="note-([^"]+)"')


@pytest.fixture
def app_overrides(realtime_overrides):
    return realtime_overrides


@pytest.fixture(autouse=True)
def notes(live):
    realtime.register_renderer("test.note", lambda e: f'<div id="note-{e.data["n"]}" hx-swap-oob="true">for {e.user_id}</div>')


def note(users, n, publish=True):
    """Records note `n` for `users` in the test's own transaction, commits, publishes."""
    realtime.record([u.id for u in users], "test.note", {"n": n})
    db.session.commit()
    if publish:
        realtime.publish_committed()


def shown(messages):
    """(id, note) for each message that carries a note."""
    return [(m["id"], n) for m in messages if m.get("data") for n in NOTE.findall(m["data"])]


def test_logged_out_gets_401_not_a_redirect(client, open_stream):
    stream = open_stream(client)
    assert stream.status_code == 401


def test_first_bytes_arrive_at_once_with_stream_headers(app, buyer_client, open_stream):
    app.config["STREAM_HEARTBEAT_SECONDS"] = 30
    started = time.monotonic()
    stream = open_stream(buyer_client)
    assert stream.next() == {"comment": "open"}
    assert time.monotonic() - started < 1
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    assert stream.headers["Cache-Control"] == "no-cache"
    assert stream.headers["X-Accel-Buffering"] == "no"


@ON_EVERY_BROKER
def test_replays_after_the_page_cursor_then_goes_live(buyer, buyer_client, open_stream):
    for n in (1, 2, 3):
        note([buyer], n)
    stream = open_stream(buyer_client, after=1)
    assert shown(stream.messages(2)) == [("2", "2"), ("3", "3")]
    note([buyer], 4)
    assert shown(stream.messages(1)) == [("4", "4")]


@ON_EVERY_BROKER
def test_a_reconnect_resumes_after_last_event_id_without_duplicates(buyer, buyer_client, open_stream):
    note([buyer], 1)
    note([buyer], 2)
    first = open_stream(buyer_client, after=0)
    assert shown(first.messages(2)) == [("1", "1"), ("2", "2")]
    first.close()
    note([buyer], 3)
    # The browser keeps the page's ?after=0 in the URL and sends the id it last received.
    again = open_stream(buyer_client, after=0, last_event_id=2)
    assert shown(again.messages(1)) == [("3", "3")]
    note([buyer], 4)
    assert shown(again.messages(1)) == [("4", "4")]


def test_a_reconnect_costs_the_user_and_one_read_of_the_missing_events(app, buyer, buyer_client, open_stream):
    from sqlalchemy import event as sa_event

    for n in range(3):
        note([buyer], n)
    statements = []
    here = threading.get_ident()

    def seen(conn, cursor, statement, parameters, context, executemany):
        if threading.get_ident() == here:  # the stream's; not the watch's rounds
            statements.append(statement)

    sa_event.listen(db.engine, "before_cursor_execute", seen)
    try:
        stream = open_stream(buyer_client, last_event_id=1)
        assert shown(stream.messages(2)) == [("2", "1"), ("3", "2")]
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", seen)
    assert len(statements) == 2, statements  # the session's user, then the counter and the events past 1
    assert "stream_events" in statements[1] and "stream_counters" in statements[1]


@ON_EVERY_BROKER
def test_an_event_committed_while_the_stream_replays_is_not_lost(app, buyer, buyer_client, open_stream):
    """The race the hub registration closes: a writer commits and publishes after the replay
    query ran but before the stream went live."""
    def concurrent_writer():
        with app.app_context():
            note([db.session.get(type(buyer), buyer.id)], "during-replay")

    def render_and_race(event):
        if request.path == "/events" and not render_and_race.raced:
            render_and_race.raced = True
            writer = threading.Thread(target=concurrent_writer)
            writer.start()
            writer.join()
        return f'<div id="note-{event.data["n"]}">…</div>'

    render_and_race.raced = False
    realtime.register_renderer("test.race", render_and_race)
    realtime.record([buyer.id], "test.race", {"n": "replayed"})
    db.session.commit()
    stream = open_stream(buyer_client, after=0)
    assert render_and_race.raced
    assert shown(stream.messages(2)) == [("1", "replayed"), ("2", "during-replay")]


def test_an_event_both_replayed_and_published_late_is_shown_once(buyer, buyer_client, open_stream):
    note([buyer], 1, publish=False)  # committed before the stream opened, published after
    stream = open_stream(buyer_client, after=0)
    assert shown(stream.messages(1)) == [("1", "1")]
    realtime.publish_committed()
    note([buyer], 2)
    assert shown(stream.messages(1)) == [("2", "2")]


def test_nothing_is_published_before_commit_or_after_rollback(buyer, buyer_client, open_stream):
    stream = open_stream(buyer_client, after=0)
    realtime.record([buyer.id], "test.note", {"n": "rolled-back"})
    realtime.publish_committed()
    db.session.rollback()
    realtime.publish_committed()
    db.session.begin_nested()
    realtime.record([buyer.id], "test.note", {"n": "savepoint-rolled-back"})
    db.session.rollback()
    realtime.record([buyer.id], "test.note", {"n": "kept"})
    db.session.commit()
    realtime.publish_committed()
    assert shown(stream.read_until(lambda m: m.get("id"))) == [("1", "kept")]
    assert realtime.last_seq(buyer.id) == 1


def test_an_event_whose_session_closed_without_commit_is_never_published(buyer, buyer_client, open_stream):
    stream = open_stream(buyer_client, after=0)
    realtime.record([buyer.id], "test.note", {"n": "abandoned"})
    db.session.close()
    note([buyer], "committed")
    assert shown(stream.read_until(lambda m: m.get("id"))) == [("1", "committed")]


@ON_EVERY_BROKER
def test_live_events_published_out_of_order_keep_the_cursor_honest(app, buyer, buyer_client, open_stream):
    stream = open_stream(buyer_client, after=0)
    with app.app_context():  # writer A commits seq 1 …
        realtime.record([buyer.id], "test.note", {"n": "a"})
        db.session.commit()
        with app.app_context():  # … writer B commits seq 2 and publishes first
            realtime.record([buyer.id], "test.note", {"n": "b"})
            db.session.commit()
            realtime.publish_committed()
        realtime.publish_committed()
    # b is shown at once but without an id: the client's cursor may not pass a.
    assert shown(stream.messages(2)) == [(None, "b"), ("2", "a")]


def test_a_lost_publish_revealed_by_a_later_event_is_read_from_sql(app, buyer, buyer_client, open_stream):
    app.config["STREAM_GAP_SECONDS"] = 0.2
    app.config["STREAM_CHECK_SECONDS"] = 60  # not the watch: the gap itself
    stream = open_stream(buyer_client, after=0)
    with app.app_context():
        realtime.record([buyer.id], "test.note", {"n": "lost"})
        db.session.commit()  # never published (say Redis blinked)
    note([buyer], "next")
    # "next" is shown at once without an id; "lost" follows from SQL, its id covering both.
    assert shown(stream.messages(2)) == [(None, "next"), ("2", "lost")]
    note([buyer], "after")
    assert shown(stream.messages(1)) == [("3", "after")]
    assert not stream.ended  # caught up in place: no reconnect


@ON_EVERY_BROKER
def test_a_lost_publish_with_nothing_after_it_arrives_within_two_checks(app, buyer, buyer_client, open_stream):
    app.config["STREAM_CHECK_SECONDS"] = 0.2
    stream = open_stream(buyer_client, after=0)
    note([buyer], "first")
    assert shown(stream.messages(1)) == [("1", "first")]
    with app.app_context():
        realtime.record([buyer.id], "test.note", {"n": "last"})
        db.session.commit()  # the last event to this person, never published
    committed = time.monotonic()
    assert shown(stream.messages(1, timeout=3)) == [("2", "last")]
    assert time.monotonic() - committed < 2 * 0.2 + 0.5
    assert not stream.ended


def test_after_a_quiet_spell_a_lost_publish_still_arrives_within_two_checks(app, backend, buyer, buyer_client,
                                                                          open_stream, monkeypatch):
    """With nothing written for STREAM_CHECK_QUIET_SECONDS the watch stops comparing every stream
    each round (one cheap statement tells it nothing moved); the first commit ends the quiet, so
    the last event to a person, never published, is as late as ever."""
    app.config["STREAM_CHECK_SECONDS"] = 0.1
    app.config["STREAM_CHECK_QUIET_SECONDS"] = 0.5
    compared = []
    last_seqs = eventlog.last_seqs
    monkeypatch.setattr(eventlog, "last_seqs", lambda *a, **k: compared.append(time.monotonic()) or last_seqs(*a, **k))
    stream = open_stream(buyer_client, after=0)
    note([buyer], "first")
    assert shown(stream.messages(1)) == [("1", "first")]
    stream.quiet_for(1.5)
    if backend == "sqlite":  # (PostgreSQL's position moves with any write to the server: other tests')
        window = [t for t in compared if t > time.monotonic() - 0.8]
        assert len(window) <= 2  # not one every 0.1 s
    with app.app_context():
        realtime.record([buyer.id], "test.note", {"n": "last"})
        db.session.commit()  # the last event to this person, never published
    committed = time.monotonic()
    assert shown(stream.messages(1, timeout=3)) == [("2", "last")]
    assert time.monotonic() - committed < 2 * 0.1 + 0.5
    assert not stream.ended


def test_too_far_behind_gets_one_resync_then_live(app, buyer, buyer_client, open_stream):
    app.config["STREAM_REPLAY_LIMIT"] = 3
    for n in range(1, 6):
        note([buyer], n)
    stream = open_stream(buyer_client, after=1)
    assert stream.messages(1) == [{"id": "5", "event": "resync", "data": "5"}]
    note([buyer], 6)
    assert shown(stream.messages(1)) == [("6", "6")]


def test_a_cursor_beyond_the_log_resyncs_and_later_seqs_are_new_to_it(buyer, buyer_client, open_stream):
    """A client holding seq 99 of a database restored to seq 1: its seqs 2-99 must never be handed
    out again (it would take them for what it already has), so the counter moves past its cursor."""
    note([buyer], 1)
    stream = open_stream(buyer_client, last_event_id=99)
    assert stream.messages(1) == [{"id": "99", "event": "resync", "data": "99"}]
    note([buyer], 2)
    assert shown(stream.messages(1)) == [("100", "2")]
    assert eventlog.last_seq(buyer.id) == 100


@pytest.mark.parametrize("cursor, first", [
    ("abc", ("1", "1")), ("-5", ("1", "1")), ("1e3", ("1", "1")), ("\uff11", ("1", "1")),
    ("9" * 40, "resync"), ("99999999999999999999", "resync"),
])
def test_malformed_cursors_never_fail(buyer, buyer_client, open_stream, cursor, first):
    note([buyer], 1)
    for stream in (open_stream(buyer_client, after=cursor), open_stream(buyer_client, last_event_id=cursor or None)):
        assert stream.status_code == 200
        message = stream.messages(1)[0]
        assert (message["event"] if first == "resync" else shown([message])[0]) == first


@pytest.mark.parametrize("cursor", [None, ""])
def test_a_stream_without_a_cursor_starts_now_instead_of_replaying_the_log(buyer, buyer_client, open_stream, cursor):
    """A fresh stream names no position: replaying from 0 would render up to STREAM_REPLAY_LIMIT
    events on every open. It starts at the user's last seq; what comes next is live."""
    for n in (1, 2, 3):
        note([buyer], n)
    stream = open_stream(buyer_client, after=cursor)
    assert stream.quiet_for(0.2) == []  # nothing replayed
    note([buyer], 4)
    assert shown(stream.messages(1)) == [("4", "4")]


def test_snapshot_fragments_follow_the_replay_on_every_open(buyer, buyer_client, open_stream):
    realtime.register_snapshot(lambda user_id: f'<span id="unread-badge" hx-swap-oob="true">{user_id}</span>')
    realtime.register_snapshot(lambda user_id: None)
    note([buyer], 1)
    stream = open_stream(buyer_client, after=0)
    replayed, snapshot = stream.messages(2)
    assert shown([replayed]) == [("1", "1")]
    assert snapshot == {"id": None, "event": None, "data": f'<span id="unread-badge" hx-swap-oob="true">{buyer.id}</span>'}


def test_heartbeats_then_the_stream_ends_after_its_lifetime(app, buyer_client, open_stream):
    app.config["STREAM_LIFETIME_SECONDS"] = 0.3
    started = time.monotonic()
    items = open_stream(buyer_client).read_to_end()
    assert 0.3 <= time.monotonic() - started < 1.5
    assert items[0] == {"comment": "open"}
    assert {"comment": "ping"} in items[1:]


@ON_EVERY_BROKER
def test_end_streams_ends_every_stream_of_that_user_and_no_other(buyer, seller, buyer_client, make_client, open_stream):
    seller_client = make_client()
    seller_client.login(seller)
    tabs = [open_stream(buyer_client), open_stream(buyer_client)]
    other = open_stream(seller_client, after=0)
    realtime.end_streams(buyer.id)
    for tab in tabs:
        tab.read_to_end()
        assert tab.ended
    note([seller], "still-live")
    assert shown(other.messages(1)) == [("1", "still-live")]


def test_an_exiting_process_ends_its_streams_and_each_one_opened_after_its_replay(app, buyer, buyer_client, open_stream):
    """`realtime.exiting` (gunicorn's TERM): the streams end now, the others' clients reconnect
    elsewhere; a reconnect that still lands here gets what it missed, then ends too."""
    note([buyer], "before")
    open_ = open_stream(buyer_client, after=1)
    realtime.exiting(app)
    open_.read_to_end()
    assert open_.ended
    note([buyer], "missed")
    late = open_stream(buyer_client, last_event_id=1)
    assert shown(m for m in late.read_to_end() if "data" in m) == [("2", "missed")]
    assert late.ended


@ON_EVERY_BROKER
def test_a_stranger_never_receives_another_users_events(buyer, seller, buyer_client, make_client, open_stream):
    note([buyer], "private-before")
    stranger = make_client()
    stranger.login(seller)
    stream = open_stream(stranger, after=0)
    note([buyer], "private-live")
    realtime.ephemeral([buyer.id], '<i id="typing">…</i>')
    note([seller], "theirs")
    assert shown(stream.read_until(lambda m: m.get("id"))) == [("1", "theirs")]


@ON_EVERY_BROKER
def test_ephemeral_events_have_no_id_and_are_never_replayed(buyer, buyer_client, open_stream):
    note([buyer], 1)
    stream = open_stream(buyer_client, after=1)
    realtime.ephemeral([buyer.id], '<i id="typing">Ravi is typing</i>')
    realtime.ephemeral([buyer.id], "", event="ping-presence")
    assert stream.messages(2) == [
        {"id": None, "event": None, "data": '<i id="typing">Ravi is typing</i>'},
        {"id": None, "event": "ping-presence", "data": None},
    ]
    stream.close()
    assert open_stream(buyer_client, last_event_id=1).quiet_for(0.2) == []


def test_an_event_rendered_as_nothing_still_moves_the_cursor(buyer, buyer_client, open_stream):
    realtime.register_renderer("test.silent", lambda event: None)
    realtime.record([buyer.id], "test.silent", {})
    db.session.commit()
    stream = open_stream(buyer_client, after=0)
    assert stream.messages(1) == [{"id": "1", "event": None, "data": None}]
    realtime.record([buyer.id], "test.silent", {})
    db.session.commit()
    realtime.publish_committed()
    assert stream.messages(1) == [{"id": "2", "event": None, "data": None}]


def test_a_slow_client_loses_its_stream_and_catches_up_on_reconnect(app, buyer, buyer_client, open_stream):
    app.config["STREAM_QUEUE_SIZE"] = 2
    stream = open_stream(buyer_client, after=0)
    for n in range(1, 6):
        note([buyer], n)  # nobody reads: the stream's inbox overflows
    assert shown(stream.read_to_end()) == []
    again = open_stream(buyer_client, after=0)
    assert [n for _, n in shown(again.messages(5))] == ["1", "2", "3", "4", "5"]


def test_hostile_html_in_an_event_stays_one_message(buyer, buyer_client, open_stream):
    hostile = '<p id="note-x">hi</p>\n\ndata: <p>forged</p>\r\nid: 999\r\revent: resync\n\0'
    realtime.register_renderer("test.raw", lambda event: event.data["html"])
    realtime.record([buyer.id], "test.raw", {"html": hostile})
    db.session.commit()
    stream = open_stream(buyer_client, after=0)
    realtime.record([buyer.id], "test.raw", {"html": hostile})
    db.session.commit()
    realtime.publish_committed()
    expected = hostile.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
    assert stream.messages(2) == [{"id": "1", "event": None, "data": expected},
                                  {"id": "2", "event": None, "data": expected}]


def delivery_cursor(user):
    from rentpe.realtime.models import StreamCounter

    db.session.expire_all()
    return db.session.get(StreamCounter, user.id).delivered_seq


def test_the_delivery_cursor_follows_what_streams_wrote_in_rounds(app, buyer, seller, buyer_client, make_client,
                                                                  open_stream):
    app.config["STREAM_CHECK_SECONDS"] = 0.2
    calls = []

    def delivered(events):
        calls.append(sorted((e.user_id, e.seq, e.data["n"]) for e in events))
        realtime.record([seller.id], "test.note", {"n": f"receipt-{events[-1].seq}"})  # hooks may publish
        db.session.commit()

    realtime.register_delivery_hook("test.note", delivered)
    seller_client = make_client()
    seller_client.login(seller)
    seller_stream = open_stream(seller_client, after=0)
    note([buyer], "replayed")
    note([buyer], "replayed-too")
    stream = open_stream(buyer_client, after=1)  # the client had seq 1 already
    assert shown(stream.messages(1)) == [("2", "replayed-too")]
    note([buyer], "live")
    assert shown(stream.messages(1)) == [("3", "live")]
    stream.next()  # the write of "live" has returned
    assert shown(seller_stream.read_until(lambda m: "receipt-3" in (m.get("data") or ""), timeout=2))[-1][1] == "receipt-3"
    assert delivery_cursor(buyer) == 3
    # Each event passed once, in order, in the watch's rounds; seq 1 came through an earlier stream.
    assert [event for call in calls for event in call] == [(buyer.id, 2, "replayed-too"), (buyer.id, 3, "live")]


def test_the_last_writes_of_a_closed_stream_still_count_as_delivered(app, buyer, buyer_client, open_stream):
    app.config["STREAM_CHECK_SECONDS"] = 0.3
    delivered = []
    realtime.register_delivery_hook("test.note", lambda events: delivered.extend(e.seq for e in events))
    stream = open_stream(buyer_client, after=0)
    note([buyer], "just-in-time")
    assert shown(stream.messages(1)) == [("1", "just-in-time")]
    stream.next()  # the write has returned (a heartbeat follows it)
    stream.close()  # before the watch's next round
    deadline = time.monotonic() + 2
    while not delivered and time.monotonic() < deadline:
        time.sleep(0.05)
    assert delivered == [1] and delivery_cursor(buyer) == 1


def test_one_round_records_every_streams_deliveries_in_one_statement(app, buyer, seller, moderator, make_client,
                                                                     open_stream):
    from sqlalchemy import event as sa_event

    app.config["STREAM_CHECK_SECONDS"] = 0.3
    realtime.register_delivery_hook("test.note", lambda events: None)
    people = [buyer, seller, moderator]
    streams = []
    for person in people:
        person_client = make_client()
        person_client.login(person)
        streams.append(open_stream(person_client, after=0))
    updates = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE STREAM_COUNTERS"):
            assert not executemany  # (psycopg2 runs an executemany as one round trip per row)
            # The (user, seq) pairs it covers (zeros pad the list): named, or in order (SQLite).
            users = ([value for name, value in parameters.items() if name.startswith("u")]
                     if isinstance(parameters, dict) else parameters[0::2])
            updates.append(len([user for user in users if user]))

    sa_event.listen(db.engine, "before_cursor_execute", seen)
    try:
        note(people, "to-all")
        for stream in streams:
            assert shown(stream.messages(1)) == [("1", "to-all")]
            stream.next()  # the write has returned
        deadline = time.monotonic() + 2
        while not all(delivery_cursor(p) == 1 for p in people) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", seen)
    assert all(delivery_cursor(p) == 1 for p in people)
    assert updates == [3] or (len(updates) > 1 and sum(updates) >= 3)  # one statement a round, all streams in it
    assert len(updates) <= 2


def test_a_stream_writes_nothing_to_the_database_per_event(app, buyer, buyer_client, open_stream):
    from sqlalchemy import event as sa_event

    app.config["STREAM_CHECK_SECONDS"] = 60  # no round of the watch during the test
    writes = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith("SELECT"):
            writes.append(statement)

    stream = open_stream(buyer_client, after=0)
    sa_event.listen(db.engine, "before_cursor_execute", seen)
    try:
        for n in range(3):
            with app.app_context():
                realtime.record([buyer.id], "test.note", {"n": n})
                db.session.commit()
                writes.clear()  # the writer's own statements
                realtime.publish_committed()
            assert shown(stream.messages(1)) == [(str(n + 1), str(n))]
        stream.quiet_for(0.2)
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", seen)
    assert writes == []


def test_the_page_renders_a_cursor_read_before_its_data(app, buyer, client):
    @app.get("/test-page")
    def page_that_writes():
        # Stands for an event committed while the page reads its data.
        realtime.record([current_user.id], "test.note", {"n": 2})
        db.session.commit()
        return render_template_string('{% extends "base.html" %}')

    note([buyer], 1)
    client.login(buyer)
    html = client.get("/test-page").get_data(as_text=True)
    assert '<div id="sse" hidden data-stream="/events?after=1"></div>' in html
    assert "<script>" not in html


def test_a_failing_renderer_or_hook_never_breaks_the_stream(buyer, buyer_client, open_stream, caplog):
    def broken(*args):
        db.session.execute(db.text("SELECT * FROM no_such_table"))

    realtime.register_renderer("test.broken", broken)
    realtime.register_snapshot(broken)
    realtime.register_delivery_hook("test.note", broken)
    realtime.register_presence_hook(broken)
    realtime.record([buyer.id], "test.broken", {})
    db.session.commit()
    stream = open_stream(buyer_client, after=0)
    assert stream.messages(1) == [{"id": "1", "event": None, "data": None}]
    note([buyer], 2)
    note([buyer], 3)
    assert shown(stream.messages(2)) == [("2", "2"), ("3", "3")]
    assert "renderer for 'test.broken' failed" in caplog.text


# One account can't hold every stream ----------------------------------------------------------


@pytest.fixture
def two_streams_each(app):
    app.extensions["realtime"].config["STREAM_MAX_PER_USER"] = 2


def test_past_the_per_user_cap_the_oldest_stream_ends_with_a_replaced_event(
        two_streams_each, buyer, seller, make_client, open_stream):
    tabs = [make_client() for _ in range(3)]
    for tab in tabs:
        tab.login(buyer)
    other = make_client()
    other.login(seller)
    theirs = open_stream(other, after=0)
    first, second = open_stream(tabs[0], after=0), open_stream(tabs[1], after=0)
    assert first.next() == {"comment": "open"} and second.next() == {"comment": "open"}

    third = open_stream(tabs[2], after=0)

    assert third.status_code == 200
    assert first.messages(1) == [{"id": None, "event": "replaced",
                                  "data": "Live updates stopped here: too many tabs are open. Reload to resume."}]
    first.read_to_end()
    assert first.ended
    note([buyer, seller], 1)
    assert shown(second.messages(1)) == [("1", "1")] and shown(third.messages(1)) == [("1", "1")]
    assert shown(theirs.messages(1)) == [("1", "1")]  # another person's streams don't count


@pytest.mark.parametrize("app_overrides", [{"RATELIMIT_ENABLED": True}])
def test_opening_streams_is_rate_limited_per_user(buyer, buyer_client, open_stream):
    from rentpe import ratelimits

    allowance = min(item.amount for item in limits.parse_many(ratelimits.STREAM_OPENS_PER_USER.value))
    for _ in range(allowance):
        stream = open_stream(buyer_client, after=0)
        assert stream.status_code == 200
        stream.close()
    refused = open_stream(buyer_client, after=0)
    assert refused.status_code == 429 and "Retry-After" in refused.headers
