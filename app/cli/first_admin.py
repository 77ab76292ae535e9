"""The first integration-admin that ``serve`` and ``demo`` create, and where its password goes.

The password is shown once and never through the log stream: stdout and stderr of a
service end up in a journal or a container log that others read. With a terminal it is
written to the terminal itself (``/dev/tty``), framed, apart from the log lines even when
stdout and stderr are redirected; without one it goes to a file in the data dir that only
this account may read, and the log says where.
"""

from __future__ import annotations

import os
import secrets
from typing import TYPE_CHECKING

from app.command_lines import command_line

if TYPE_CHECKING:
    from pathlib import Path

    from app.settings import Settings

FIRST_ADMIN = "admin"
PASSWORD_FILE = "first-admin-password"  # noqa: S105 - a file name
TERMINAL = "/dev/tty"
_RULE = "=" * 72


def new_password() -> str:
    return secrets.token_urlsafe(18)


async def create_first_admin(settings: Settings, *, user_name: str = FIRST_ADMIN) -> str | None:
    """The first integration-admin with a generated password, or None when users exist."""
    from sqlalchemy.exc import IntegrityError

    from app.auth import users
    from app.db import create_engine, create_sessionmaker, session_scope
    from app.errors import ConflictError
    from app.models.security import Role

    password = new_password()
    engine = create_engine(settings.database_url)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            if await users.count_users(session) > 0:
                return None
            await users.create_user(
                session, user_name=user_name, roles=[Role.integration_admin], password=password
            )
    except (ConflictError, IntegrityError):
        return None  # another process created the first user at the same moment
    finally:
        await engine.dispose()
    return password


def _framed(settings: Settings, user_name: str, password: str) -> str:
    reset = command_line(f"user reset-password {user_name}")
    return (
        f"\n{_RULE}\nCreated the first user '{user_name}' (integration-admin). Its password, "
        f"shown only now:\n\n    {password}\n\nSign in to the web console at "
        f"{settings.public_url}/ or for the API: POST {settings.public_url}/api/v1/auth/token "
        f"(form fields username, password). Lost it? `{reset}`.\n{_RULE}\n\n"
    )


def _to_terminal(text: str) -> bool:
    try:
        with open(TERMINAL, "w") as terminal:  # noqa: PTH123 - a device, not a path to build
            terminal.write(text)
    except OSError:
        return False  # no controlling terminal: a service manager, a container, a pipe
    return True


def _to_file(settings: Settings, password: str) -> Path:
    from app.file_modes import PRIVATE_FILE

    path = settings.data_dir / PASSWORD_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return path


def announce_first_admin(settings: Settings, user_name: str, password: str) -> None:
    """Show the password once: on the terminal, else in a private file (the log says where)."""
    if _to_terminal(_framed(settings, user_name, password)):
        return
    from app.logs import get_logger

    path = _to_file(settings, password)
    reset = command_line(f"user reset-password {user_name}")
    get_logger("salesbridge.first_admin").warning(
        "first_admin_created",
        user_name=user_name,
        where=str(path),
        hint="read it, sign in, then delete the file (it is readable by this account only); "
        f"lost it? `{reset}`",
    )
