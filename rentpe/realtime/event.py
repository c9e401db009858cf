"""The SSE wire format, and the payloads the brokers carry.

A frame is `event:` (named events only), `id:` (durable events only), one `data: ` line per line
of the HTML, then a blank line. The payload is split on exactly the line breaks an SSE parser
splits on (CRLF, CR, LF), so no character in the HTML can end a field or start a new frame; the
client joins the `data` lines back with LF. NUL becomes U+FFFD, which is what the HTML parser
would turn it into anyway.

Broker payloads are bytes whose first line says what follows:

    b"<seq> <kind>\\n<data lines>"   durable: the stream adds `id:` (see `stream.py`)
    b"~\\n<frame>"                    ephemeral: a complete frame without `id:`
    b"!end\\n"                        control: end every stream of that user
"""
import re
from dataclasses import dataclass

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")

OPEN = ": open\n\n"
PING = ": ping\n\n"

EPHEMERAL_MARK = b"~"
END = b"!end\n"


def data_lines(html):
    """`data: ` lines for `html` (each ending in LF, no blank line); empty for None or "".

    A list of HTML parts becomes several frames (parts separated by a blank line); `frame()` puts
    the `id:` after the last one, so the client's cursor moves only once every part arrived.
    """
    if isinstance(html, (list, tuple)):
        return "\n".join(lines for lines in (data_lines(part) for part in html) if lines)
    if not html:
        return ""
    html = html.replace("\0", "\ufffd")
    return "".join(f"data: {line}\n" for line in _LINE_BREAK.split(html))


def check_event_name(name):
    if not isinstance(name, str) or not _EVENT_NAME.fullmatch(name):
        raise ValueError(f"not a valid SSE event name: {name!r}")
    return name


def frame(body="", *, id=None, event=None):
    """One complete frame from ready-made `data_lines` (plus optional `id:` and `event:`).
    Returns "" when there is nothing to send: a frame with no id, no event and no data."""
    head = f"event: {check_event_name(event)}\n" if event is not None else ""
    # The id goes last: when `body` holds several frames, only the final one carries it.
    tail = f"id: {int(id)}\n" if id is not None else ""
    if not head and not tail and not body:
        return ""
    return f"{head}{body}{tail}\n"


def html_frame(html, *, id=None, event=None):
    return frame(data_lines(html), id=id, event=event)


# Broker payloads -------------------------------------------------------------------------------

def durable_payload(seq, kind, body):
    return f"{int(seq)} {kind}\n{body}".encode()


def ephemeral_payload(frame_text):
    return EPHEMERAL_MARK + b"\n" + frame_text.encode()


@dataclass(frozen=True)
class Durable:
    seq: int
    kind: str
    body: str


@dataclass(frozen=True)
class Ephemeral:
    text: str


class End:
    """Control message: end the stream."""


def parse_payload(payload):
    """Durable, Ephemeral or End for a broker payload; ValueError for anything else."""
    head, _, rest = payload.partition(b"\n")
    if head == b"!end":
        return End()
    if head == EPHEMERAL_MARK:
        return Ephemeral(rest.decode())
    seq, _, kind = head.partition(b" ")
    if not seq.isdigit() or not kind or b" " in kind:
        raise ValueError(f"not a stream payload: {payload[:40]!r}")
    return Durable(int(seq), kind.decode(), rest.decode())
