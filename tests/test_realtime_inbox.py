"""A stream's inbox (`hub.Subscription`): what a producer puts, the stream gets, in order, once,
whatever the timing of its waits; an idle wait times out; `end` wakes a waiting stream."""
import queue
import random
import threading
import time

import pytest

from rentpe.realtime.hub import Subscription


def test_an_idle_wait_times_out_and_the_next_put_is_got():
    inbox = Subscription(1, maxsize=10)
    started = time.monotonic()
    with pytest.raises(queue.Empty):
        inbox.get(0.05)
    assert 0.04 <= time.monotonic() - started < 1
    inbox.put("a")
    assert inbox.get(1) == "a"
    with pytest.raises(queue.Empty):
        inbox.get(0)


def test_a_put_wakes_a_waiting_stream_at_once():
    inbox = Subscription(1, maxsize=10)
    threading.Timer(0.05, inbox.put, args=("late",)).start()
    started = time.monotonic()
    assert inbox.get(5) == "late"
    assert time.monotonic() - started < 1


def test_end_wakes_a_waiting_stream_with_none():
    inbox = Subscription(1, maxsize=10)
    inbox.put("dropped")
    threading.Timer(0.05, inbox.end, args=("closed",)).start()
    assert inbox.get(5) == "dropped"
    assert inbox.get(5) is None
    assert inbox.put("after") is True and inbox.ended == "closed"


@pytest.mark.parametrize("seed", range(5))
def test_puts_racing_with_timeouts_arrive_once_and_in_order(seed):
    """Waits that time out just as a put lands (the wake lock released after the timeout) must
    neither lose the payload nor leave the lock open so that a later wait returns at once."""
    rng = random.Random(seed)
    inbox = Subscription(1, maxsize=100000)
    count = 3000
    pauses = [rng.choice((0, 0, 0, 0.0001, 0.0003)) for _ in range(count)]

    def produce():
        for i, pause in enumerate(pauses):
            if pause:
                time.sleep(pause)
            assert inbox.put(i)

    producer = threading.Thread(target=produce)
    producer.start()
    got, timeouts = [], 0
    deadline = time.monotonic() + 30
    while len(got) < count and time.monotonic() < deadline:
        try:
            got.append(inbox.get(rng.choice((0, 0.00005, 0.0002, 0.001))))
        except queue.Empty:
            timeouts += 1
    producer.join()
    assert got == list(range(count))
    assert timeouts > 0  # the race was exercised
    # Nothing left, and the wake lock is closed again: an empty wait waits.
    started = time.monotonic()
    with pytest.raises(queue.Empty):
        inbox.get(0.05)
    assert time.monotonic() - started >= 0.04
