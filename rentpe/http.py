"""Request helpers every feature's routes share: is this an htmx request, where may a form send
the user next, and the numbers a URL carries.

Below the features (see .importlinter): a feature's routes import these from here, never from
another feature's routes.
"""
import unicodedata
from urllib.parse import urlsplit

from flask import request


def is_htmx(headers=None):
    """True when htmx made the request (it sends `HX-Request: true` on every request it makes).
    `headers` defaults to the current request's."""
    return (request.headers if headers is None else headers).get("HX-Request") == "true"


def is_local_path(target):
    """A same-site path: starts with one `/`, names no other host, and has no control character
    (CR/LF would split the Location header; browsers drop tabs and newlines, turning `/\t/evil`
    into `//evil`) and no backslash (which browsers read as `/`)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return False
    if any(unicodedata.category(ch) == "Cc" for ch in target):
        return False
    return not urlsplit(target).netloc


def safe_next(default):
    """Only same-site relative paths are followed after log-in (or any form's `next`)."""
    target = request.args.get("next") or request.form.get("next") or ""
    return target if is_local_path(target) else default


def int_arg(name):
    """The id-like number in query or form value `name`, or None (absent, not digits, too long)."""
    value = request.values.get(name, "")
    return int(value) if value.isdigit() and len(value) < 19 else None
