"""Rules every request meets before any blueprint sees it, so bad input is a 404/400, never a 500.

- `<int:…>` in any route accepts only ids a database column can hold (1 … 2**31-1). Without this,
  `/listings/99999999999999999999` matches, and PostgreSQL ("integer out of range") or SQLite
  (Python int too large) fails inside the query. A number that can't be an id is simply not a URL.
- No text we accept may contain NUL: PostgreSQL refuses it in any string literal and no form field
  has a use for it. A query string, form field or path segment with NUL is a 400.
"""
from flask import abort, request
from werkzeug.routing import IntegerConverter

# PostgreSQL `integer` (our primary keys) is signed 32-bit.
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """The app's `int` converter: like Werkzeug's, but bounded by the id column's range."""

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=MAX_ID if max is None else max, signed=signed)


def _has_nul(values):
    return any("\x00" in value for value in values if isinstance(value, str))


def reject_nul_bytes():
    if _has_nul((request.view_args or {}).values()):
        abort(400)
    for multidict in (request.args, request.form):
        for key, values in multidict.lists():
            if "\x00" in key or _has_nul(values):
                abort(400)


def init_app(app):
    """Call before any blueprint is registered: rules compile their converters when added."""
    app.url_map.converters["int"] = IdConverter
    app.before_request(reject_nul_bytes)
