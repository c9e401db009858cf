"""The embedded default's server: one gevent process (streams are cheap greenlets)."""
import sys

from gevent.pywsgi import WSGIServer


def serve(app):
    from . import demo

    host, port = app.config["HOST"], app.config["PORT"]
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
    print(demo.logins_text(), flush=True)
    print(f"RentPe is running on http://{host}:{port}/  (Ctrl+C stops it)", flush=True)
    server = WSGIServer((host, port), app, log=sys.stdout if app.debug else None)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop(timeout=2)
