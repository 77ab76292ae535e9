"""Which watched tables a transaction changed, handed to a publisher once it committed.

The near-real-time path (docs/sync.md, "Near-real-time sync"): every ERP write, from
any endpoint, job or command, must tell the workers which ERP tables changed, right after
its commit. Rather than a call in each writer, session events see every write of a
session made by a sessionmaker that has a publisher attached (``attach``):

- ``after_flush``: the tables of new, changed and deleted objects;
- ``do_orm_execute``: the target table of INSERT / UPDATE / DELETE statements run through
  the session (bulk upserts, ``update(Model)``), which bypass the unit of work;
- ``after_commit``: the publisher gets the tables (never raising into the writer);
- the end of the outermost transaction forgets what a rollback left.

Writes by the sync itself (``current_actor`` is the sync's actor) are not collected: the
mappings must not wake for their own writes, as the database wake-up also ignores them
(``app.jobs.wakeup``). Raw SQL text and writes on a connection taken from the session are
not seen; such writers reach the CRM through the wake-up and the periodic run.

This module sits at the bottom with ``app.db``: the publisher is a plain callback that
the process owning Redis passes in (``workers.nudge_sender``), so nothing here imports
upward. The publisher is attached to a sessionmaker, not to the process, so an app and a
worker sharing one process (the tests) each publish through their own Redis client.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from app.db import SYNC_ACTOR, SessionMaker, current_actor
from app.logs import get_logger

log = get_logger("salesbridge.committed_tables")

Publisher = Callable[[frozenset[str]], None]

_WATCH = "salesbridge.committed_tables.watch"
_CHANGED = "salesbridge.committed_tables.changed"


@dataclass(frozen=True)
class _Watch:
    tables: frozenset[str]
    publish: Publisher


def attach(sessionmaker: SessionMaker, *, tables: Collection[str], publish: Publisher) -> None:
    """Sessions made from now on by ``sessionmaker`` hand the ``tables`` they changed to
    ``publish`` after each commit. ``publish`` runs inside the commit: it must be quick
    (schedule the work) and should not raise; an error is logged and swallowed."""
    info = dict(sessionmaker.kw.get("info") or {})
    info[_WATCH] = _Watch(frozenset(tables), publish)
    sessionmaker.configure(info=info)


def detach(sessionmaker: SessionMaker) -> None:
    info = dict(sessionmaker.kw.get("info") or {})
    info.pop(_WATCH, None)
    sessionmaker.configure(info=info)


def _watch(session: Session) -> _Watch | None:
    watch = session.info.get(_WATCH)
    if watch is None or current_actor.get() == SYNC_ACTOR:
        return None
    return watch  # type: ignore[no-any-return]


def _note(session: Session, watch: _Watch, table: str | None) -> None:
    if table in watch.tables:
        session.info.setdefault(_CHANGED, set()).add(table)


def _table_of(obj: Any) -> str | None:
    name = getattr(type(obj), "__tablename__", None)
    return name if isinstance(name, str) else None


@event.listens_for(Session, "after_flush")
def _collect_flushed(session: Session, _context: Any) -> None:
    watch = _watch(session)
    if watch is None:
        return
    # In after_flush the new / dirty / deleted lists still show what this flush wrote.
    for obj in (*session.new, *session.deleted):
        _note(session, watch, _table_of(obj))
    for obj in session.dirty:
        if session.is_modified(obj, include_collections=False):
            _note(session, watch, _table_of(obj))


@event.listens_for(Session, "do_orm_execute")
def _collect_statement(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    watch = _watch(state.session)
    if watch is None:
        return
    table = getattr(state.statement, "table", None)
    _note(state.session, watch, getattr(table, "name", None))


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    changed: set[str] = session.info.pop(_CHANGED, set())
    watch = session.info.get(_WATCH)
    if not changed or watch is None:
        return
    try:
        watch.publish(frozenset(changed))
    except Exception:  # noqa: BLE001 - the write has committed; a lost nudge only delays
        log.exception("nudge_not_published", tables=sorted(changed))


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost one: committed (published) or rolled back
        session.info.pop(_CHANGED, None)
