"""The sandbox's rows: one SQLite table of JSON documents per entity set, keyed by id.

Writes run on the event loop's thread inside ``transaction()``; a lock makes the store
safe to read from a test's thread while uvicorn serves. Alternate keys are unique
expression indexes, so a duplicate key is refused by SQLite itself; pages are read with
``LIMIT`` on an index order, so no request copies a whole table.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from app import exact_json
from app.sandbox.schema.entities import ENTITIES, INDEXED_LOOKUPS

_SCHEMA = """
CREATE TABLE IF NOT EXISTS associations (
    relationship TEXT NOT NULL,
    left_id TEXT NOT NULL,
    right_id TEXT NOT NULL,
    PRIMARY KEY (relationship, left_id, right_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_associations_right ON associations (relationship, right_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class DuplicateIdError(Exception):
    pass


class DuplicateKeyError(Exception):
    def __init__(self, entity_set: str, attributes: tuple[str, ...]) -> None:
        super().__init__(f"{entity_set}: {attributes}")
        self.entity_set = entity_set
        self.attributes = attributes


def table(entity_set: str) -> str:
    """The table of one entity set; callers pass names from the entity registry only."""
    return f"t_{entity_set}"


def column(attribute: str) -> str:
    """SQL for one attribute of a row; callers pass names already checked as identifiers."""
    return f"json_extract(doc, '$.{attribute}')"


def _index_name(prefix: str, entity_set: str, attributes: tuple[str, ...]) -> str:
    return f"{prefix}_{entity_set}_{'_'.join(attributes)}"


class Store:
    def __init__(self, path: Path | None, alternate_keys: dict[str, list[tuple[str, ...]]]) -> None:
        self.path = path
        self.lock = threading.RLock()
        # In memory, the rows live in SQLite's ``memdb`` VFS (a private in-process file)
        # rather than ``:memory:``: a ``:memory:`` database's commit cost grows with its size
        # (0.1 ms per commit at 20,000 products, 0.3 ms at 100,000, docs/sandbox.md), which
        # made the sandbox's ingest rate fall with the table size. Both vanish on close and
        # roll back the same way (in-memory journal).
        target = str(path) if path is not None else "file:sandbox?vfs=memdb"
        self.connection = sqlite3.connect(
            target, isolation_level=None, check_same_thread=False, uri=path is None
        )
        if path is not None:
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.executescript(_SCHEMA)
        for entity in ENTITIES:
            self.connection.execute(
                f"CREATE TABLE IF NOT EXISTS {table(entity.set_name)} (id TEXT PRIMARY KEY, "
                "version INTEGER NOT NULL, doc TEXT NOT NULL) WITHOUT ROWID"
            )
        self._key_indexes: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._create_indexes(alternate_keys)
        self._depth = 0
        # What the open transaction changed, for ``on_commit`` (webhook notifications):
        # kept until the outermost commit, cut back when a savepoint or the whole
        # transaction rolls back, so only committed changes are announced.
        self._journal: list[Any] = []
        self.on_commit: Callable[[list[Any]], None] | None = None
        versions = [
            self.connection.execute(sql).fetchone()[0]
            for sql in (f"SELECT max(version) FROM {table(e.set_name)}" for e in ENTITIES)  # noqa: S608
        ]
        stored = self.get_meta("version")
        self._version = max([int(v or 0) for v in versions] + [int(stored or 0)])

    # --- schema ---------------------------------------------------------------------------
    def _create_indexes(self, alternate_keys: dict[str, list[tuple[str, ...]]]) -> None:
        wanted: set[str] = set()
        for entity_set, keys in alternate_keys.items():
            for attributes in keys:
                name = _index_name("ak", entity_set, attributes)
                exprs = ", ".join(f"{column(a)} COLLATE NOCASE" for a in attributes)
                self.connection.execute(
                    f"CREATE UNIQUE INDEX IF NOT EXISTS {name} ON {table(entity_set)} ({exprs})"
                )
                self._key_indexes[name] = (entity_set, attributes)
                wanted.add(name)
        for entity_set, attribute in INDEXED_LOOKUPS:
            name = _index_name("ix", entity_set, (attribute.strip("_"),))
            self.connection.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON {table(entity_set)} ({column(attribute)})"
            )
        existing = self.connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'ak\\_%' ESCAPE '\\'"
        ).fetchall()
        for (name,) in existing:
            if name not in wanted:  # a key removed from the configuration since last run
                self.connection.execute(f"DROP INDEX {name}")

    def ensure_modified_index(self, entity_set: str) -> None:
        """Index ``modifiedon`` of a set, for watermark queries (``modifiedon gt X``)."""
        name = _index_name("ix", entity_set, ("modifiedon",))
        self.connection.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table(entity_set)} ({column('modifiedon')}, id)"
        )

    # --- transactions ---------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Atomic unit; nests as savepoints (a batch changeset holds the outer one)."""
        with self.lock:
            self._depth += 1
            savepoint = f"sp{self._depth}"
            self.connection.execute("BEGIN" if self._depth == 1 else f"SAVEPOINT {savepoint}")
            version_before = self._version
            journaled = len(self._journal)
            committed: list[Any] = []
            try:
                yield
            except BaseException:
                if self._depth == 1:
                    self.connection.execute("ROLLBACK")
                else:
                    self.connection.execute(f"ROLLBACK TO {savepoint}")
                    self.connection.execute(f"RELEASE {savepoint}")
                self._version = version_before
                del self._journal[journaled:]
                raise
            else:
                if self._depth == 1:
                    self._write_meta("version", str(self._version))
                    self.connection.execute("COMMIT")
                    committed, self._journal = self._journal, []
                else:
                    self.connection.execute(f"RELEASE {savepoint}")
            finally:
                self._depth -= 1
            if committed and self.on_commit is not None:
                self.on_commit(committed)

    def journal(self, change: Any) -> None:
        """Note a change of the open transaction (announced once it commits)."""
        if self.on_commit is None:
            return
        with self.lock:
            if self._depth == 0:  # autocommit: it is committed already
                self.on_commit([change])
            else:
                self._journal.append(change)

    def next_version(self) -> int:
        self._version += 1
        return self._version

    # --- rows -----------------------------------------------------------------------------
    def get(self, entity_set: str, record_id: str) -> dict[str, Any] | None:
        with self.lock:
            sql = f"SELECT doc FROM {table(entity_set)} WHERE id = ?"  # noqa: S608
            row = self.connection.execute(sql, (record_id,)).fetchone()
        return exact_json.decode(row[0]) if row else None

    def find_by_key(self, entity_set: str, key: dict[str, Any]) -> dict[str, Any] | None:
        conditions = " AND ".join(
            f"{column(name)} = ? COLLATE NOCASE"
            if isinstance(value, str)
            else f"{column(name)} = ?"
            for name, value in key.items()
        )
        sql = f"SELECT doc FROM {table(entity_set)} WHERE {conditions} LIMIT 1"  # noqa: S608 - names are checked identifiers
        with self.lock:
            row = self.connection.execute(sql, tuple(key.values())).fetchone()
        return exact_json.decode(row[0]) if row else None

    def insert(self, entity_set: str, record_id: str, doc: dict[str, Any]) -> None:
        self._write(
            f"INSERT INTO {table(entity_set)} (id, version, doc) VALUES (?, ?, ?)",  # noqa: S608
            (record_id, doc["versionnumber"], exact_json.encode(doc).decode()),
        )

    def replace(self, entity_set: str, record_id: str, doc: dict[str, Any]) -> None:
        self._write(
            f"UPDATE {table(entity_set)} SET version = ?, doc = ? WHERE id = ?",  # noqa: S608
            (doc["versionnumber"], exact_json.encode(doc).decode(), record_id),
        )

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        with self.lock:
            try:
                self.connection.execute(sql, params)
            except sqlite3.IntegrityError as exc:
                raise self._integrity(exc) from exc

    def _integrity(self, exc: sqlite3.IntegrityError) -> Exception:
        text = str(exc)
        for name, (entity_set, attributes) in self._key_indexes.items():
            if name in text:
                return DuplicateKeyError(entity_set, attributes)
        return DuplicateIdError(text)

    def delete(self, entity_set: str, record_id: str) -> bool:
        with self.lock:
            sql = f"DELETE FROM {table(entity_set)} WHERE id = ?"  # noqa: S608
            cursor = self.connection.execute(sql, (record_id,))
            self.connection.execute(
                "DELETE FROM associations WHERE left_id = ? OR right_id = ?",
                (record_id, record_id),
            )
        return cursor.rowcount > 0

    def select(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.connection.execute(sql, params).fetchall()
        return [exact_json.decode(row[0]) for row in rows]

    def scalar(self, sql: str, params: tuple[Any, ...]) -> Any:
        with self.lock:
            row = self.connection.execute(sql, params).fetchone()
        return row[0] if row else None

    def count(self, entity_set: str) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {table(entity_set)}", ()))  # noqa: S608

    def rows(self, entity_set: str) -> list[dict[str, Any]]:
        """Every row of a set, in id order (a test and control helper, not for requests)."""
        return self.select(f"SELECT doc FROM {table(entity_set)} ORDER BY id", ())  # noqa: S608

    def child_ids(self, entity_set: str, lookup_column: str, parent_id: str) -> list[str]:
        with self.lock:
            rows = self.connection.execute(
                f"SELECT id FROM {table(entity_set)} WHERE {column(lookup_column)} = ?",  # noqa: S608
                (parent_id,),
            ).fetchall()
        return [row[0] for row in rows]

    def select_totals(
        self, entity_set: str, lookup_column: str, parent_id: str
    ) -> tuple[Decimal, Decimal]:
        """Sum of ``extendedamount`` and ``tax`` over the lines of one header, exactly (read
        from the documents: SQL would sum the JSON numbers as floats)."""
        with self.lock:
            rows = self.connection.execute(
                f"SELECT doc FROM {table(entity_set)} WHERE {column(lookup_column)} = ?",  # noqa: S608
                (parent_id,),
            ).fetchall()
        lines = [exact_json.decode(row[0]) for row in rows]
        amount = sum((exact_json.number(line.get("extendedamount")) for line in lines), Decimal(0))
        tax = sum((exact_json.number(line.get("tax")) for line in lines), Decimal(0))
        return amount, tax

    # --- many-to-many ---------------------------------------------------------------------
    def associate(self, relationship: str, left_id: str, right_id: str) -> bool:
        with self.lock:
            cursor = self.connection.execute(
                "INSERT OR IGNORE INTO associations VALUES (?, ?, ?)",
                (relationship, left_id, right_id),
            )
        return cursor.rowcount > 0

    def disassociate(self, relationship: str, left_id: str, right_id: str) -> bool:
        with self.lock:
            cursor = self.connection.execute(
                "DELETE FROM associations WHERE relationship = ? AND left_id = ? AND right_id = ?",
                (relationship, left_id, right_id),
            )
        return cursor.rowcount > 0

    def associated(self, relationship: str, record_id: str, *, from_left: bool) -> list[str]:
        mine, other = ("left_id", "right_id") if from_left else ("right_id", "left_id")
        with self.lock:
            rows = self.connection.execute(
                f"SELECT {other} FROM associations WHERE relationship = ? AND {mine} = ? "  # noqa: S608
                f"ORDER BY {other}",
                (relationship, record_id),
            ).fetchall()
        return [row[0] for row in rows]

    # --- meta -----------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self.lock:
            row = self.connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.lock:
            self._write_meta(key, value)

    def _write_meta(self, key: str, value: str) -> None:
        self.connection.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def wipe(self) -> None:
        with self.lock:
            for entity in ENTITIES:
                self.connection.execute(f"DELETE FROM {table(entity.set_name)}")  # noqa: S608
            self.connection.execute("DELETE FROM associations")
            self.connection.execute("DELETE FROM meta")
            self._version = 0
            self._journal.clear()

    def close(self) -> None:
        with self.lock:
            self.connection.close()
