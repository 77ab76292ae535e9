"""The admin commands (db, init, user, key, worker) run in-process against a fresh data dir."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlmodel import col, select
from typer.testing import CliRunner

from app.auth import access_keys, passwords
from app.cli import cli
from app.db import create_engine, create_sessionmaker
from app.models.security import User, WebServiceAccessKey
from app.settings import get_settings

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Only SALESBRIDGE_DATA_DIR set: the defaults (SQLite in the data dir) apply."""
    for name in list(os.environ):
        if name.startswith("SALESBRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SALESBRIDGE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


def invoke(*args: str) -> Result:
    return runner.invoke(cli, list(args))


def ok(*args: str) -> Result:
    result = invoke(*args)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result


async def _query(statement: Any) -> list[Any]:
    engine = create_engine(get_settings().database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return list((await session.exec(statement)).all())
    finally:
        await engine.dispose()


def query(statement: Any) -> list[Any]:
    return asyncio.run(_query(statement))


def test_db_upgrade_creates_the_database_in_the_data_dir(data_dir: Path) -> None:
    assert "up to date" in ok("db", "upgrade").stderr
    with sqlite3.connect(data_dir / "salesbridge.db") as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"job_queue_entry", "user_account", "item", "alembic_version"} <= tables
    ok("db", "upgrade")  # a second run changes nothing and succeeds


def test_db_upgrade_on_the_configured_database(
    data_dir: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALESBRIDGE_DATABASE_URL", database_url)
    assert "up to date" in ok("db", "upgrade").stderr


def test_init_creates_the_first_admin_once(data_dir: Path) -> None:
    result = ok("init")
    password = result.stdout.strip()
    assert len(password) >= 12 and "\n" not in password
    [admin] = query(select(User))
    assert (admin.user_name, admin.roles) == ("admin", "integration-admin")
    assert passwords.verify_password(password, admin.password_hash)
    again = invoke("init")
    assert again.exit_code == 1 and "has users already" in again.stderr


def test_user_create_list_disable_enable_and_reset_password(data_dir: Path) -> None:
    ok("db", "upgrade")
    created = ok(
        "user", "create", "alice", "--role", "integration-user", "--role", "product-availability",
        "--full-name", "Alice Liddell",
    )  # fmt: skip
    first_password = created.stdout.strip()
    listing = ok("user", "list").stdout
    assert "alice" in listing and "enabled" in listing
    assert "integration-user,product-availability" in listing and "Alice Liddell" in listing

    ok("user", "disable", "alice")
    assert "disabled" in ok("user", "list").stdout
    ok("user", "enable", "alice")
    assert "disabled" not in ok("user", "list").stdout

    second_password = ok("user", "reset-password", "alice").stdout.strip()
    [alice] = query(select(User).where(User.user_name == "alice"))
    assert passwords.verify_password(second_password, alice.password_hash)
    assert not passwords.verify_password(first_password, alice.password_hash)

    duplicate = invoke("user", "create", "ALICE", "--role", "integration-user")
    assert duplicate.exit_code == 1 and "already exists" in duplicate.stderr
    ghost = invoke("user", "disable", "ghost")
    assert ghost.exit_code == 1 and "does not exist" in ghost.stderr
    assert invoke("user", "create", "bob", "--role", "superuser").exit_code == 2
    assert invoke("user", "create", "bob").exit_code == 2  # a role is required
    assert [u.user_name for u in query(select(User))] == ["alice"]


def test_key_new_rotate_and_revoke(data_dir: Path) -> None:
    ok("db", "upgrade")
    created = ok("user", "create", "crm", "--role", "product-availability", "--key-only")
    assert created.stdout == ""
    pepper = get_settings().access_key_pepper.get_secret_value()

    first = ok("key", "new", "crm", "--expires-in-days", "30").stdout.strip()
    [row] = query(select(WebServiceAccessKey))
    assert access_keys.key_matches(pepper, first, row.key_digest)
    assert row.expires_at is not None

    second = ok("key", "rotate", "crm").stdout.strip()
    assert second != first and second.startswith("sbk_")
    rows = query(select(WebServiceAccessKey).order_by(col(WebServiceAccessKey.id)))
    assert [r.revoked_at is None for r in rows] == [False, True]
    assert access_keys.key_matches(pepper, second, rows[1].key_digest)

    assert "Revoked 1 access key of" in ok("key", "revoke", "crm").stderr
    assert all(r.revoked_at is not None for r in query(select(WebServiceAccessKey)))
    ghost = invoke("key", "new", "ghost")
    assert ghost.exit_code == 1 and "does not exist" in ghost.stderr
    assert invoke("key", "new", "crm", "--expires-in-days", "0").exit_code == 2


def test_worker_without_any_redis_says_what_to_do(data_dir: Path) -> None:
    result = invoke("worker")
    assert result.exit_code == 1
    assert "SALESBRIDGE_REDIS_URL" in result.stderr and "salesbridge serve" in result.stderr


def test_serve_wants_both_tls_files(data_dir: Path, tmp_path: Path) -> None:
    result = invoke("serve", "--ssl-certfile", str(tmp_path / "cert.pem"))
    assert result.exit_code == 1 and "--ssl-keyfile" in result.stderr


def test_a_command_on_a_database_without_schema_says_to_upgrade(data_dir: Path) -> None:
    result = invoke("user", "list")
    assert result.exit_code == 1 and "salesbridge db upgrade" in result.stderr


def test_sandbox_takes_a_file_or_memory_not_both(data_dir: Path, tmp_path: Path) -> None:
    result = invoke("sandbox", "--db", str(tmp_path / "crm.db"), "--memory")
    assert result.exit_code == 1 and "not both" in result.stderr
