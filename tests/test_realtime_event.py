"""The SSE wire format: whatever the HTML holds, it travels as one message and arrives intact."""
import pytest

from rentpe.realtime.event import (
    END, Durable, Ephemeral, End, data_lines, durable_payload, ephemeral_payload, frame, html_frame, parse_payload,
)
from tests.conftest import EventStream


class _Response:
    """Just enough of a streamed response for EventStream to parse fixed text."""

    status_code = 200
    headers = {}

    def __init__(self, text):
        self.text = text

    def iter_encoded(self):
        yield self.text.encode()

    def close(self):
        pass


def parse(text):
    stream = EventStream(_Response(text))
    return stream.read_to_end()


def test_every_line_of_the_html_gets_its_own_data_prefix():
    assert html_frame('<li id="m-1">\n  hi\n</li>', id=7) == 'data: <li id="m-1">\ndata:   hi\ndata: </li>\nid: 7\n\n'


def test_several_parts_become_several_frames_and_only_the_last_carries_the_id():
    text = html_frame(["<p>rows</p>", "<p>message</p>"], id=8)
    assert text == "data: <p>rows</p>\n\ndata: <p>message</p>\nid: 8\n\n"
    assert parse(text) == [{"id": None, "event": None, "data": "<p>rows</p>"},
                           {"id": "8", "event": None, "data": "<p>message</p>"}]


@pytest.mark.parametrize("hostile", [
    "<p>a</p>\n\ndata: <p>injected</p>\n\nid: 99",
    "<p>a</p>\r\rid: 99\r\revent: resync\r\r",
    "<p>a</p>\r\n\r\ndata: x\r\n",
    "<p>a\0b</p>\n\n",
    "\n\n\n",
])
def test_hostile_html_stays_one_message_with_its_own_id(hostile):
    messages = parse(html_frame(hostile, id=5) + html_frame("<p>next</p>", id=6))
    assert [(m["id"], m["event"]) for m in messages] == [("5", None), ("6", None)]
    expected = hostile.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
    assert messages[0]["data"] == expected
    assert messages[1]["data"] == "<p>next</p>"


def test_ephemeral_frames_have_no_id_and_named_events_their_name():
    assert html_frame("<i>typing</i>") == "data: <i>typing</i>\n\n"
    assert parse(html_frame("<i>typing</i>", event="typing")) == [{"id": None, "event": "typing", "data": "<i>typing</i>"}]


@pytest.mark.parametrize("name", ["", "a b", "x\ny", "resync\n\ndata: x", "1abc", "é"])
def test_event_names_that_could_break_the_frame_are_refused(name):
    with pytest.raises(ValueError):
        frame("", event=name)


def test_an_event_that_renders_nothing_still_moves_the_cursor():
    assert frame(data_lines(None), id=9) == "id: 9\n\n"
    assert parse("id: 9\n\n") == [{"id": "9", "event": None, "data": None}]
    assert frame(data_lines(None)) == ""


def test_broker_payloads_round_trip():
    body = data_lines("<p>x</p>\n<p>y</p>")
    assert parse_payload(durable_payload(12, "chat.message", body)) == Durable(12, "chat.message", body)
    assert parse_payload(ephemeral_payload(html_frame("<i>…</i>"))) == Ephemeral("data: <i>…</i>\n\n")
    assert isinstance(parse_payload(END), End)
    with pytest.raises(ValueError):
        parse_payload(b"abc\ndata: x")


def test_a_shared_fragment_filled_for_one_recipient_frames_like_its_html():
    from markupsafe import Markup

    from rentpe.realtime import Shared, hole

    shared = Shared(Markup("<li>\r\nline one\n") + hole("badge") + Markup("\n<p>") + hole("receipt") + Markup("</p>\0"))
    assert shared.names == ["badge", "receipt"]
    for pieces in ({"badge": "<b>3</b>", "receipt": "Seen"}, {"badge": "", "receipt": "two\nlines\r\0"}):
        filled = shared.fill(pieces)
        assert filled.lines == data_lines(str(filled))  # computed once, as data_lines would
        assert "\n" not in str(filled).split("line one\n")[1].split("\n<p>")[0]  # a piece stays one line
    plain = Shared("<p>no holes</p>").fill({})
    assert str(plain) == "<p>no holes</p>" and plain.lines == "data: <p>no holes</p>\n"
    memo, part = {}, "<p>shared\nby all</p>"
    assert data_lines([part, part], memo) == data_lines([part, part]) and len(memo) == 1


def test_a_fanout_payload_gives_each_recipient_the_lines_of_its_own_html():
    from markupsafe import Markup

    from rentpe.realtime import Shared, hole
    from rentpe.realtime.event import fanout_payload, parse_fanout

    shared = Shared(Markup("<li>\r\nline one\n") + hole("badge") + Markup("\n<p>") + hole("receipt") + Markup("</p>\0"))
    typing = "<span id='t'>stopped typing</span>"  # one part object handed to several recipients
    recipients = [
        (1, 10, [shared.fill({"badge": "<b>three</b>", "receipt": "Seen"}), typing]),
        (2, 4, [shared.fill({"badge": "<b>three</b>", "receipt": "two\nlines\r\0"}), typing]),
        (3, 7, shared.fill({"badge": "", "receipt": ""})),
        (4, 1, None),  # rendered nothing: an id-only frame
        (5, 2, ["", Shared("<p>no holes</p>").fill({}), "<i>\nown\n</i>"]),
    ]
    payload = fanout_payload("chat.board_message", recipients)
    fanout = parse_fanout(payload)
    assert fanout.user_ids() == [1, 2, 3, 4, 5]
    assert fanout.durables({1, 2, 3, 4, 5}) == [
        (user_id, Durable(seq, "chat.board_message", data_lines(html))) for user_id, seq, html in recipients]
    assert [user_id for user_id, _ in fanout.durables({2, 5, 99})] == [2, 5]
    # What recipients share travels once: the fragment's text, the typing part and the same piece.
    assert payload.count(b"line one") == 1 and payload.count(b"stopped typing") == 1
    assert payload.count(b"<b>three</b>") == 1
    for broken in (b"*\n{", b"*\n[]", b'*\n{"k": "x"}', b"1 x\ndata: y"):
        with pytest.raises(ValueError):
            parse_fanout(broken)
