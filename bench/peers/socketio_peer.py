"""The seeds' chat design in Python: python-socketio on gevent with its Redis manager, messages in
RentPe's PostgreSQL tables. It exists to be measured beside RentPe by the same load generator
(`bench/loadgen.py --transport socketio`); it is not part of the product.

    gunicorn -k gevent -w 1 --worker-connections 12000 bench.peers.socketio_peer:app
    (DATABASE_URL, REDIS_URL and SECRET_KEY in the environment; `bench/servers.py` starts it)

What it does, the way the seed's server does it (see `bench/peers/README.md` for the mapping):

- `POST /login` (form or JSON `email`, `password`) checks the password against the `users` table
  with werkzeug's `check_password_hash`, as RentPe's log-in does, and answers a signed token
  (`{"token": …, "user_id": …}`): the seed's JWT.
- `connect` (the seed's `io.use` middleware) verifies the token from the handshake's `auth`
  payload and joins the socket to its user's room, `user:<id>`; a user's sockets on any worker
  share the room through the Redis manager.
- `send_message` `{conversation_id, body, client_key}`: in one transaction (SQLAlchemy Core) it
  takes the conversation's row lock, checks the sender is a current participant, inserts the
  message once per (conversation, sender, client key), moves `last_message_id`,
  `message_count`, `last_message_at` and the participants' unread and read counters as RentPe's
  `send_message` does; after the commit it emits `message` to every participant's room (but not
  to the sending socket) and returns the stored message as the ack. A retried send with the
  same client key is answered with the stored message and not emitted again.

Nothing is replayed on reconnect and nothing records who received what: Socket.IO's delivery is
at-most-once, as in the seed. A message emitted while its recipient is between connections is
only seen when the conversation is next loaded from the database.
"""
import json
import os
import re
from datetime import datetime, timezone
from urllib.parse import parse_qs

DATABASE_URL = os.environ["DATABASE_URL"]
if DATABASE_URL.startswith(("postgresql", "postgres://")):
    # psycopg2 is C code: without psycogreen's wait callback a query would block the worker's
    # event loop (gunicorn's gevent worker has patched the standard library, not psycopg2).
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()

import socketio  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from itsdangerous import BadSignature, URLSafeTimedSerializer  # noqa: E402
from sqlalchemy.exc import IntegrityError  # noqa: E402
from werkzeug.security import check_password_hash  # noqa: E402

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET_KEY = os.environ["SECRET_KEY"]
TOKEN_MAX_AGE = 7 * 24 * 3600
MAX_BODY_CHARS = 4000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_CLIENT_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

# The columns of RentPe's tables that a send reads or writes (the schema is RentPe's migrations).
metadata = sa.MetaData()
users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True), sa.Column("email", sa.String),
    sa.Column("password_hash", sa.String), sa.Column("is_suspended", sa.Boolean),
)
conversations = sa.Table(
    "conversations", metadata,
    sa.Column("id", sa.Integer, primary_key=True), sa.Column("last_message_at", sa.DateTime),
    sa.Column("last_message_id", sa.Integer), sa.Column("message_count", sa.Integer),
    sa.Column("closed_at", sa.DateTime),
)
participants = sa.Table(
    "participants", metadata,
    sa.Column("conversation_id", sa.Integer, primary_key=True), sa.Column("user_id", sa.Integer, primary_key=True),
    sa.Column("left_at", sa.DateTime), sa.Column("unread_count", sa.Integer),
    sa.Column("last_read_message_id", sa.Integer), sa.Column("last_read_at", sa.DateTime),
)
messages = sa.Table(
    "messages", metadata,
    sa.Column("id", sa.Integer, primary_key=True), sa.Column("conversation_id", sa.Integer),
    sa.Column("sender_id", sa.Integer), sa.Column("body", sa.Text), sa.Column("client_key", sa.String),
    sa.Column("created_at", sa.DateTime),
)

# SQLAlchemy's recommended disconnect handling (pool_pre_ping: a ping on every checkout) and its
# default pool of 5 + 10 per process, as a user would configure it. (RentPe pings a connection only
# after it sat idle: rentpe/database.py.)
engine = sa.create_engine(DATABASE_URL, pool_pre_ping=True)
signer = URLSafeTimedSerializer(SECRET_KEY, salt="peer-login")
sio = socketio.Server(async_mode="gevent", client_manager=socketio.RedisManager(REDIS_URL),
                      cors_allowed_origins="*")


class Refused(Exception):
    """A send the peer turns down; its text goes back in the ack's `error`."""


def utcnow():
    return datetime.now(timezone.utc).replace(tzinfo=None)


def room_of(user_id):
    return f"user:{user_id}"


# Log-in over HTTP ------------------------------------------------------------------------------

