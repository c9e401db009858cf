"""Load generator: N logged-in SSE streams and an open-loop message rate over RentPe's HTTP surface.

    python bench/loadgen.py --base http://127.0.0.1:8000 --fixture fixture.json --password P \
        --streams 3000 --rate 300 --duration 30 [--server-pid PID] [--json out.json]

One gevent process holds every stream (a greenlet and a socket each). It speaks plain HTTP/1.1
over sockets (keep-alive for page loads and POSTs, chunked decoding for streams), like a browser
tab that runs htmx:

1. log in each user `user{i}@bench.test` (GET /login for the CSRF token, POST /login), open its
   conversation page (the CSRF token and the `?after=` cursor rendered into the page);
2. open `GET /events?after=<cursor>` for each, reconnecting with `Last-Event-ID` whenever the
   server ends a stream (lifetime, a killed worker, a Redis drop), with a browser-like backoff;
3. send messages at `--rate` per second (open loop: a send is started on schedule whether or not
   earlier ones finished) between the two users of a random pair, each with a unique body and a
   fresh client key, as htmx does (`HX-Request: true`, `X-CSRFToken`); a failed POST is retried
   with the same client key (the server stores it once);
4. with `--last-round S`: send every user one last message from its partner, spread over S
   seconds, and nothing after it, so that a message a fault lost has no later one to reveal the
   gap (the fault scripts strike during this round);
5. wait for the stragglers, then report.

What counts: a message is delivered when its body arrives inside a message fragment
(`<li id="msg-…">…<div class="msg-body">body</div>`) in the recipient's stream; the inbox-row
frame that precedes it (its preview repeats the text) is not counted. Latency runs from the
start of the POST to that arrival. Lost = never arrived. Duplicated = arrived in more than one
frame carrying an `id:` (a frame sent ahead without an id and replayed later with one is shown
once: the client swaps by element id). Reordered = in the frames carrying an `id:`, a message id
lower than one before it (each bench user has one conversation, so a stream's order is that
conversation's). `ahead_without_id` counts messages that overtook an earlier event and were
shown at once without an id (the client places them by their sort key; the cursor waits).

Server cost comes from /proc: CPU seconds of `--server-pid` and its descendants (every thread's
`schedstat`, in nanoseconds) during the send phase, per 1,000 messages; RSS growth from opening the
streams, per stream; with `--hold S`, the CPU of holding the streams open with nothing sent, in µs
per stream per second (hold a multiple of the heartbeat, 25 s, so every run sees as many beats).

The same generator drives the Socket.IO peer (`bench/peers/`, the seeds' design) with
`--transport socketio`; only the transport differs, the schedule, the pairs and every figure are
the ones above. Each user logs in with `POST /login` (the peer's signed token), then one
python-socketio client per user connects with the websocket transport only (the token in the
handshake's `auth`), reconnecting as the library does. A send is an `emit("send_message",
{conversation_id, body, client_key}, callback)` whose ack carries the stored message (a send
without an ack in 30 s is retried with the same client key); a delivery is a `message` event with
that body at the recipient's socket. Every such event carries the message id, so duplicated and
reordered are counted over all of them. The peer replays nothing after a reconnect: what was
emitted while a socket was away counts as lost.

Progress lines go to stderr (`phase: <name>`), so a fault script can act at the right moment;
the report is one JSON object on stdout (and in `--json`). `last_round` lists, for each message
of the last round, when its POST was answered and when it arrived (wall clock, seconds; None if
it never did), so a fault script can check them against the moment the fault was over.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from urllib.parse import urlencode, urlsplit  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
from gevent.pool import Pool  # noqa: E402

CSRF = re.compile(rb'<meta name="csrf-token" content="([^"]+)"')
CURSOR = re.compile(rb'/events\?after=(\d+)')
MESSAGE = re.compile(r'<li id="msg-(\d+)".*?class="msg-body">(bm[a-z0-9]+-[rl]?\d+)<', re.S)
SENT_ID = re.compile(rb'<li id="msg-(\d+)"')


class HttpError(Exception):
    pass


class Connection:
    """One HTTP/1.1 connection: keep-alive requests, or one streamed response."""

    def __init__(self, host, port, timeout=30):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise HttpError("connection closed")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._recv()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exactly(self, n):
        while len(self.buf) < n:
            self._recv()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def send(self, method, path, host, headers, body=b""):
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def head(self):
        """(status, [(name, value)]) of the next response."""
        status = int(self._line().split(b" ", 2)[1])
        headers = []
        while line := self._line():
            name, _, value = line.partition(b":")
            headers.append((name.strip().lower().decode(), value.strip().decode()))
        return status, headers

    def body(self, headers):
        names = dict(headers)
        if names.get("transfer-encoding", "").lower() == "chunked":
            return b"".join(self.chunks())
        return self._exactly(int(names.get("content-length", "0")))

    def chunks(self):
        while True:
            size = int(self._line().split(b";")[0], 16)
            if size == 0:
                self._line()
                return
            chunk = self._exactly(size)
            self._exactly(2)
            yield chunk


class Client:
    """A user's cookie jar and the keep-alive connections it borrows from the shared pool."""

    def __init__(self, target, index):
        self.target = target
        self.index = index
        self.cookies = {}
        self.csrf = None
        self.cursor = "0"

    def request(self, method, path, form=None, headers=None, attempts=1):
        body = urlencode(form).encode() if form is not None else b""
        extra = dict(headers or {})
        if form is not None:
            extra["Content-Type"] = "application/x-www-form-urlencoded"
        attempt = 0
        while True:
            conn, reused = self.target.borrow()
            try:
                conn.send(method, path, self.target.netloc, {**self._cookie_header(), **extra}, body)
                status, resp_headers = conn.head()
                data = conn.body(resp_headers)
            except (OSError, HttpError, ValueError, IndexError):
                conn.close()
                if reused:
                    continue  # the server closed an idle keep-alive connection: a new one
                attempt += 1
                if attempt == attempts:
                    raise
                gevent.sleep(min(0.2 * 2**attempt, 2))
                continue
            self._take_cookies(resp_headers)
            if dict(resp_headers).get("connection", "").lower() == "close":
                conn.close()
            else:
                self.target.give_back(conn)
            return status, resp_headers, data

    def _cookie_header(self):
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}

    def _take_cookies(self, headers):
        for name, value in headers:
            if name == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]

    def log_in(self, password, conversation_id=None, page_path=None):
        """Log in and open a page (the conversation's, unless `page_path`): its CSRF token and cursor."""
        _, _, page = self.request("GET", "/login", attempts=5)
        token = CSRF.search(page).group(1).decode()
        status, _, _ = self.request("POST", "/login", {"email": f"user{self.index}@bench.test", "password": password,
                                                       "csrf_token": token}, attempts=5)
        if status != 302:
            raise HttpError(f"log-in of user{self.index} answered {status}")
        status, _, page = self.request("GET", page_path or f"/conversations/{conversation_id}", attempts=5)
        if status != 200:
            raise HttpError(f"{page_path or 'conversation'} page answered {status}")
        self.csrf = CSRF.search(page).group(1).decode()
        self.cursor = CURSOR.search(page).group(1).decode()

    def log_in_token(self, password):
        """The Socket.IO peer's log-in: `POST /login` answers a signed token for the handshake."""
        status, _, body = self.request("POST", "/login", {"email": f"user{self.index}@bench.test", "password": password},
                                       attempts=5)
        if status != 200:
            raise HttpError(f"log-in of user{self.index} answered {status}")
        self.token = json.loads(body)["token"]


