"""RentPe: a rental marketplace with live buyer–seller chat.

`create_app` is the table of contents: configuration, extensions, blueprints, CLI.
"""
from pathlib import Path

from flask import Flask
from flask_login import current_user

from . import config, database
from .extensions import csrf, db, limiter, login_manager, migrate

ROOT = Path(__file__).resolve().parent.parent


def create_app(overrides=None):
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.from_mapping(config.from_environment(app.instance_path))
    app.config.from_mapping(overrides or {})
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    register_extensions(app)
    register_operations(app)
    register_request_rules(app)
    register_security(app)
    register_rate_limits(app)
    register_realtime(app)
    register_blueprints(app)
    register_template_helpers(app)
    register_errors(app)
    register_cli(app)
    return app


def register_extensions(app):
    from . import models  # noqa: F401  (the whole schema, for Alembic)

    db.init_app(app)
    migrate.init_app(
        app, db, directory=str(ROOT / "migrations"), render_as_batch=True, include_name=models.include_in_autogenerate
    )
    database.init_app(app)
    csrf.init_app(app)
    # Templates get the `current_user` proxy, not the loaded user: a fragment rendered for a live
    # stream (a receipt, a presence change) never needs the account of the request it runs in,
    # and Flask-Login's own context processor would load it (a query) for every render. A global,
    # set once, rather than a context processor run for every render (a message renders several
    # fragments).
    login_manager.init_app(app, add_context_processor=False)
    app.jinja_env.globals["current_user"] = current_user
    from .accounts.services import load_user_from_session

    login_manager.user_loader(load_user_from_session)
    login_manager.login_view = "accounts.login"
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"


def register_operations(app):
    """What the operator sees: probes, metrics, one log line per request."""
    from . import health, metrics, requestlog

    health.init_app(app)
    metrics.init_app(app)
    requestlog.init_app(app)


def register_request_rules(app):
    from . import request_rules

    request_rules.init_app(app)


def register_security(app):
    from . import security

    security.init_app(app)


def register_rate_limits(app):
    # The counters live where the pub/sub does: Redis across workers and hosts, else this process.
    app.config.setdefault("RATELIMIT_STORAGE_URI", _limits_storage(app.config))
    # Redis unreachable: keep limiting per process in memory rather than refuse every log-in.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    limiter.init_app(app)


def _limits_storage(config):
    if config.get("REDIS_CLUSTER_NODES"):  # one key per counter: any slot will do
        return "redis+cluster://" + ",".join(part.strip() for part in config["REDIS_CLUSTER_NODES"].split(","))
    return config.get("REDIS_URL") or "memory://"


def register_realtime(app):
    from . import realtime

    realtime.init_app(app)


def register_blueprints(app):
    from .accounts.routes import bp as accounts_bp
    from .bookings import events as booking_events
    from .bookings.routes import bp as bookings_bp
    from .chat import events as chat_events
    from .chat.boards import events as board_events
    from .chat.blocks import bp as blocks_bp
    from .chat.boards.routes import bp as boards_bp
    from .chat.routes import bp as chat_bp
    from .listings import events as listing_events
    from .listings.routes import bp as listings_bp
    from .moderation.admin import bp as admin_bp
    from .moderation.routes import bp as reports_bp
    from .notifications import mail
    from .notifications.routes import bp as notifications_bp
    from .realtime.stream import bp as realtime_bp

    app.register_blueprint(accounts_bp)
    app.register_blueprint(listings_bp)
    app.register_blueprint(realtime_bp)
    app.register_blueprint(chat_bp)
    app.register_blueprint(boards_bp)
    app.register_blueprint(blocks_bp)
    app.register_blueprint(bookings_bp)
    app.register_blueprint(reports_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(notifications_bp)
    mail.init_app(app)
    chat_events.init_app(app)
    board_events.init_app(app)
    booking_events.init_app(app)
    listing_events.init_app(app)


def register_template_helpers(app):
    from . import templating

    templating.init_app(app)


def register_errors(app):
    from . import errors

    errors.init_app(app)


def register_cli(app):
    from . import cli

    cli.init_app(app)
