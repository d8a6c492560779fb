"""``fupin token create|list|revoke``: the tokens of the platform's roles (fupin.auth)."""

from __future__ import annotations

import click

from fupin import auth
from fupin.cli import settings_from


@click.group()
def token() -> None:
    """Create, list and revoke access tokens (stored hashed in <data_dir>/tokens.json)."""


@token.command()
@click.option("--role", required=True, help="operator, analyst, dashboard or department:<name>.")
@click.option("--name", default=None, help="A name to know the token by (default: the role).")
@click.pass_context
def create(ctx: click.Context, role: str, name: str | None) -> None:
    """Create a token and print it once: only its hash is kept."""
    try:
        record, secret = auth.create_token(settings_from(ctx), role, name)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"token {record.id} ({record.name}, role {record.role}); shown once, keep it safe:", err=True)
    click.echo(secret)


@token.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List the tokens: id, name, role, creation time (never the token)."""
    for r in auth.list_tokens(settings_from(ctx)):
        click.echo(f"{r.id}  {r.role:<28} {r.name:<24} {r.created_at}")


@token.command()
@click.argument("id_or_name")
@click.pass_context
def revoke(ctx: click.Context, id_or_name: str) -> None:
    """Revoke the tokens with this id or name; they stop working at once."""
    gone = auth.revoke_token(settings_from(ctx), id_or_name)
    if not gone:
        raise click.ClickException(f"no token with id or name {id_or_name!r}")
    for r in gone:
        click.echo(f"revoked {r.id} ({r.name}, role {r.role})")
