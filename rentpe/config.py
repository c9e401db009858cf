"""Configuration, read from the environment (see the README's table).

The embedded default needs nothing set: a SQLite file and a generated secret key under
`instance/`, and the in-process broker. Production (`RENTPE_ENV=production`) refuses to start
without `SECRET_KEY` and turns on secure cookies and HSTS.
"""
import os
import secrets
from datetime import timedelta
from pathlib import Path


class ConfigError(RuntimeError):
    pass


def _int(environ, name, default):
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _secret_key(environ, instance_path, production):
    if environ.get("SECRET_KEY"):
        return environ["SECRET_KEY"]
    if production:
        raise ConfigError("SECRET_KEY must be set when RENTPE_ENV=production")
    # Embedded default: generate once and keep it, so sessions survive restarts.
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def normalise_database_url(url):
    """Heroku-style `postgres://` URLs are accepted; SQLAlchemy wants `postgresql://`."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    return url


def _bool(environ, name, default):
    raw = (environ.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _choice(environ, name, choices, default):
    raw = (environ.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def from_environment(instance_path, environ=None):
    environ = os.environ if environ is None else environ
    production = environ.get("RENTPE_ENV", "development") == "production"
    database_url = environ.get("DATABASE_URL") or f"sqlite:///{Path(instance_path) / 'rentpe.db'}"
    max_photo_mb = _int(environ, "MAX_PHOTO_MB", 8)
    redis_url = environ.get("REDIS_URL") or None
    return {
        "ENV_NAME": "production" if production else "development",
        "SECRET_KEY": _secret_key(environ, instance_path, production),
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
        # Pooled connections are pinged after sitting idle, not on every checkout (database.py).
        # SQL parameters (message bodies, e-mail addresses) never appear in a log line or an error.
        "SQLALCHEMY_ENGINE_OPTIONS": {"hide_parameters": True},
        "REDIS_URL": redis_url,
        # A Redis Cluster instead (any of its nodes, host:port,host:port…): sharded pub/sub,
        # presence and rate limits on the cluster (realtime/cluster.py).
        "REDIS_CLUSTER_NODES": environ.get("REDIS_CLUSTER_NODES") or None,
        "HOST": environ.get("HOST", "127.0.0.1"),
        "PORT": _int(environ, "PORT", 5000),
        "UPLOAD_FOLDER": environ.get("UPLOAD_FOLDER") or str(Path(instance_path) / "uploads"),
        # One photo may be MAX_PHOTO_MB; a whole request carries at most 8 of them plus the form.
        "MAX_PHOTO_BYTES": max_photo_mb * 1024 * 1024,
        "MAX_PHOTOS_PER_LISTING": 8,
        "MAX_CONTENT_LENGTH": _int(environ, "MAX_UPLOAD_MB", 8 * max_photo_mb + 1) * 1024 * 1024,
        "MAX_FORM_MEMORY_SIZE": 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_NAME": "remember_token",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        # Also how long any log-in lasts on the server, remembered or not (accounts.UserSession).
        "REMEMBER_COOKIE_DURATION": timedelta(days=30),
        "PREFERRED_URL_SCHEME": "https" if production else "http",
        "WTF_CSRF_TIME_LIMIT": None,
        "SEARCH_PAGE_SIZE": 24,
        # Conversations per page of an inbox (the inbox, the seller's dashboard inbox).
        "INBOX_PAGE_SIZE": 30,
        # Behind a reverse proxy: how many proxies' X-Forwarded-For/-Proto to trust (0: none).
        "PROXY_FIX_HOPS": _int(environ, "PROXY_FIX_HOPS", 0),
        # Two years, the value the HSTS preload list asks for; only ever sent in production.
        "HSTS_MAX_AGE": 63072000 if production else 0,
        # Messages with phone numbers, e-mail or payment handles: "warn" (deliver with a safety
        # notice, flag for moderators) or "reject" (refuse in the composer). See chat/contact.py.
        "CONTACT_INFO_POLICY": _choice(environ, "CONTACT_INFO_POLICY", ("warn", "reject"), "warn"),
        # Booking requests and quotes not answered within this many hours expire (bookings/services.py).
        "BOOKING_EXPIRY_HOURS": _int(environ, "BOOKING_EXPIRY_HOURS", 48),
        # Rate limits (their values are in rentpe/ratelimits.py; the storage follows REDIS_URL).
        "RATELIMIT_ENABLED": _bool(environ, "RATELIMIT_ENABLED", True),
        # Namespaces the counters in a shared Redis.
        "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": environ.get("RATELIMIT_KEY_PREFIX") or "rentpe-limits"},
        # The event log's retention (rentpe/realtime/retention.py): events older than this many days
        # and beyond a user's newest STREAM_REPLAY_LIMIT are removed, by `flask events prune` and by
        # the notifications worker every EVENT_PRUNE_EVERY_S. A week covers a laptop closed over a
        # holiday; anyone away longer reloads (resync), which they would mostly do anyway.
        "EVENT_RETENTION_DAYS": _int(environ, "EVENT_RETENTION_DAYS", 7),
        "EVENT_PRUNE_EVERY_S": _int(environ, "EVENT_PRUNE_EVERY_S", 3600),
        # Requests: one access line each (rentpe/requestlog.py), as text or as JSON objects.
        "LOG_FORMAT": _choice(environ, "LOG_FORMAT", ("text", "json"), "text"),
        # Prometheus metrics (rentpe/metrics.py) on an address of their own, "host:port": unset, none.
        "METRICS_BIND": environ.get("METRICS_BIND") or None,
        # Missed-message e-mail (rentpe/notifications): how long a message waits unread before
        # it is e-mailed, the least time between two e-mails of one conversation, the hour (UTC)
        # of the daily digest, and the worker's claim, retry and polling settings.
        "NOTIFY_DELAY_S": _int(environ, "NOTIFY_DELAY_S", 300),
        "NOTIFY_BATCH_S": _int(environ, "NOTIFY_BATCH_S", 900),
        "NOTIFY_HOURLY_S": _int(environ, "NOTIFY_HOURLY_S", 3600),
        "NOTIFY_DIGEST_HOUR": _int(environ, "NOTIFY_DIGEST_HOUR", 3),
        "NOTIFY_LEASE_S": _int(environ, "NOTIFY_LEASE_S", 120),
        "NOTIFY_RETRY_S": _int(environ, "NOTIFY_RETRY_S", 30),
        "NOTIFY_RETRY_MAX_S": _int(environ, "NOTIFY_RETRY_MAX_S", 3600),
        "NOTIFY_CLAIM_SIZE": _int(environ, "NOTIFY_CLAIM_SIZE", 50),
        "NOTIFY_POLL_S": _int(environ, "NOTIFY_POLL_S", 5),
        # Where mail goes: an SMTP server (smtp://user:pass@host:587?tls=1, smtps://… for SSL);
        # unset, each e-mail is an .eml file under instance/mail/ (listed on /dev/mail).
        "MAIL_URL": environ.get("MAIL_URL") or None,
        "MAIL_FROM": environ.get("MAIL_FROM") or "RentPe <notifications@rentpe.test>",
        "MAIL_FILE_PATH": environ.get("MAIL_FILE_PATH") or str(Path(instance_path) / "mail"),
        # The address the links in e-mails point to (no request to take it from in the worker).
        "PUBLIC_URL": (environ.get("PUBLIC_URL")
                       or f"http://{environ.get('HOST', '127.0.0.1')}:{_int(environ, 'PORT', 5000)}").rstrip("/"),
    }
