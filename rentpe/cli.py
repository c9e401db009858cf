"""Admin commands: `flask --app app users create …`, `flask --app app demo seed`,
`flask --app app bench-fixture …` and `bench-board-fixture …` (data for `bench/`).

A database that can't be reached (no such PostgreSQL database, no server at that address, a file
SQLite can't open) is said in one line, with what to do, by these commands, by `flask db upgrade`
(migrations/env.py) and by `python app.py` (serve.py), instead of a traceback.
"""
import re
from contextlib import contextmanager

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


def init_app(app):
    app.cli.add_command(users_cli)
    app.cli.add_command(demo_cli)
    from .bench import bench_board_fixture_command, bench_fixture_command

    app.cli.add_command(bench_fixture_command)
    app.cli.add_command(bench_board_fixture_command)
