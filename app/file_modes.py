"""Private files on disk: the data dir is 0700, the SQLite database and its companions 0600.

The database holds password hashes and every ERP row, and the data dir holds the
signing secret and the encryption key: no other local user may read them. Directories
and files we create get these modes from the start; ones that already exist with wider
modes are tightened, and the change is logged so an operator sees it happened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

from app.logs import get_logger

log = get_logger("salesbridge.file_modes")

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
# SQLite creates the write-ahead log and the shared-memory index with the mode of the
# database file, so a 0600 database gives 0600 companions; older ones are tightened too.
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def tighten(path: Path, mode: int) -> None:
    """Remove every permission bit beyond ``mode``; log when that changed anything."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & ~mode == 0:
        return
    os.chmod(path, current & mode)
    log.warning(
        "file_permissions_tightened",
        path=str(path),
        old_mode=oct(current),
        new_mode=oct(current & mode),
    )


def _is_shared_dir(path: Path) -> bool:
    """A sticky directory (like /tmp) is shared on purpose; it is never ours to close."""
    return bool(path.stat().st_mode & stat.S_ISVTX)


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) as 0700, or tighten it if it exists."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    if _is_shared_dir(path):
        log.warning("data_dir_is_shared", path=str(path), hint="use a directory of its own")
        return
    tighten(path, PRIVATE_DIR)


def sqlite_path(database_url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases and in-memory ones."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    if url.query.get("mode") == "memory" or str(url.database).startswith("file::memory:"):
        return None
    return Path(str(url.database))


def make_private_sqlite(database_url: str) -> None:
    """Create the SQLite file as 0600 before SQLite does (it would use the umask)."""
    path = sqlite_path(database_url)
    if path is None:
        return
    if not path.parent.exists():
        make_private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        pass  # an existing database, or another process created it just now
    for suffix in SQLITE_COMPANIONS:
        tighten(path.with_name(path.name + suffix), PRIVATE_FILE)


def make_data_files_private(data_dir: Path, database_url: str) -> None:
    """What every process that opens the database does first (serve, worker, CLI)."""
    make_private_dir(data_dir)
    make_private_sqlite(database_url)
