"""``salesbridge user ...`` and ``salesbridge key ...``: users, roles and access keys.

A secret a command creates (a password, an access key) is the only thing on stdout, so
``KEY=$(salesbridge key new crm)`` works; everything said to people goes to stderr.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import typer

from app.cli.runtime import open_session, plural, run, say, settings
from app.command_lines import command_line

user_cli = typer.Typer(help="Users and their roles.", no_args_is_help=True)
key_cli = typer.Typer(help="Web service access keys (shown once).", no_args_is_help=True)


class RoleName(StrEnum):
    """The roles, listed here so ``--help`` does not import the models to name them."""

    integration_admin = "integration-admin"
    integration_user = "integration-user"
    product_availability = "product-availability"


UserNameArgument = Annotated[
    str, typer.Argument(metavar="USER", help="The user name.", show_default=False)
]
RolesOption = Annotated[
    list[RoleName],
    typer.Option(
        "--role",
        metavar="ROLE",
        show_default=False,
        help="integration-admin, integration-user or product-availability (repeat for several).",
    ),
]
ExpiryOption = Annotated[
    int | None,
    typer.Option(min=1, metavar="DAYS", help="Days until the key expires (default: never)."),
]


def new_password() -> str:
    import secrets

    return secrets.token_urlsafe(18)


@user_cli.command("create")
def user_create(
    user_name: UserNameArgument,
    roles: RolesOption,
    full_name: Annotated[
        str, typer.Option(metavar="TEXT", help="Full name.", show_default=False)
    ] = "",
    email: Annotated[
        str, typer.Option(metavar="ADDRESS", help="E-mail address.", show_default=False)
    ] = "",
    *,
    key_only: Annotated[
        bool, typer.Option("--key-only", help="No password: sign in with access keys only.")
    ] = False,
) -> None:
    """Create a user (prints its password once)."""
    from app.auth import users
    from app.models.security import Role

    password = None if key_only else new_password()

    async def create() -> None:
        async with open_session(settings()) as session:
            await users.create_user(
                session,
                user_name=user_name,
                roles=[Role(role.value) for role in roles],
                password=password,
                full_name=full_name,
                email=email,
            )

    run(create())
    roles_text = ", ".join(role.value for role in roles)
    if password is None:
        say(
            f"Created user '{user_name}' ({roles_text}); give it a key: "
            f"`{command_line(f'key new {user_name}')}`."
        )
        return
    say(f"Created user '{user_name}' ({roles_text}). Its password, shown only now:")
    typer.echo(password)


@user_cli.command("list")
def user_list() -> None:
    """List users: state, sign-in, roles."""
    from app.auth import users

    async def load() -> list[tuple[str, str, str, str, str]]:
        async with open_session(settings()) as session:
            return [
                (u.user_name, str(u.state), "password" if u.password_hash else "keys only",
                 u.roles, u.full_name)
                for u in await users.list_users(session)
            ]  # fmt: skip

    rows = run(load())
    width = max([len(row[0]) for row in rows] + [9])
    typer.echo(f"{'USER NAME':<{width}}  {'STATE':<8}  {'SIGN-IN':<9}  ROLES")
    for user_name, state, sign_in, roles, full_name in rows:
        suffix = f"  ({full_name})" if full_name else ""
        typer.echo(f"{user_name:<{width}}  {state:<8}  {sign_in:<9}  {roles}{suffix}")


@user_cli.command("disable")
def user_disable(user_name: UserNameArgument) -> None:
    """Disable a user (sign-in, tokens, keys stop).

    Sign-in, its tokens and its access keys stop working at once.
    """
    from app.auth import users

    async def disable() -> None:
        async with open_session(settings()) as session:
            await users.disable_user(session, user_name=user_name)

    run(disable())
    say(f"Disabled user '{user_name}'.")


@user_cli.command("enable")
def user_enable(user_name: UserNameArgument) -> None:
    """Enable a disabled user again."""
    from app.auth import users

    async def enable() -> None:
        async with open_session(settings()) as session:
            await users.enable_user(session, user_name=user_name)

    run(enable())
    say(f"Enabled user '{user_name}'.")


@user_cli.command("delete")
def user_delete(user_name: UserNameArgument) -> None:
    """Delete a user and its access keys.

    Refused for the last enabled admin and for the connection's OData user.
    """
    from app.auth import users

    async def delete() -> int:
        async with open_session(settings()) as session:
            return await users.delete_user(session, user_name=user_name)

    keys = run(delete())
    say(f"Deleted user '{user_name}' and its {plural(keys, 'access key')}.")


@user_cli.command("reset-password")
def user_reset_password(user_name: UserNameArgument) -> None:
    """Give a user a new password (shown once)."""
    from app.auth import users

    password = new_password()

    async def reset() -> None:
        async with open_session(settings()) as session:
            await users.set_password(session, user_name=user_name, password=password)

    run(reset())
    say(f"New password for '{user_name}', shown only now:")
    typer.echo(password)


def _issue_key(user_name: str, expires_in_days: int | None, *, is_rotation: bool) -> None:
    from datetime import timedelta

    from app.auth import user_keys
    from app.clock import utc_now
    from app.connection import odata_keys

    config = settings()
    expires_at = utc_now() + timedelta(days=expires_in_days) if expires_in_days else None

    async def create() -> tuple[str, str]:
        async with open_session(config) as session:
            if is_rotation:  # the CRM's own key follows when this is the OData user
                _row, key, outcome = await odata_keys.rotate_key(
                    session, config, user_name=user_name, expires_at=expires_at
                )
                return key, "" if outcome.action == "unaffected" else outcome.message
            _row, key = await user_keys.create_key(
                session, config, user_name=user_name, expires_at=expires_at
            )
        return key, ""

    key, crm_note = run(create())
    what = "replaces all earlier keys" if is_rotation else "works next to any earlier keys"
    if crm_note:
        say(crm_note)
    say(f"New access key for '{user_name}' ({what}), shown only now:")
    typer.echo(key)


@key_cli.command("new")
def key_new(user_name: UserNameArgument, expires_in_days: ExpiryOption = None) -> None:
    """Issue an access key for a user (shown once)."""
    _issue_key(user_name, expires_in_days, is_rotation=False)


@key_cli.command("rotate")
def key_rotate(user_name: UserNameArgument, expires_in_days: ExpiryOption = None) -> None:
    """Replace a user's keys with one new key."""
    _issue_key(user_name, expires_in_days, is_rotation=True)


