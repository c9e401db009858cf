"""RentPe entry point.

`app` is what gunicorn (`app:app`) and the Flask CLI (`flask --app app …`) load.
`python app.py` serves the embedded default: SQLite + in-process broker on a gevent server.
"""
if __name__ == "__main__":
    # gevent must patch the standard library before anything else imports sockets or threads.
    from gevent import monkey

    monkey.patch_all()

from rentpe import create_app

app = create_app()

if __name__ == "__main__":
    from rentpe.serve import serve

    serve(app)
