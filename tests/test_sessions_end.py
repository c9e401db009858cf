"""A session that ends takes its live streams with it: log-out, and "log out everywhere" (the
suspension path), on both brokers."""
import pytest

from rentpe.accounts.services import end_all_sessions


@pytest.fixture
def app_overrides(realtime_overrides):
    return realtime_overrides


def test_logging_out_ends_the_stream_and_a_reconnect_is_refused(client, buyer, open_stream):
    client.login(buyer)
    stream = open_stream(client, after=0)
    assert stream.next() == {"comment": "open"}

    client.logout()

    stream.read_to_end()
    assert stream.ended
    assert open_stream(client).status_code == 401


def test_ending_all_sessions_ends_every_stream_of_that_user_only(make_client, buyer, seller, open_stream):
    phone, laptop, other = make_client(), make_client(), make_client()
    phone.login(buyer)
    laptop.login(buyer)
    other.login(seller)
    streams = [open_stream(phone, after=0), open_stream(laptop, after=0)]
    bystander = open_stream(other, after=0)

    end_all_sessions(buyer)

    for stream in streams:
        stream.read_to_end()
        assert stream.ended
    assert open_stream(phone).status_code == 401 and open_stream(laptop).status_code == 401
    assert bystander.quiet_for(0.3) == [] and not bystander.ended
