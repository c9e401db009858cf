"""RentPe with features taken away, to measure what each one costs under the same load as the
whole app and the peer. A bench tool only: never deployed, nothing in the product imports it.

    python bench/run_load.py --server gunicorn,gunicorn-no-receipts,gunicorn-bare,peer ...

`bench/servers.py` runs it as `gunicorn -c deploy/gunicorn.conf.py bench.stripped:app` with
`RENTPE_BENCH_WITHOUT` (comma-separated) naming what is taken away:

- `receipts`: no delivery hook. A message reaching its recipient's stream moves no delivery
  cursor and sends its sender no receipt (the peer has none).
- `html`: a new message's stream events and the send's answer are one bare
  `<li id="msg-…"><div class="msg-body">…</div></li>`, what the load generator looks for, instead
  of the templates (the inbox row, the message, its receipt, the unread badge; the answer's fresh
  composer). The message is the one the send just stored, from the session: no query either.

Everything else (the HTTP request, log-in, CSRF, the guard, the send's SQL, the stream's event
log, replay and the Redis publish) is the app's own.
"""
import os

import flask
from markupsafe import escape

from app import app
from rentpe.chat import events, routes
from rentpe.chat.models import Message
from rentpe.extensions import db
from rentpe.realtime import registry

KNOWN = {"receipts", "html"}
WITHOUT = {name.strip() for name in os.environ.get("RENTPE_BENCH_WITHOUT", "").split(",") if name.strip()}
if WITHOUT - KNOWN:
    raise SystemExit(f"RENTPE_BENCH_WITHOUT: unknown {', '.join(sorted(WITHOUT - KNOWN))}"
                     f" (known: {', '.join(sorted(KNOWN))})")


def bare(message):
    return f'<li id="msg-{message.id}"><div class="msg-body">{escape(message.body)}</div></li>'


def bare_message_events(stream_events):
    return [bare(db.session.get(Message, event.data["message_id"])) for event in stream_events]


def render_template(name, **context):
    if name == "chat/sent.html":
        return bare(context["message"])
    return flask.render_template(name, **context)


if "receipts" in WITHOUT:
    registry.delivery_hooks.pop(events.MESSAGE, None)

if "html" in WITHOUT:
    registry.register_renderer(events.MESSAGE, lambda event: bare_message_events([event])[0],
                               many=bare_message_events)
    routes.render_template = render_template  # what the send's view calls for its answer

__all__ = ["app"]
