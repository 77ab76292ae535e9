"""``salesbridge sync run`` / ``sync status``: a mapping run in this process, the queue's state.

``sync run`` runs the mapping here (not on a worker), so it works without Redis and
shows a live progress bar; it refuses while a job queue entry of the same mapping is
running, so it does not overlap a worker's run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlmodel import col, select

from app import catalog
from app.clock import as_utc, utc_now
from app.db import SessionMaker, session_scope
from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.jobs.entries import is_running
from app.mappings.table_mappings import get_mapping
from app.models.integration import Direction, JobQueueEntry
from app.settings import Settings
from app.sync import log, progress
from app.sync.errors import SyncError


@dataclass
class RunSummary:
    counters: dict[Direction, log.Counters] = field(default_factory=dict)


async def _check_can_run(
    sessionmaker: SessionMaker, mapping_name: str, *, is_full: bool
) -> int | None:
    """The ERP -> CRM total for the bar (None: unknown); refuses a busy or unknown mapping."""
    async with session_scope(sessionmaker) as session:
        mapping = await get_mapping(session, mapping_name)
        if mapping is None:
            msg = f"Mapping {mapping_name!r} does not exist."
            raise NotFoundError(msg)
        entries = await session.exec(
            select(JobQueueEntry).where(col(JobQueueEntry.mapping_name) == mapping_name)
        )
        if any(is_running(entry, now=utc_now()) for entry in entries):
            msg = f"{mapping_name} is synchronizing on a worker now; try again when it has ended."
            raise ConflictError(msg)
        if mapping.direction == Direction.from_crm:
            return None
        return await progress.count_erp_candidates(
            session, mapping,
            watermark=None if is_full else mapping.erp_modified_watermark,
            only_coupled=mapping.synch_only_coupled_records and not is_full,
        )  # fmt: skip


async def run_with_progress(
    sessionmaker: SessionMaker, settings: Settings, *, mapping_name: str, is_full: bool,
    console: Console,
) -> RunSummary:  # fmt: skip
    total = await _check_can_run(sessionmaker, mapping_name, is_full=is_full)
    summary = RunSummary()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=False) as bar:
        tasks: dict[Direction, TaskID] = {}

        def on_progress(_name: str, direction: Direction, counters: log.Counters) -> None:
            if direction not in tasks:
                expected = total if direction == Direction.to_crm else None
                tasks[direction] = bar.add_task(f"{mapping_name} {direction}", total=expected)
            done = counters.total - counters.coupled - counters.uncoupled
            bar.update(tasks[direction], completed=done)
            summary.counters[direction] = counters

        try:
            await catalog.run_queue_entry(
                sessionmaker, mapping_name=mapping_name, is_full=is_full, entry_id=None,
                settings=settings, on_progress=on_progress,
            )  # fmt: skip
        except SyncError as exc:
            raise InvalidInputError(exc.admin_message) from exc
    return summary


def summary_table(summary: RunSummary) -> Table:
    table = Table("direction", "inserted", "modified", "unchanged", "skipped", "failed")
    for direction, c in summary.counters.items():
        table.add_row(
            str(direction), *map(str, (c.inserted, c.modified, c.unchanged, c.skipped, c.failed))
        )
    return table


async def status_table(sessionmaker: SessionMaker) -> Table:
    """Every job queue entry with its state, and the records done of each running sync job."""
    async with session_scope(sessionmaker) as session:
        entries = list(await session.exec(select(JobQueueEntry).order_by(col(JobQueueEntry.id))))
        running = {p.job_queue_entry_id: p for p in await progress.running_jobs(session)}
    table = Table("id", "status", "next start", "progress", "last error", title="Job queue (UTC)")
    table.add_column("mapping / job", no_wrap=True)
    table.columns.insert(1, table.columns.pop())  # the name right after the id
    for entry in entries:
        job = running.get(entry.id)
        done = "" if job is None else f"{job.done}/{'?' if job.total is None else job.total}"
        start = entry.earliest_start_at
        when = as_utc(start).strftime("%m-%d %H:%M") if start else ""
        name = entry.mapping_name or str(entry.kind)
        name += "" if entry.recurring else f" ({entry.kind}, once)"
        table.add_row(str(entry.id), name, str(entry.status), when, done, entry.last_error[:60])
    return table
