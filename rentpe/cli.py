"""Admin commands: `flask --app app users create …`, `flask --app app demo seed`,
`flask --app app bench-fixture …` and `bench-board-fixture …` (data for `bench/`)."""
import click
from flask.cli import AppGroup

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

    created = demo.seed_if_empty()
    click.echo("Seeded the demo data." if created else "The database already has users; nothing seeded.")
    click.echo(demo.logins_text())


def init_app(app):
    app.cli.add_command(users_cli)
    app.cli.add_command(demo_cli)
    from .bench import bench_board_fixture_command, bench_fixture_command

    app.cli.add_command(bench_fixture_command)
    app.cli.add_command(bench_board_fixture_command)