class Target:
    def __init__(self, base):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port or 80
        self.netloc = parts.netloc
        self._idle = []

    def borrow(self):
        """(connection, whether it was used before)."""
        return (self._idle.pop(), True) if self._idle else (Connection(self.host, self.port), False)

    def give_back(self, conn):
        self._idle.append(conn)


class Stream:
    """One tab's `/events`, kept open (reconnecting) until stopped; records what arrives."""

    def __init__(self, run, client, peer_index):
        self.run = run
        self.client = client
        self.peer_index = peer_index
        self.last_id = None
        self.opened = gevent.event.Event()
        self.reconnects = 0
        self.max_msg_id = 0
        self.stopped = False
        self.conn = None
        self.greenlet = None

    def start(self):
        self.greenlet = gevent.spawn(self._run)

    def stop(self):
        self.stopped = True
        if self.conn is not None:
            self.conn.close()
        if self.greenlet is not None:
            self.greenlet.kill(block=False)

    def _run(self):
        delay = 0.5
        while not self.stopped:
            try:
                self._read_once()
                delay = 0.5
            except (OSError, HttpError, ValueError, IndexError):
                pass
            finally:
                if self.conn is not None:
                    self.conn.close()
            if self.stopped:
                return
            self.reconnects += 1
            gevent.sleep(delay * random.uniform(0.7, 1.3))
            delay = min(delay * 2, 5)

    def _read_once(self):
        target = self.run.target
        self.conn = Connection(target.host, target.port, timeout=None)
        headers = {**self.client._cookie_header(), "Accept": "text/event-stream", "HX-Request": "true"}
        if self.last_id is not None:
            headers["Last-Event-ID"] = self.last_id
        self.conn.send("GET", f"/events?after={self.client.cursor}", target.netloc, headers)
        status, resp_headers = self.conn.head()
        if status != 200:
            self.conn.body(resp_headers)
            self.run.stream_errors[status] = self.run.stream_errors.get(status, 0) + 1
            raise HttpError(f"/events answered {status}")
        text = ""
        cut_at = time.perf_counter() + random.expovariate(1 / self.run.args.cut_streams) if self.run.args.cut_streams else None
        for chunk in self.conn.chunks():
            now = time.perf_counter()
            if cut_at is not None and now >= cut_at and len(chunk) > 1:
                # The connection drops part-way through this chunk: what arrived of the frame
                # in flight is discarded, as a browser's SSE parser does with an unfinished frame.
                text += chunk[:random.randrange(1, len(chunk))].decode(errors="ignore")
                for block in text.split("\n\n")[:-1]:
                    self._frame(block, now)
                self.run.cuts += 1
                raise HttpError("cut")
            text += chunk.decode()
            *frames, text = text.split("\n\n")
            for block in frames:
                self._frame(block, now)
        raise HttpError("stream ended")

    def _frame(self, block, now):
        data, frame_id = [], None
        for line in block.split("\n"):
            if line.startswith("data:"):
                data.append(line[6:] if line.startswith("data: ") else line[5:])
            elif line.startswith("id:"):
                frame_id = line[3:].strip()
            elif line == ": open":
                self.opened.set()
        if frame_id is not None:
            self.last_id = frame_id
        if data:
            for msg_id, token in MESSAGE.findall("\n".join(data)):
                self.run.arrived(self, int(msg_id), token, frame_id is not None, now)


