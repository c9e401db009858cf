"""Request helpers every feature's routes share: is this an htmx request, where may a form send
the user next, and the numbers a URL carries.

Below the features (see .importlinter): a feature's routes import these from here, never from
another feature's routes.
"""
from urllib.parse import urlsplit

from flask import request


def is_htmx(headers=None):
    """True when htmx made the request (it sends `HX-Request: true` on every request it makes).
    `headers` defaults to the current request's."""
    return (request.headers if headers is None else headers).get("HX-Request") == "true"


def safe_next(default):
    """Only same-site relative paths are followed after log-in."""
    target = request.args.get("next") or request.form.get("next") or ""
    parts = urlsplit(target)
    if target.startswith("/") and not target.startswith("//") and not parts.netloc and "\\" not in target:
        return target
    return default


def int_arg(name):
    """The id-like number in query or form value `name`, or None (absent, not digits, too long)."""
    value = request.values.get(name, "")
    return int(value) if value.isdigit() and len(value) < 19 else None