@key_cli.command("revoke")
def key_revoke(user_name: UserNameArgument) -> None:
    """Revoke every access key of a user."""
    from app.connection import odata_keys

    async def revoke() -> tuple[int, odata_keys.CrmKeyOutcome]:
        async with open_session(settings()) as session:
            return await odata_keys.revoke_keys(session, user_name=user_name)

    count, outcome = run(revoke())
    say(f"Revoked {plural(count, 'access key')} of '{user_name}'.")
    if outcome.action != "unaffected":
        say(f"Warning: {outcome.message}")


@key_cli.command("list")
def key_list(user_name: UserNameArgument) -> None:
    """List a user's access keys (never the keys).

    The key id is the part after sbk_; with the dates and the state of each key.
    """
    from app.auth import user_keys
    from app.clock import utc_now

    async def load() -> list[tuple[str, ...]]:
        async with open_session(settings()) as session:
            rows = await user_keys.list_keys(session, user_name=user_name)
        now = utc_now()
        return [
            (row.key_id, _minute(row.created_at), _minute(row.expires_at) or "never",
             _minute(row.last_used_at) or "never",
             "revoked" if row.revoked_at else "expired" if row.expires_at and row.expires_at <= now
             else "active")
            for row in rows
        ]  # fmt: skip

    rows = run(load())
    if not rows:
        issue = command_line(f"key new {user_name}")
        say(f"'{user_name}' has no access keys; issue one: `{issue}`.")
        return
    width = max(len(row[0]) for row in rows)
    typer.echo(f"{'KEY ID':<{width}}  {'CREATED':<16}  {'EXPIRES':<16}  {'LAST USED':<16}  STATE")
    for key_id, created, expires, used, state in rows:
        typer.echo(f"{key_id:<{width}}  {created:<16}  {expires:<16}  {used:<16}  {state}")


def _minute(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""
