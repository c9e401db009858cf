"""Per-connection settings that make SQLite behave like the production database where it matters,
the pool's check that a connection is still alive, statements without a transaction around them, and
what differs between the two databases."""
import sqlite3
import time
from contextlib import contextmanager

from psycopg2.extensions import TRANSACTION_STATUS_IDLE
from sqlalchemy import event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from .extensions import db

# A pooled connection that sat unused this long is pinged before it is handed out (and replaced if
# the ping fails). Instead of `pool_pre_ping`, which pings on every checkout: a message takes four
# checkouts (the request and its publish, the delivery receipt and its publish), each ping a round
# trip. A connection used moments ago is as alive as a ping would show; a database restart in
# between fails that one request with a 503 to retry (errors.py) and invalidates the whole pool, so
# the next checkout reconnects.
PING_AFTER_IDLE_SECONDS = 1.0


def _sqlite_pragmas(dbapi_connection, _record):
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        # WAL lets readers (page views, stream replays) run while one writer commits.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


def _pool_hooks(engine):
    """What the pool does as a connection comes back and goes out again: it notes when the
    connection was returned, hands a PostgreSQL one back out of autocommit whatever happened while
    it was lent (`without_a_transaction`'s block may have ended the session's use of it
    early), and pings one that sat idle before lending it again."""
    on_postgresql = engine.dialect.name == "postgresql"

    def checkin(dbapi_connection, record):
        if record is not None:
            record.info["idle_since"] = time.monotonic()
        if on_postgresql and dbapi_connection is not None and not dbapi_connection.closed \
                and dbapi_connection.autocommit:
            dbapi_connection.autocommit = False

    def checkout(dbapi_connection, record, _proxy):
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        # As `pool_pre_ping` does: a failed ping means the database went away, so every pooled
        # connection is dropped, and the pool connects anew for this checkout.
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise exc.InvalidatePoolError(str(error)) from error
        if not alive:
            raise exc.InvalidatePoolError("the database did not answer a ping")

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)


def init_app(app):
    if not event.contains(Engine, "connect", _sqlite_pragmas):
        event.listen(Engine, "connect", _sqlite_pragmas)
    with app.app_context():
        for engine in db.engines.values():
            _pool_hooks(engine)


def is_postgresql(session_or_engine):
    bind = session_or_engine.get_bind() if hasattr(session_or_engine, "get_bind") else session_or_engine
    return bind.dialect.name == "postgresql"


def insert_for(session, target):
    """An INSERT into `target` for the session's database, one that can say ON CONFLICT."""
    return (postgresql.insert if is_postgresql(session) else sqlite.insert)(target)


@contextmanager
def without_a_transaction(session):
    """The block's statements run without a transaction around them when the session's connection
    has none open yet (right after a commit, or before the first statement): no BEGIN before them
    and no COMMIT or ROLLBACK after, two round trips fewer. Each statement commits on its own, so
    the block is for reads (under READ COMMITTED every statement reads its own snapshot inside a
    transaction or not: plain SELECTs see the same) and for writes that are whole in one
    statement. After it the connection is transactional again, so whatever the session runs next
    opens a transaction as usual. Changes waiting for a flush keep the transaction: the block's
    first query would flush them, and they must not commit on their own. (PostgreSQL only: on
    SQLite the block runs in the session's transaction as usual; a SELECT opens none there.)"""
    if not is_postgresql(session) or session.new or session.dirty or session.deleted:
        yield
        return
    connection = session.connection()
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection.info.transaction_status != TRANSACTION_STATUS_IDLE:
        yield  # a statement already ran in this transaction: stay in it
        return
    dbapi_connection.autocommit = True
    try:
        yield
    finally:
        # A block that rolled the session back has closed this connection and returned its DBAPI
        # connection, which the pool made transactional then (and may have lent out again).
        if not connection.closed and not connection.invalidated:
            dbapi_connection.autocommit = False