class SocketIOStream:
    """One user's Socket.IO connection to the peer (websocket transport only), kept connected by
    python-socketio's own reconnection; records the `message` events that arrive. The same
    interface as `Stream`: start, stop, opened, reconnects, max_msg_id."""

    def __init__(self, run, client, peer_index):
        import socketio

        self.run = run
        self.client = client
        self.peer_index = peer_index
        self.opened = gevent.event.Event()
        self.reconnects = 0
        self.max_msg_id = 0
        self.stopped = False
        self.greenlet = None
        self.sio = socketio.Client(reconnection=True, reconnection_delay=0.5, reconnection_delay_max=5,
                                   randomization_factor=0.3)
        self.sio.on("connect", self._connected)
        self.sio.on("message", self._message)

    def start(self):
        self.greenlet = gevent.spawn(self._run)

    def stop(self):
        self.stopped = True
        gevent.spawn(self.sio.disconnect)

    def _run(self):
        import socketio

        delay = 0.5
        while not self.stopped:
            try:
                self.sio.connect(self.run.args.base, transports=["websocket"], auth={"token": self.client.token},
                                 wait_timeout=60)
                return  # from here on the library reconnects by itself
            except socketio.exceptions.ConnectionError as exc:
                key = type(exc).__name__
                self.run.stream_errors[key] = self.run.stream_errors.get(key, 0) + 1
            gevent.sleep(delay * random.uniform(0.7, 1.3))
            delay = min(delay * 2, 5)

    def _connected(self):
        if self.opened.is_set():
            self.reconnects += 1
        self.opened.set()

    def _message(self, data):
        self.run.arrived(self, int(data["id"]), data.get("body", ""), True, time.perf_counter())

    def call(self, event, data, timeout):
        return self.sio.call(event, data, timeout=timeout)