def log_in(email, password):
    """The user's id if the e-mail and password match an active account, else None."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(users.c.id, users.c.password_hash, users.c.is_suspended)
            .where(users.c.email == (email or "").strip().lower())
        ).first()
    if row is None or row.is_suspended or not check_password_hash(row.password_hash, password or ""):
        return None
    return row.id


def http_app(environ, start_response):
    """Everything that is not Socket.IO: the log-in and a health check."""
    path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
    if path == "/health":
        return _respond(start_response, "200 OK", {"ok": True})
    if path == "/login" and method == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        if environ.get("CONTENT_TYPE", "").startswith("application/json"):
            form = json.loads(raw or b"{}")
        else:
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        user_id = log_in(form.get("email"), form.get("password"))
        if user_id is None:
            return _respond(start_response, "401 Unauthorized", {"error": "Wrong e-mail or password."})
        return _respond(start_response, "200 OK", {"token": signer.dumps(user_id), "user_id": user_id})
    return _respond(start_response, "404 Not Found", {"error": "not found"})


def _respond(start_response, status, payload):
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


# Socket.IO events ------------------------------------------------------------------------------

@sio.event
def connect(sid, environ, auth):
    try:
        user_id = signer.loads((auth or {}).get("token", ""), max_age=TOKEN_MAX_AGE)
    except BadSignature:
        raise socketio.exceptions.ConnectionRefusedError("log in first")
    sio.save_session(sid, {"user_id": user_id})
    sio.enter_room(sid, room_of(user_id))


@sio.event
def send_message(sid, data):
    user_id = sio.get_session(sid)["user_id"]
    try:
        conversation_id = int(data["conversation_id"])
        body = clean_body(data.get("body"))
        client_key = data.get("client_key") or ""
        if not _CLIENT_KEY.match(client_key):
            raise Refused("A client key is required.")
        message, members, created = store_message(conversation_id, user_id, body, client_key)
    except Refused as exc:
        return {"ok": False, "error": str(exc)}
    except (KeyError, TypeError, ValueError):
        return {"ok": False, "error": "Malformed message."}
    payload = as_payload(message)
    if created:
        for member_id in sorted(members):
            sio.emit("message", payload, to=room_of(member_id), skip_sid=sid)
    return {"ok": True, "message": payload}


# Persistence -----------------------------------------------------------------------------------

def clean_body(raw):
    text = _CONTROL.sub("", str(raw or "").replace("\r\n", "\n").replace("\r", "\n")).strip()
    if not text:
        raise Refused("Write a message first.")
    if len(text) > MAX_BODY_CHARS:
        raise Refused(f"Messages can be at most {MAX_BODY_CHARS:,} characters.")
    return text


def store_message(conversation_id, sender_id, body, client_key):
    """(message row, member ids, created): stored once per client key, in one transaction."""
    try:
        return _store(conversation_id, sender_id, body, client_key)
    except IntegrityError:  # the same key committed by a concurrent send: answer with that one
        with engine.connect() as conn:
            return _by_key(conn, conversation_id, sender_id, client_key), set(), False


def _store(conversation_id, sender_id, body, client_key):
    now = utcnow()
    with engine.connect() as conn:
        existing = _by_key(conn, conversation_id, sender_id, client_key)
        if existing is not None:
            conn.rollback()
            return existing, set(), False
        # The conversation's row lock: sends in one conversation commit in id order.
        closed = conn.execute(
            sa.update(conversations).where(conversations.c.id == conversation_id)
            .values(last_message_at=now, message_count=conversations.c.message_count + 1)
            .returning(conversations.c.closed_at)
        ).first()
        if closed is None:
            raise Refused("No such conversation.")
        existing = _by_key(conn, conversation_id, sender_id, client_key)
        if existing is not None:  # committed while we waited for the lock
            conn.rollback()
            return existing, set(), False
        members = set(conn.scalars(
            sa.select(participants.c.user_id)
            .where(participants.c.conversation_id == conversation_id, participants.c.left_at.is_(None))
        ))
        if sender_id not in members:
            raise Refused("You are not a member of this conversation.")
        if closed.closed_at is not None:
            raise Refused("This conversation is closed.")
        message = conn.execute(
            sa.insert(messages).values(conversation_id=conversation_id, sender_id=sender_id, body=body,
                                       client_key=client_key, created_at=now)
            .returning(*messages.c)
        ).one()
        conn.execute(sa.update(conversations).where(conversations.c.id == conversation_id)
                     .values(last_message_id=message.id))
        recipients = sorted(members - {sender_id})
        conn.execute(
            sa.update(participants)
            .where(participants.c.conversation_id == conversation_id, participants.c.user_id.in_(recipients))
            .values(unread_count=participants.c.unread_count + 1)
        )
        conn.execute(
            sa.update(participants)
            .where(participants.c.conversation_id == conversation_id, participants.c.user_id == sender_id)
            .values(last_read_message_id=message.id, last_read_at=now, unread_count=0)
        )
        conn.commit()
    return message, members, True


def _by_key(conn, conversation_id, sender_id, client_key):
    return conn.execute(
        sa.select(messages).where(messages.c.conversation_id == conversation_id,
                                  messages.c.sender_id == sender_id, messages.c.client_key == client_key)
    ).first()


def as_payload(message):
    return {"id": message.id, "conversation_id": message.conversation_id, "sender_id": message.sender_id,
            "body": message.body, "client_key": message.client_key,
            "created_at": message.created_at.isoformat() + "Z"}


app = socketio.WSGIApp(sio, http_app)
