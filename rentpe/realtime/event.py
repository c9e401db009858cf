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
    b"*\\n<json>"                      fan-out: one kind's durable events of many users at once

A fan-out payload is published once for all the recipients of one `record` (a board message to
500 members), on a channel every process listens to, instead of once per recipient: what they
share (the fragment rendered once, as SSE lines) travels once, and per recipient only their seq
and their pieces. Its JSON is `{"k": kind, "s": [shared text…], "r": [[user id, seq, [item…]]…]}`,
where a recipient's `data:` lines are the join of their items, a number standing for `s[number]`.
"""
import json
import re
import secrets
from dataclasses import dataclass

from markupsafe import Markup

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")

OPEN = ": open\n\n"
PING = ": ping\n\n"

EPHEMERAL_MARK = b"~"
END = b"!end\n"


def data_lines(html, memo=None):
    """`data: ` lines for `html` (each ending in LF, no blank line); empty for None or "".

    A list of HTML parts becomes several frames (parts separated by a blank line); `frame()` puts
    the `id:` after the last one, so the client's cursor moves only once every part arrived.
    A part filled from a `Shared` fragment brings its lines along. `memo` (a dict) lines each
    distinct part object once: a publish hands the same part to many recipients.
    """
    if isinstance(html, (list, tuple)):
        return "\n".join(lines for lines in (data_lines(part, memo) for part in html) if lines)
    if not html:
        return ""
    lines = getattr(html, "lines", None)
    if lines is not None:
        return lines
    if memo is not None:
        known = memo.get(id(html))
        if known is not None and known[0] is html:
            return known[1]
    text = html.replace("\0", "\ufffd")
    lines = "".join(f"data: {line}\n" for line in _LINE_BREAK.split(text))
    if memo is not None:
        memo[id(html)] = (html, lines)  # holding the part keeps its id from being reused
    return lines


# Holes in a fragment rendered once for many recipients. Unguessable, so no text a user typed
# (escaped anyway) can pass for one; without line breaks, so a hole survives `data_lines`.
_TOKEN = secrets.token_hex(8)
_HOLE = re.compile(f"\x00hole:([a-z_]+):{_TOKEN}\x00")
_MARK = f"\ufdd0{_TOKEN}\ufdd0"


def hole(name):
    """A place for one recipient's piece in a fragment rendered once for all of them."""
    return Markup(f"\x00hole:{name}:{_TOKEN}\x00")


class Filled(str):
    """A `Shared` fragment with one recipient's pieces in it: the HTML, its `data:` lines, and
    what they are made of (the `Shared` and the pieces' text), which a fan-out sends apart."""

    __slots__ = ("lines", "shared", "values")


class Shared:
    """HTML rendered once for every recipient, with named holes (`hole`) for each one's pieces.
    The text around the holes, and its `data:` lines, are computed once; filling in a recipient's
    pieces is a join. Pieces are one line of HTML each."""

    __slots__ = ("parts", "lined")

    def __init__(self, html):
        self.parts = _HOLE.split(str(html))  # text, hole name, text, hole name, …, text
        # The same as `data:` lines: the holes become marks that `data_lines` keeps (it turns NUL
        # into U+FFFD), then are split on again.
        marked = "".join(part if i % 2 == 0 else _MARK for i, part in enumerate(self.parts))
        self.lined = data_lines(marked).split(_MARK)
        for i in range(1, len(self.parts), 2):
            self.lined.insert(i, self.parts[i])

    @property
    def names(self):
        return self.parts[1::2]

    def fill(self, pieces):
        """The fragment with these `pieces` ({hole name: HTML}) in its holes."""
        if len(self.parts) == 1:
            filled = Filled(self.parts[0])
            filled.lines, filled.shared, filled.values = self.lined[0], self, ()
            return filled
        values = [_one_line(pieces[name]) for name in self.parts[1::2]]
        html, lines = list(self.parts), list(self.lined)
        html[1::2] = lines[1::2] = values
        filled = Filled("".join(html))
        filled.lines, filled.shared, filled.values = "".join(lines), self, values
        return filled


def _one_line(piece):
    return str(piece).replace("\0", "\ufffd").replace("\r", " ").replace("\n", " ")


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


FANOUT_MARK = b"*"


def fanout_payload(kind, recipients):
    """One payload for the durable events of one kind of many users: [(user_id, seq, html)], html
    as `data_lines` takes it. Text shared between recipients (a `Shared` fragment's, the same part
    object given to several, the same piece) is written once."""
    shared, index, held = [], {}, []

    def ref(key, text):
        i = index.get(key)
        if i is None:
            i = index[key] = len(shared)
            shared.append(text)
        return i

    entries = []
    for user_id, seq, html in recipients:
        items = []
        for part in html if isinstance(html, (list, tuple)) else (html,):
            if not part:
                continue
            if items:
                items.append("\n")  # between frames, as `data_lines` joins parts
            whole = getattr(part, "shared", None)
            if whole is None:
                held.append(part)  # its id stays its own while this runs
                items.append(ref(id(part), data_lines(part)))
                continue
            for i, text in enumerate(whole.lined):
                if i % 2:  # a piece: many recipients have the same (an unread count of 1)
                    value = part.values[i // 2]
                    items.append(ref(value, value) if len(value) > 8 else value)
                elif text:
                    items.append(ref((id(whole), i), text))
        entries.append([int(user_id), int(seq), items])
    body = json.dumps({"k": kind, "s": shared, "r": entries}, ensure_ascii=False, separators=(",", ":"))
    return FANOUT_MARK + b"\n" + body.encode()


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


@dataclass(frozen=True)
class Fanout:
    kind: str
    shared: list
    recipients: list  # [user id, seq, items]

    def user_ids(self):
        return [recipient[0] for recipient in self.recipients]

    def durables(self, user_ids):
        """(user id, Durable) for the recipients among `user_ids`."""
        shared, kind = self.shared, self.kind
        return [(user_id, Durable(seq, kind, "".join(shared[x] if type(x) is int else x for x in items)))
                for user_id, seq, items in self.recipients if user_id in user_ids]


def parse_fanout(payload):
    """The Fanout of a fan-out payload; ValueError for anything else."""
    head, _, rest = payload.partition(b"\n")
    if head != FANOUT_MARK:
        raise ValueError(f"not a fan-out payload: {payload[:40]!r}")
    try:
        body = json.loads(rest)
        return Fanout(str(body["k"]), list(body["s"]), list(body["r"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a fan-out payload: {payload[:40]!r}") from exc


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