class Run:
    def __init__(self, args):
        self.args = args
        self.transport = getattr(args, "transport", "sse")
        self.target = Target(args.base)
        self.tag = "bm" + uuid.uuid4().hex[:6]
        self.sent = {}  # token -> [t0, recipient index, conversation id, msg id, post seconds]
        self.deliveries = {}  # token -> [first arrival time, arrivals, arrivals in id frames]
        self.echoes = 0
        self.reordered = 0
        self.ahead = 0
        self.post_errors = {}
        self.stream_errors = {}
        self.unsent = 0
        self.cuts = 0
        self.streams = {}
        self.last_round = []  # tokens of the last round

    # What arrives --------------------------------------------------------------------------

    def arrived(self, stream, msg_id, token, has_id, now):
        info = self.sent.get(token)
        if info is None or token.split("-")[0] != self.tag:
            return
        if info[1] != stream.client.index:
            self.echoes += 1  # the sender's own stream (their other tabs)
            return
        record = self.deliveries.get(token)
        if record is None:
            record = self.deliveries[token] = [now, 0, 0]
            if not has_id:
                self.ahead += 1  # overtook an earlier event: shown at once, placed by its key
        if has_id and record[2] == 0:
            # The frames carrying ids are the ones the client's cursor moves through: they
            # must follow the conversation's order.
            if msg_id < stream.max_msg_id:
                self.reordered += 1
            stream.max_msg_id = max(stream.max_msg_id, msg_id)
        record[1] += 1
        record[2] += 1 if has_id else 0

    # Phases ----------------------------------------------------------------------------------

    def log_in_all(self, conversations):
        clients = {}
        pool = Pool(self.args.login_concurrency)

        def one(i):
            key = f"{i - i % 2}-{i - i % 2 + 1}"
            client = Client(self.target, i)
            if self.transport == "socketio":
                client.log_in_token(self.args.password)
            else:
                client.log_in(self.args.password, conversations[key])
            clients[i] = client

        for i in range(self.args.streams):
            pool.spawn(one, i)
        pool.join(raise_error=True)
        return clients

    def open_streams(self, clients):
        pool = Pool(self.args.open_concurrency)
        stream_class = SocketIOStream if self.transport == "socketio" else Stream
        for i, client in clients.items():
            stream = self.streams[i] = stream_class(self, client, i ^ 1)

            def opener(stream=stream):
                stream.start()
                stream.opened.wait(60)

            pool.spawn(opener)
        pool.join()
        missing = [i for i, s in self.streams.items() if not s.opened.is_set()]
        if missing:
            raise SystemExit(f"{len(missing)} streams did not open (errors: {self.stream_errors})")

    def send_before_open(self, clients, conversations):
        """The render→connect race: each pair's buyer sends after the seller's page was rendered
        (its `?after=` cursor is already fixed) and before the seller's stream connects."""
        pairs = self.args.streams // 2
        gevent.joinall([gevent.spawn(self._send, clients[2 * k], clients[2 * k + 1], conversations[f"{2*k}-{2*k+1}"],
                                     f"r{k}", 1) for k in range(pairs)])

    def send_all(self, clients, conversations):
        rate, duration = self.args.rate, self.args.duration
        pairs = self.args.streams // 2
        count = int(rate * duration)
        start = time.perf_counter()
        workers = []
        for n in range(count):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            k = random.randrange(pairs)
            sender = 2 * k + random.randrange(2)
            copies = 2 if random.random() < self.args.duplicate_submits else 1
            workers.append(gevent.spawn(self._send, clients[sender], clients[sender ^ 1], conversations[f"{2*k}-{2*k+1}"], n, copies))
        send_seconds = time.perf_counter() - start
        gevent.joinall(workers)
        return send_seconds

    def send_last_round(self, clients, conversations):
        """Every user gets one last message from its partner, spread over --last-round seconds."""
        users = list(range(self.args.streams))
        random.shuffle(users)
        spread, start, workers = self.args.last_round, time.perf_counter(), []
        for n, recipient in enumerate(users):
            delay = start + spread * n / len(users) - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            k = recipient // 2
            self.last_round.append(f"{self.tag}-l{n}")
            workers.append(gevent.spawn(self._send, clients[recipient ^ 1], clients[recipient],
                                        conversations[f"{2*k}-{2*k+1}"], f"l{n}", 1))
        gevent.joinall(workers)

    def last_round_times(self):
        """[[POST answered, arrival or None], …] of the last round, wall clock. The answer comes
        after the message's commit, so arrival - answer never overstates how late it was."""
        wall = time.time() - time.perf_counter()
        return [[round(self.sent[t][0] + self.sent[t][4] + wall, 3),
                 round(self.deliveries[t][0] + wall, 3) if t in self.deliveries else None]
                for t in self.last_round if t in self.sent and self.sent[t][4] is not None]

    def _send(self, sender, recipient, conversation_id, n, copies):
        token = f"{self.tag}-{n}"
        key = uuid.uuid4().hex
        info = self.sent[token] = [time.perf_counter(), recipient.index, conversation_id, None, None]
        submit = self._submit_socketio if self.transport == "socketio" else self._submit_http

        def post():
            deadline = time.perf_counter() + self.args.post_deadline
            while True:
                status, answer = submit(sender, conversation_id, token, key)
                if status == 200:
                    return answer
                self.post_errors[str(status)] = self.post_errors.get(str(status), 0) + 1
                if time.perf_counter() > deadline:
                    return None
                gevent.sleep(0.5)  # the user presses Send again: same client key

        results = gevent.joinall([gevent.spawn(post) for _ in range(copies)])
        answers = [g.value for g in results if g.value]
        if not answers:
            self.unsent += 1
            del self.sent[token]
            return
        ids = {message_id for message_id, _ in answers}
        if len(ids) != 1 or not answers[0][1]:
            self.post_errors["different-answer"] = self.post_errors.get("different-answer", 0) + 1
        info[3] = ids.pop()
        info[4] = time.perf_counter() - info[0]

    def _submit_http(self, sender, conversation_id, token, key):
        """RentPe: one POST as htmx sends it. (200, (stored message id, the answer shows the body))
        or (the status or error, None)."""
        headers = {"HX-Request": "true", "X-CSRFToken": sender.csrf}
        form = {"body": token, "client_key": key}
        try:
            status, _, data = sender.request("POST", f"/conversations/{conversation_id}/messages", form, headers)
        except (OSError, HttpError, ValueError, IndexError) as exc:
            return type(exc).__name__, None
        if status != 200:
            return status, None
        return 200, (int(SENT_ID.search(data).group(1)), token.encode() in data)

    def _submit_socketio(self, sender, conversation_id, token, key):
        """The peer: `send_message` with an ack, on the sender's own socket; the same answer."""
        import socketio

        try:
            ack = self.streams[sender.index].call(
                "send_message", {"conversation_id": conversation_id, "body": token, "client_key": key}, timeout=30)
        except socketio.exceptions.SocketIOError as exc:
            return type(exc).__name__, None
        if not isinstance(ack, dict) or not ack.get("ok"):
            return "refused", None
        return 200, (int(ack["message"]["id"]), ack["message"]["body"] == token)

    def wait_for_stragglers(self):
        deadline = time.perf_counter() + self.args.drain
        while time.perf_counter() < deadline and len(self.deliveries) < len(self.sent):
            gevent.sleep(0.1)

    def stop_streams(self):
        for stream in self.streams.values():
            stream.stop()


