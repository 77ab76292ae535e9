"""Another local user cannot read the database or the secrets: the data dir is 0700, the
SQLite database and its write-ahead log 0600, also when they existed with wider modes.

Run as root, the check is the real one: a ``nobody`` process tries to read the files.
Otherwise the modes are what is checked.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
NOBODY = 65534
IS_ROOT = os.geteuid() == 0
COMPANIONS = ("-wal", "-shm")


@pytest.fixture
def open_parent() -> Iterator[Path]:
    """A directory every local user may enter (pytest's tmp dirs are 0700 for root): only
    the data dir's own modes can keep another user out."""
    parent = Path(tempfile.mkdtemp(prefix="salesbridge-modes-", dir="/tmp"))  # noqa: S108
    parent.chmod(0o755)
    yield parent
    shutil.rmtree(parent, ignore_errors=True)


def _salesbridge(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESBRIDGE_")}
    env["SALESBRIDGE_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [str(BIN / "salesbridge"), *args], env=env, cwd=data_dir.parent,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _as_nobody(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, user=NOBODY, group=NOBODY, capture_output=True, text=True,
        errors="replace", timeout=30, check=False,
    )  # fmt: skip


def _nobody_reads(path: Path) -> subprocess.CompletedProcess[str]:
    return _as_nobody("/usr/bin/head", "-c", "16", str(path))


def _assert_private(data_dir: Path, files: list[Path]) -> None:
    assert _mode(data_dir) == 0o700
    for path in files:
        assert _mode(path) == 0o600, path
    if IS_ROOT:
        for path in files:
            attempt = _nobody_reads(path)
            assert attempt.returncode != 0 and "Permission denied" in attempt.stderr, path
        listing = _as_nobody("/bin/ls", str(data_dir))
        assert listing.returncode != 0 and "Permission denied" in listing.stderr


def test_a_fresh_install_is_private(open_parent: Path) -> None:
    data_dir = open_parent / "data"
    init = _salesbridge(data_dir, "init")
    assert init.returncode == 0, init.stderr
    database = data_dir / "salesbridge.db"
    # In use, SQLite adds the write-ahead log and its index: they take the database's mode.
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("SELECT count(*) FROM user_account").fetchone()
        companions = [database.with_name(database.name + suffix) for suffix in COMPANIONS]
        secrets = [data_dir / name for name in ("secret_key", "encryption_key")]
        _assert_private(data_dir, [database, *companions, *secrets])


def test_wider_modes_of_an_existing_install_are_tightened_and_logged(open_parent: Path) -> None:
    data_dir = open_parent / "data"
    assert _salesbridge(data_dir, "db", "upgrade").returncode == 0
    database = data_dir / "salesbridge.db"
    files = [database, *(database.with_name(database.name + s) for s in COMPANIONS)]
    for path in files[1:]:
        path.touch()  # empty: SQLite ignores an empty log and index
    for path in files:
        path.chmod(0o644)  # as an older version (or a careless copy) left them
    data_dir.chmod(0o755)
    if IS_ROOT:
        assert _nobody_reads(database).returncode == 0  # the control: readable before

    upgrade = _salesbridge(data_dir, "db", "upgrade")

    assert upgrade.returncode == 0, upgrade.stderr
    tightened = [
        line for line in upgrade.stderr.splitlines() if "file_permissions_tightened" in line
    ]
    assert len(tightened) == 1 + len(files), upgrade.stderr
    assert all("old_mode=0o644" in line or "old_mode=0o755" in line for line in tightened)
    with sqlite3.connect(database) as connection:  # the log and index exist while in use
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("SELECT count(*) FROM user_account").fetchone()
        _assert_private(data_dir, files)
