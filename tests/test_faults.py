"""Faults under load, end to end: gunicorn (2 gevent workers) on PostgreSQL and a redis-server of
this test's own, driven by the bench load generator over HTTP. Whatever breaks, every message
reaches its recipient's stream once, in its conversation's order (bench/faults.py has the
scenarios; bench/README.md the long runs). Redis faults strike while every user is sent one last
message with nothing after it; each must reach its open stream within `BOUND_SECONDS` of the
fault being over (`late`), not after a long drain."""
import pytest

from bench.faults import Setup, intact, run_scenario

pytestmark = pytest.mark.slow

STREAMS, RATE, DURATION = 40, 10, 6


@pytest.fixture(scope="module")
def setup():
    setup = Setup(STREAMS)
    yield setup
    setup.close()


def run(setup, name):
    report = run_scenario(setup, name, STREAMS, RATE, DURATION)
    assert report["sent"] >= RATE * DURATION, report
    assert intact(report), report
    return report


def test_a_worker_killed_with_streams_open_loses_nothing(setup):
    report = run(setup, "kill-worker")
    assert report["reconnects"] > 0  # its streams came back (to the survivor or the new worker)


def last_round_intact(report):
    assert len(report["last_round"]) == STREAMS  # every user got a last message …
    assert report["late"] == 0, report["last_round"]  # … within the bound


@pytest.mark.parametrize("attempt", range(3))
def test_redis_restarted_during_the_last_messages_leaves_none_behind(setup, attempt):
    report = run(setup, "restart-redis")
    last_round_intact(report)
    assert report["reconnects"] == 0  # the streams stayed open through the restart


def test_redis_down_while_sending_stores_and_acks_and_delivers_in_time(setup):
    report = run(setup, "redis-down")
    last_round_intact(report)
    assert report["post_errors"] == {}  # every send answered 200 with its own message
    assert report["stream_errors"] == {}  # no stream was refused or ended for want of Redis


def test_the_hubs_pubsub_connections_cut_lose_no_last_message(setup):
    last_round_intact(run(setup, "pubsub-cut"))


def test_publishes_refused_while_subscriptions_survive_lose_no_last_message(setup):
    report = run(setup, "publish-fails")
    last_round_intact(report)
    assert report["post_errors"] == {}


def test_streams_cut_mid_frame_resume_without_gaps_or_repeats(setup):
    report = run(setup, "cut-streams")
    assert report["cuts"] > STREAMS


def test_a_message_between_page_render_and_stream_connect_is_replayed(setup):
    report = run(setup, "race")
    assert report["sent"] == RATE * DURATION + STREAMS // 2


def test_duplicate_submits_store_and_deliver_one_message(setup):
    report = run(setup, "duplicate-submits")
    assert report["post_errors"] == {}  # both copies answered with the same message
