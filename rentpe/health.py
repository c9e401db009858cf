"""`GET /healthz` and `GET /readyz`: what a load balancer probes, every second if it likes.

- `/healthz`: the process answers. No I/O at all: a worker whose event loop is blocked does not
  answer, which is what a liveness probe is for.
- `/readyz`: the database, and Redis when `REDIS_URL` is set, answer within `READY_TIMEOUT_S`;
  otherwise 503 naming the one that failed, so the balancer sends no new requests here.

Each check uses a connection of its own, kept for the life of the process (one per worker): not
the app's pool, whose checkout may wait for a free connection far longer than a probe should (a
busy pool is the 503 of `errors.handle_overloaded`, not a dead database), and not a new connection
per probe (on PostgreSQL, a backend process forked every second). Neither endpoint is rate-limited,
logged per request (`requestlog`), or touches the session.
"""
import logging
import threading

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from flask import Blueprint, Response, current_app
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from .extensions import limiter

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

# Probes come every few seconds; anything slower than this is as good as down for a balancer.
READY_TIMEOUT_S = 2

_checkers = {}
_checkers_lock = threading.Lock()


@bp.get("/healthz")
@limiter.exempt
def healthz():
    return _plain("ok\n", 200)


@bp.get("/readyz")
@limiter.exempt
def readyz():
    checker = _checker_for(current_app)
    failed = checker.failures()
    if failed:
        return _plain("".join(f"{name}: unreachable\n" for name in failed), 503)
    return _plain("".join(f"{name}: ok\n" for name in checker.names()), 200)


def _plain(body, status):
    return Response(body, status, mimetype="text/plain", headers={"Cache-Control": "no-store"})


def _checker_for(app):
    key = (app.config["SQLALCHEMY_DATABASE_URI"], app.config.get("REDIS_URL"))
    with _checkers_lock:
        checker = _checkers.get(key)
        if checker is None:
            checker = _checkers[key] = Readiness(*key)
        return checker


class Readiness:
    def __init__(self, database_url, redis_url, timeout=READY_TIMEOUT_S):
        url = make_url(database_url)
        options = {"pool_size": 1, "max_overflow": 0, "pool_timeout": timeout, "pool_recycle": 300}
        if url.get_backend_name() == "postgresql":
            # Both bounded: reaching the server, and the statement once connected.
            options["connect_args"] = {"connect_timeout": timeout,
                                       "options": f"-c statement_timeout={int(timeout * 1000)}"}
        else:
            options["connect_args"] = {"timeout": timeout}
        self.engine = create_engine(url, **options)
        # No retries: a probe that fails says so at once; the next probe tries again.
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                          retry=Retry(NoBackoff(), 0), max_connections=1) if redis_url else None
        self.lock = threading.Lock()  # one probe at a time per process uses the two connections

    def names(self):
        return ["database", "redis"] if self.redis is not None else ["database"]

    def failures(self):
        failed = []
        with self.lock:
            try:
                with self.engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
            except Exception as exc:
                log.warning("readiness: the database did not answer: %s", exc)
                self.engine.dispose()
                failed.append("database")
            if self.redis is not None:
                try:
                    self.redis.ping()
                except Exception as exc:
                    log.warning("readiness: Redis did not answer: %s", exc)
                    self.redis.connection_pool.disconnect()  # reconnects on the next probe
                    failed.append("redis")
        return failed


def init_app(app):
    app.register_blueprint(bp)
