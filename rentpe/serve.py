"""The embedded default's server: one gevent process (streams are cheap greenlets), which also
runs the missed-message e-mail worker (rentpe/notifications/worker.py) as a greenlet. In
production the worker is its own process: `flask --app app notifications run`."""
import sys

import gevent
from gevent.event import Event
from gevent.pywsgi import WSGIServer


def serve(app):
    from . import demo

    host, port = app.config["HOST"], app.config["PORT"]
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
    check_database(app)
    print(demo.logins_text(), flush=True)
    print(f"RentPe is running on http://{host}:{port}/  (Ctrl+C stops it)", flush=True)
    if app.config.get("METRICS_BIND"):
        from . import metrics

        metrics.serve(app.config["METRICS_BIND"])
        print(f"Metrics on http://{app.config['METRICS_BIND']}/metrics", flush=True)
    server = WSGIServer((host, port), app, log=sys.stdout if app.debug else None)
    stop = Event()
    notifier = gevent.spawn(notifications_worker, app, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop(timeout=2)
    finally:
        stop.set()
        notifier.join(timeout=5)


def notifications_worker(app, stop):
    from .notifications import worker

    where = "MAIL_URL" if app.config.get("MAIL_URL") else app.config["MAIL_FILE_PATH"]
    print(f"Missed-message e-mail: the worker runs in this process, mail goes to {where}", flush=True)
    with app.app_context():
        worker.run(stop=stop, handle_signals=False, echo=lambda line: print(line, flush=True))


def check_database(app):
    """Connect once before serving: a database that can't be reached ends the start-up with one
    line saying what to do (rentpe/cli.py), rather than a traceback on every request."""
    from .cli import DatabaseUnavailable, reaching_the_database
    from .extensions import db

    with app.app_context():
        try:
            with reaching_the_database(), db.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")  # the server answers, not only the socket
        except DatabaseUnavailable as exc:
            print(f"Error: {exc.message}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
