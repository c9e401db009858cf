"""Admin commands: `flask --app app users create …`, `flask --app app demo seed`, `events prune`,
`events after-restore`,
`flask --app app bench-fixture …` and `bench-board-fixture …` (data for `bench/`).

A database that can't be reached (no such PostgreSQL database, no server at that address, a file
SQLite can't open) is said in one line, with what to do, by these commands, by `flask db upgrade`
(migrations/env.py) and by `python app.py` (serve.py), instead of a traceback.
"""
import re
from contextlib import contextmanager
from datetime import timezone

import click
from flask.cli import AppGroup
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

_MISSING_DATABASE = re.compile(r'database "(?P<name>[^"]+)" does not exist')


class DatabaseUnavailable(click.ClickException):
    """The database of DATABASE_URL can't be used; the message says why and what to do."""


def database_problem(url, error):
    """One line for an `OperationalError` raised while connecting to `url`, or None when `error`
    is not about connecting (it came from a statement: a real error, shown as one)."""
    if not isinstance(error, OperationalError) or error.statement is not None:
        return None
    url = make_url(url)
    shown = url.render_as_string(hide_password=True)
    reason = str(error.orig).strip().splitlines()[0] if str(error.orig).strip() else "no reason given"
    reason = reason.split(" failed: ", 1)[-1].removeprefix("FATAL:").strip()
    if url.get_backend_name() == "sqlite":
        return f"cannot open the database at {shown}: {reason}"
    missing = _MISSING_DATABASE.search(reason)
    if missing:
        command = ["createdb"]
        if url.host:
            command += ["-h", url.host]
        if url.port and url.port != 5432:
            command += ["-p", str(url.port)]
        if url.username:
            command += ["-U", url.username]
        command.append(missing["name"])
        return f'database "{missing["name"]}" does not exist: create it first with: {" ".join(command)}'
    if "FATAL" in str(error.orig):  # the server answered, and refused
        return f"cannot use the database at {shown}: {reason} (check DATABASE_URL)"
    return f"cannot reach the database at {shown}: {reason} (is PostgreSQL running there? check DATABASE_URL)"


@contextmanager
def reaching_the_database(url=None):
    """Turn a failure to connect to `url` (default: the app's database) inside the block into
    `DatabaseUnavailable`."""
    if url is None:
        from flask import current_app

        url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    try:
        yield
    except OperationalError as exc:
        problem = database_problem(url, exc)
        if problem is None:
            raise
        raise DatabaseUnavailable(problem) from None


users_cli = AppGroup("users", help="Manage user accounts.")
demo_cli = AppGroup("demo", help="Demo data for the embedded default.")
notifications_cli = AppGroup("notifications", help="Missed-message e-mail.")


@users_cli.command("create")
@click.argument("email")
@click.option("--password", required=True, help="The account's password (at least 8 characters).")
@click.option("--name", default=None, help="Display name (default: the part of the e-mail before @).")
@click.option("--seller", is_flag=True, help="Also give the account a seller profile.")
@click.option("--moderator", is_flag=True, help="Give the account the moderator role.")
def create_user_command(email, password, name, seller, moderator):
    from .accounts import services

    if len(password) < 8:
        raise click.BadParameter("must be at least 8 characters", param_hint="--password")
    with reaching_the_database():
        try:
            user = services.create_user(email, password, name, moderator=moderator)
        except services.AccountError as exc:
            raise click.ClickException(str(exc)) from exc
        if seller:
            services.become_seller(user, shop_name=f"{user.display_name}'s shop", city="Mumbai")
    roles = [r for r, on in (("seller", seller), ("moderator", moderator)) if on]
    click.echo(f"Created {user.email} (id {user.id}){' as ' + ', '.join(roles) if roles else ''}.")


@demo_cli.command("seed")
def seed_command():
    """Fill an empty database with the demo accounts and listings (does nothing otherwise)."""
    from . import demo

    with reaching_the_database():
        created = demo.seed_if_empty()
    click.echo("Seeded the demo data." if created else "The database already has users; nothing seeded.")
    click.echo(demo.logins_text())


bookings_cli = AppGroup("bookings", help="Booking requests and quotes.")