# The server's processes ------------------------------------------------------------------------



def process_tree(pid):
    if pid is None:
        return []
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def cpu_seconds(pids):
    """CPU seconds these processes have run, to the nanosecond: the sum of every thread's
    `schedstat` (the kernel's own run-time account). `/proc/PID/stat` counts in 10 ms ticks,
    too coarse for what a few hundred idle streams cost in a minute."""
    total = 0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/schedstat") as fh:
                    total += int(fh.read().split()[0])
            except (OSError, IndexError, ValueError):
                pass
    return total / 1e9


def own_cpu_seconds():
    """This process's CPU seconds (user + system): the generator shares the machine's cores."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as fh:
                total += next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total


def percentile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def phase(name):
    print(f"phase: {name}", file=sys.stderr, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="http://host:port of the server")
    parser.add_argument("--fixture", required=True, help="the JSON written by `flask bench-fixture`")
    parser.add_argument("--password", required=True)
    parser.add_argument("--streams", type=int, required=True, help="open streams (users 0 … N-1, an even number)")
    parser.add_argument("--rate", type=float, default=0, help="messages per second")
    parser.add_argument("--duration", type=float, default=10, help="seconds of sending")
    parser.add_argument("--hold", type=float, default=0, help="seconds to hold the streams open before sending")
    parser.add_argument("--drain", type=float, default=15, help="seconds to wait for undelivered messages")
    parser.add_argument("--server-pid", type=int, help="the server's (master) process id, for CPU and RSS")
    parser.add_argument("--login-concurrency", type=int, default=16)
    parser.add_argument("--open-concurrency", type=int, default=32)
    parser.add_argument("--duplicate-submits", type=float, default=0, help="fraction of sends posted twice at once")
    parser.add_argument("--post-deadline", type=float, default=60, help="seconds a send keeps retrying")
    parser.add_argument("--cut-streams", type=float, default=0,
                        help="cut each stream mid-frame after a random time (mean seconds), then reconnect")
    parser.add_argument("--last-round", type=float, default=0,
                        help="after sending, one last message to every user, spread over this many seconds")
    parser.add_argument("--race", action="store_true", help="send one message per pair between page render and stream open")
    parser.add_argument("--transport", choices=["sse", "socketio"], default="sse",
                        help="sse: RentPe (streams and POSTs); socketio: the Socket.IO peer in bench/peers/")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args(argv)
    if args.streams % 2:
        parser.error("--streams must be even (users talk in pairs)")
    if args.transport == "socketio" and (args.race or args.cut_streams):
        parser.error("--race and --cut-streams are RentPe scenarios (the peer replays nothing)")
    with open(args.fixture) as fh:
        conversations = json.load(fh)["conversations"]

    run = Run(args)
    pids = process_tree(args.server_pid)
    phase("login")
    started = time.perf_counter()
    clients = run.log_in_all(conversations)
    login_seconds = time.perf_counter() - started
    gevent.sleep(1)
    pids = process_tree(args.server_pid)
    rss_before = rss_kib(pids)
    if args.race:
        phase("race")
        run.send_before_open(clients, conversations)
    phase("open")
    started = time.perf_counter()
    run.open_streams(clients)
    open_seconds = time.perf_counter() - started
    gevent.sleep(2)
    pids = process_tree(args.server_pid)
    rss_open = rss_kib(pids)
    idle_cpu = None
    if args.hold:
        phase("hold")
        hold_cpu, hold_start = cpu_seconds(pids), time.perf_counter()
        gevent.sleep(args.hold)
        # Streams open, nothing sent: heartbeats, presence, the watch's rounds.
        idle_cpu = (cpu_seconds(pids) - hold_cpu) / (time.perf_counter() - hold_start) / args.streams * 1e6
    phase("sending")
    cpu_start, wall_start, own_start = cpu_seconds(pids), time.perf_counter(), own_cpu_seconds()
    send_seconds = run.send_all(clients, conversations) if args.rate else 0
    if args.last_round:
        phase("last-round")
        run.send_last_round(clients, conversations)
    cpu_send = cpu_seconds(pids) - cpu_start
    own_send = own_cpu_seconds() - own_start
    wall_send = time.perf_counter() - wall_start
    phase("draining")
    run.wait_for_stragglers()
    rss_end = rss_kib(process_tree(args.server_pid))
    reconnects = sum(s.reconnects for s in run.streams.values())
    run.stop_streams()
    phase("done")

    sent = len(run.sent)
    latencies = [(d[0] - run.sent[t][0]) * 1000 for t, d in run.deliveries.items() if t in run.sent]
    posts = [info[4] * 1000 for info in run.sent.values() if info[4] is not None]
    # A send the generator gave up on (its POST or ack never came back within --post-deadline)
    # may still have been stored and delivered: it is counted apart, not against `lost`.
    delivered = sum(1 for t in run.deliveries if t in run.sent)
    lost = sent - delivered
    report = {
        "transport": args.transport, "streams": args.streams, "rate": args.rate, "duration": args.duration, "sent": sent,
        "achieved_rate": round(sent / send_seconds, 1) if send_seconds else 0,
        "delivered": delivered, "lost": lost, "delivered_unsent": len(run.deliveries) - delivered,
        "duplicated": sum(1 for d in run.deliveries.values() if d[2] > 1),
        "redelivered": sum(1 for d in run.deliveries.values() if d[1] > 1),
        "reordered": run.reordered, "ahead_without_id": run.ahead, "echoes": run.echoes, "unsent": run.unsent,
        "latency_ms": {q: _round(percentile(latencies, p)) for q, p in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))},
        "post_ms": {q: _round(percentile(posts, p)) for q, p in (("p50", 50), ("p99", 99))},
        "server_cpu_s_per_1000": _round(cpu_send / sent * 1000) if sent else None,
        "server_cpu_util": _round(cpu_send / wall_send) if wall_send else None,
        "loadgen_cpu_s_per_1000": _round(own_send / sent * 1000) if sent else None,
        "rss_kib_per_stream": _round((rss_open - rss_before) / args.streams) if args.server_pid else None,
        "idle_cpu_us_per_stream_s": _round(idle_cpu),
        "rss_kib": {"before_streams": rss_before, "streams_open": rss_open, "end": rss_end},
        "login_s": _round(login_seconds), "open_s": _round(open_seconds),
        "reconnects": reconnects, "cuts": run.cuts, "post_errors": run.post_errors,
        "stream_errors": {str(k): v for k, v in run.stream_errors.items()},
        "lost_tokens": sorted(set(run.sent) - set(run.deliveries))[:10],
        "last_round": run.last_round_times(),
    }
    text = json.dumps(report)
    print(text, flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text + "\n")
    return report


def _round(value):
    return None if value is None else round(value, 2)


if __name__ == "__main__":
    main()
