"""Metrics: the numbers move as the app works. In this process (both databases, both brokers) and
scraped from gunicorn's master with two workers under a small load (multiprocess mode)."""
import json
import time
import urllib.error
import urllib.request

from pathlib import Path

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rentpe import metrics, realtime

from .chat_helpers import contact, conversation_id_from
from .stream_helpers import Stream, broker, broker_overrides  # noqa: F401 (fixtures)


def samples(text):
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(text, name, **labels):
    """The sum of the samples named `name` whose labels include `labels` (0 when none)."""
    return sum(s.value for s in samples(text) if s.name == name and labels.items() <= s.labels.items())


def scrape():
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    return body.decode()


def eventually(condition, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class Moves:
    """Each metric's change since it was made."""

    def __init__(self):
        self.before = scrape()

    def __call__(self, name, **labels):
        return value(scrape(), name, **labels) - value(self.before, name, **labels)


@pytest.fixture
def app_overrides(broker):
    return {**broker_overrides(broker), "RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://"}


@pytest.fixture
def shut(app):
    yield
    realtime.shutdown(app)


def test_sends_streams_replays_and_refusals_are_counted(app, shut, buyer_client, seller_client, listing):
    moves = Moves()
    stream = Stream(seller_client)
    assert stream.contains(": open")
    assert moves("rentpe_streams_open") == 1 and moves("rentpe_stream_opens_total") == 1
    conversation_id = conversation_id_from(contact(buyer_client, listing))
    for n in range(3):
        response = buyer_client.post(f"/conversations/{conversation_id}/messages",
                                     {"body": f"hello {n}", "client_key": f"metrics-key-{n:06d}"}, htmx=True)
        assert response.status_code == 200
    assert stream.contains("hello 2")
    stream.read_for(0.2)  # the server took the write: the stream resumed past it
    assert moves("rentpe_send_seconds_count") == 4  # the first message and three more
    assert 0 < moves("rentpe_send_seconds_sum") < 4 * 5
    assert moves("rentpe_events_recorded_total") >= 2 * 4  # at least one row per participant each
    # (The watch records delivery receipts in its own thread: its publish may be a moment behind.)
    assert eventually(lambda: moves("rentpe_events_published_total") == moves("rentpe_events_recorded_total"))
    assert moves("rentpe_events_delivered_total") >= 4
    assert moves("rentpe_publish_failures_total") == 0
    stream.close()
    assert eventually(lambda: moves("rentpe_streams_open") == 0)
    assert moves("rentpe_stream_ends_total", reason="client") == 1

    # A reconnect replays; a cursor from a database restored to an older state resyncs.
    for cursor in (1, 10**6):
        again = Stream(seller_client, headers={"Last-Event-ID": str(cursor)})
        assert again.contains("id: ")
        again.close()
    assert moves("rentpe_replays_total") == 2
    assert moves("rentpe_events_replayed_total") >= 3  # (seq 2 on: the four messages, receipts...)
    assert moves("rentpe_resyncs_total", cause="ahead") == 1

    # Typing notices past their limit (60 a minute) are refused, and counted by limit.
    for _ in range(62):
        buyer_client.post(f"/conversations/{conversation_id}/typing", htmx=True)
    assert moves("rentpe_rate_limit_refusals_total", limit="typing-updates") == 2


def test_the_pool_and_the_collector_are_watched(app, client):
    import gc

    moves = Moves()
    gc.collect(1)
    gc.collect(2)
    client.get("/")
    assert moves("rentpe_gc_pause_seconds_count", generation="1") == 1
    assert moves("rentpe_gc_pause_seconds_count", generation="2") == 1
    from rentpe.extensions import db

    pool = db.engine.pool
    idle = pool.checkedout()
    assert value(scrape(), "rentpe_db_pool_checked_out") == idle
    with db.engine.connect():
        assert value(scrape(), "rentpe_db_pool_checked_out") == idle + 1 == pool.checkedout()
    # The sampler writes it too (as in gunicorn's workers, where nothing scrapes the process).
    time.sleep(metrics.SAMPLE_SECONDS * 1.5)
    assert value(generate_latest(REGISTRY).decode(), "rentpe_db_pool_checked_out") == idle
    assert value(scrape(), "rentpe_db_pool_overflow") == max(pool.overflow(), 0)


@pytest.mark.slow
def test_gunicorn_serves_every_workers_metrics_on_its_own_port_under_load(tmp_path):
    from bench.faults import PASSWORD, Setup, run_loadgen
    from bench.servers import free_port

    streams = 10
    setup = Setup(streams)
    try:
        port = free_port()
        setup.env.update(METRICS_BIND=f"127.0.0.1:{port}", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
                         LOG_FORMAT="json")
        server = setup.server(workers=2)
        url = f"http://127.0.0.1:{port}/metrics"

        def get(address):
            with urllib.request.urlopen(address, timeout=5) as response:
                return response.read().decode()

        before = get(url)
        during = {}

        def while_held():
            time.sleep(1.5)
            during["text"] = get(url)

        report = run_loadgen(server, setup.fixture, streams, rate=10, duration=3, drain=10,
                             extra=("--hold", "3"), on_phase={"hold": while_held})
        deadline = time.monotonic() + 10  # a stream its client left ends at its next write (heartbeat)
        while value(after := get(url), "rentpe_streams_open") and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = set(server.worker_pids())
        server_log = Path(server.log_path).read_text()
        with pytest.raises(urllib.error.HTTPError) as refused:  # the public port never answers /metrics
            get(server.base + "/metrics")
        refused.value.close()
        assert refused.value.code == 404
    finally:
        setup.close()

    assert report["sent"] >= 20, report
    # Per worker: one series per live worker pid, summing to the streams the generator held open.
    open_series = [s for s in samples(during["text"]) if s.name == "rentpe_streams_open"]
    assert {int(s.labels["pid"]) for s in open_series} == workers
    assert sum(s.value for s in open_series) == streams
    assert value(after, "rentpe_streams_open") == 0
    assert value(after, "rentpe_stream_opens_total") - value(before, "rentpe_stream_opens_total") >= streams
    assert value(after, "rentpe_stream_ends_total") >= streams
    sent = value(after, "rentpe_send_seconds_count") - value(before, "rentpe_send_seconds_count")
    assert sent == report["sent"], (sent, report)
    recorded = value(after, "rentpe_events_recorded_total")
    assert recorded >= 2 * sent
    assert value(after, "rentpe_events_published_total") == recorded
    assert value(after, "rentpe_events_delivered_total") >= sent
    assert value(after, "rentpe_replays_total") >= 0
    # The workers' access lines: one JSON object per request, with the user, never the password.
    access = [json.loads(line) for line in server_log.splitlines() if line.startswith('{"')]
    sends = [a for a in access if a["method"] == "POST" and a["path"].endswith("/messages") and a["status"] == 200]
    assert len(sends) >= report["sent"] and all(isinstance(a["user_id"], int) for a in sends)
    assert PASSWORD not in server_log