@bookings_cli.command("expire")
@click.option("--now", "now_text", default=None, metavar="YYYY-MM-DDTHH:MM",
              help="Expire as of this moment (UTC) instead of the clock's: for tests and for catching up.")
def expire_bookings_command(now_text):
    """Expire every request and quote left unanswered past BOOKING_EXPIRY_HOURS (run it every few
    minutes, e.g. from cron). Each expired card updates in both people's open tabs."""
    from datetime import datetime

    from .bookings import services

    try:
        now = datetime.fromisoformat(now_text) if now_text else None
    except ValueError:
        raise click.BadParameter("must be a date and time like 2026-12-14T09:30", param_hint="--now") from None
    if now is not None and now.tzinfo is not None:
        now = now.astimezone(timezone.utc).replace(tzinfo=None)
    with reaching_the_database():
        count = services.expire_due(now)
    click.echo(f"Expired {count} booking request{'' if count == 1 else 's'} or quote{'' if count == 1 else 's'}.")


chat_cli = AppGroup("chat", help="Conversations and event boards.")


@chat_cli.command("purge-deleted")
@click.option("--now", "now_text", default=None, metavar="YYYY-MM-DDTHH:MM",
              help="Purge as of this moment (UTC) instead of the clock's: for tests and for catching up.")
def purge_deleted_command(now_text):
    """Remove what deleted messages said (text, earlier texts, reactions, photos) once they were
    deleted 30 days ago: kept that long for moderators. Run it daily, e.g. from cron."""
    from .chat import changes

    now = _parse_now(now_text)
    with reaching_the_database():
        count = changes.purge_deleted(now)
    click.echo(f"Purged {count} deleted message{'' if count == 1 else 's'}.")


def _parse_now(now_text):
    from datetime import datetime

    try:
        now = datetime.fromisoformat(now_text) if now_text else None
    except ValueError:
        raise click.BadParameter("must be a date and time like 2026-12-14T09:30", param_hint="--now") from None
    if now is not None and now.tzinfo is not None:
        now = now.astimezone(timezone.utc).replace(tzinfo=None)
    return now


@notifications_cli.command("run")
@click.option("--once", is_flag=True, help="Send what is due now, then stop (default: keep polling).")
def notifications_run_command(once):
    """Send the missed-message e-mails that are due, retrying a failing mail server with backoff.
    Several may run at once (on PostgreSQL): none sends what another claimed."""
    from flask import current_app

    from .notifications import worker

    if current_app.config.get("METRICS_BIND") and not once:  # its own process: its own address
        from . import metrics

        metrics.serve(current_app.config["METRICS_BIND"])
    with reaching_the_database():
        worker.run(once=once, echo=click.echo)


events_cli = AppGroup("events", help="The stream event log.")


@events_cli.command("prune")
@click.option("--days", type=click.IntRange(min=0), default=None,
              help="Keep events newer than this many days (default: EVENT_RETENTION_DAYS).")
def events_prune_command(days):
    """Remove the events no client can replay any more: older than EVENT_RETENTION_DAYS and not
    among their user's newest STREAM_REPLAY_LIMIT. In small batches; safe while the app runs."""
    from flask import current_app

    from . import realtime

    config = current_app.config
    with reaching_the_database():
        removed = realtime.prune_events(config["EVENT_RETENTION_DAYS"] if days is None else days,
                                        config["STREAM_REPLAY_LIMIT"])
    click.echo(f"Removed {removed} event{'' if removed == 1 else 's'}.")


@events_cli.command("after-restore")
@click.option("--gap", type=click.IntRange(min=1), default=1_000_000, show_default=True,
              help="How far to move every counter: more than any user's events since the backup.")
def events_after_restore_command(gap):
    """Run once after restoring a backup, before the app takes traffic again: every user's next
    seq jumps past any a client saw before the restore, so none is handed out twice."""
    from . import realtime

    with reaching_the_database():
        moved = realtime.skip_seqs(gap)
    click.echo(f"Moved {moved} counter{'' if moved == 1 else 's'} {gap} seqs forward.")


def init_app(app):
    app.cli.add_command(events_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(bookings_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(notifications_cli)
    app.cli.add_command(chat_cli)
    from .bench import bench_board_fixture_command, bench_fixture_command

    app.cli.add_command(bench_fixture_command)
    app.cli.add_command(bench_board_fixture_command)
