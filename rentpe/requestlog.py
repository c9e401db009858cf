"""Logs an operator can follow: one access line per request, as text or JSON (`LOG_FORMAT`).

Each line carries the request id (the one a 500 page shows and every response's `X-Request-ID`
header carries), the user id when someone is logged in, the method, the route, the status and the
duration. What a line never carries: query strings, form fields, message bodies, cookies, and
string parts of a path (a route such as `/unsubscribe/<token>` is logged as its pattern). A path
that matched no route is cut after its first segment. SQL parameters are hidden from SQLAlchemy's
own logs and errors (`hide_parameters`, config.py), so a failed INSERT never prints a message.

The probes (`/healthz`, `/readyz`) are not logged: one a second per balancer would drown the rest.
Under gunicorn this line replaces gunicorn's own access log (deploy/gunicorn.conf.py).
"""
import json
import logging
import time
from datetime import datetime, timezone

from flask import g, has_request_context, request
from flask.logging import default_handler
from sqlalchemy import inspect as sa_inspect

from .errors import request_id

access_log = logging.getLogger("rentpe.access")

QUIET_ENDPOINTS = frozenset({"health.healthz", "health.readyz"})


class Stamp:
    """WSGI middleware: notes when the request arrived, before Flask routes it (the send latency
    metric and the access line's duration start here)."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        environ["rentpe.started"] = time.perf_counter()
        return self.wsgi_app(environ, start_response)


def logged_path():
    """The route's pattern with its integer parts filled in, else the first segment of the path."""
    rule = request.url_rule
    if rule is None:
        head, _, rest = request.path.lstrip("/").partition("/")
        return f"/{head[:40]}{'/…' if rest else ''}"
    path = rule.rule
    for name, value in (request.view_args or {}).items():
        if isinstance(value, int):
            path = path.replace(f"<int:{name}>", str(value))
    return path


def logged_in_user_id():
    """The id of the user this request loaded (None: nobody, or not loaded: never a query for the
    log), read from the identity map's key: the view may have ended its session, and the object
    with it (a stream does), and reading an attribute would then fail."""
    state = sa_inspect(g.get("_login_user"), raiseerr=False)
    identity = state.identity if state is not None else None
    return identity[0] if identity else None


def log_request(response):
    if request.endpoint in QUIET_ENDPOINTS:
        return response
    rid = request_id()
    response.headers.setdefault("X-Request-ID", rid)
    started = request.environ.get("rentpe.started")
    duration_ms = round((time.perf_counter() - started) * 1000, 1) if started is not None else None
    user_id = logged_in_user_id()
    fields = {"request_id": rid, "method": request.method, "path": logged_path(),
              "status": response.status_code, "duration_ms": duration_ms, "user_id": user_id}
    access_log.info("%s %s %s %s %sms user=%s", rid, fields["method"], fields["path"], fields["status"],
                    duration_ms, user_id if user_id is not None else "-", extra={"access": fields})
    return response


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the access fields, the
    exception's traceback)."""

    def format(self, record):
        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name}
        access = getattr(record, "access", None)
        if access is not None:
            entry.update(access)
        else:
            entry["message"] = record.getMessage()
            rid = getattr(record, "request_id", None)
            if rid is not None:
                entry["request_id"] = rid
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _record_factory(make_record):
    """Every log record made during a request carries its id (JSON lines show it), taken where the
    record is made: a handler may format it later, elsewhere."""

    def make(*args, **kwargs):
        record = make_record(*args, **kwargs)
        record.request_id = request_id() if has_request_context() else None
        return record

    make.rentpe_request_id = True
    return make


TEXT_FORMAT = "[%(asctime)s] %(levelname)s in %(name)s: %(message)s"


def init_app(app):
    app.wsgi_app = Stamp(app.wsgi_app)
    app.after_request(log_request)
    app.logger  # noqa: B018  (Flask puts its handler on the `rentpe` logger on first use)
    if access_log.level == logging.NOTSET:
        access_log.setLevel(logging.INFO)
    formatter = JsonFormatter() if app.config.get("LOG_FORMAT") == "json" else logging.Formatter(TEXT_FORMAT)
    default_handler.setFormatter(formatter)
    if not getattr(logging.getLogRecordFactory(), "rentpe_request_id", False):
        logging.setLogRecordFactory(_record_factory(logging.getLogRecordFactory()))
