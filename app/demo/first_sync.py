"""The demo's first full synchronization: queued on the job queue, followed with a bar.

The embedded worker runs it like any full synchronization (``app.jobs.scheduling``):
one one-off entry per mapping, each after its dependencies. This module only reads the
job queue and the sync log to draw one bar per mapping and direction (records done of
the total counted when an ERP -> CRM pass starts; CRM -> ERP totals are unknown until
the pass ends).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

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

from app.db import SessionMaker, session_scope
from app.errors import ConflictError
from app.jobs import scheduling
from app.logs import quiet_under_a_progress_bar
from app.models.integration import (
    IntegrationSynchJob,
    JobKind,
    JobQueueEntry,
    JobStatus,
    SynchJobType,
)
from app.sync import progress

POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Queued:
    entry_ids: list[int]
    is_new: bool  # False: an unfinished one (an interrupted demo) is followed instead
    refused: str = ""  # why nothing could be queued or followed (a mapping still busy)


BUSY_WAIT_SECONDS = 60.0


async def queue_full_sync(sessionmaker: SessionMaker) -> Queued:
    """Queue a full synchronization of every scheduled mapping, or follow a pending one.

    Enabling the connection makes the recurring entries due at once, so the embedded
    worker may be running one when the demo asks: then it asks again once that run ended
    (a full sync refuses to start beside its mapping's run), for up to a minute.
    """
    deadline = asyncio.get_running_loop().time() + BUSY_WAIT_SECONDS
    while True:
        try:
            async with session_scope(sessionmaker) as session:
                entries = await scheduling.request_runs(session, kind=JobKind.full_sync)
                ids = [entry.id for entry in entries if entry.id is not None]
                return Queued(ids, is_new=True)
        except ConflictError as exc:
            async with session_scope(sessionmaker) as session:
                pending = await session.exec(
                    select(JobQueueEntry.id).where(
                        col(JobQueueEntry.kind) == JobKind.full_sync,
                        col(JobQueueEntry.recurring).is_(False),
                        col(JobQueueEntry.status).not_in(scheduling.DONE),
                    )
                )
                ids = [entry_id for entry_id in pending if entry_id is not None]
            if ids:
                return Queued(ids, is_new=False)
            if asyncio.get_running_loop().time() > deadline:
                return Queued([], is_new=False, refused=exc.detail)
            await asyncio.sleep(POLL_SECONDS)


@dataclass(frozen=True)
class Snapshot:
    entries: list[JobQueueEntry]
    jobs: list[IntegrationSynchJob]  # oldest first: a retry's job comes after its failure

    @property
    def is_done(self) -> bool:
        return all(entry.status in scheduling.DONE for entry in self.entries)

    def latest_jobs(self) -> dict[tuple[str, str], IntegrationSynchJob]:
        return {(job.mapping_name, str(job.direction)): job for job in self.jobs}


async def _snapshot(sessionmaker: SessionMaker, entry_ids: Sequence[int]) -> Snapshot:
    async with session_scope(sessionmaker) as session:
        entries = await session.exec(
            select(JobQueueEntry).where(col(JobQueueEntry.id).in_(entry_ids))
        )
        jobs = await session.exec(
            select(IntegrationSynchJob)
            .where(
                col(IntegrationSynchJob.job_queue_entry_id).in_(entry_ids),
                col(IntegrationSynchJob.type) == SynchJobType.synchronization,
            )
            .order_by(col(IntegrationSynchJob.started_at), col(IntegrationSynchJob.id))
        )
        return Snapshot(list(entries), list(jobs))


async def follow(
    sessionmaker: SessionMaker, entry_ids: Sequence[int], console: Console
) -> Snapshot:
    """Draw the bars until every entry has ended (finished or error); the last snapshot."""
    columns = (TextColumn("{task.description:<32}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    bars: dict[tuple[str, str], TaskID] = {}
    with Progress(*columns, console=console) as bar, quiet_under_a_progress_bar():
        overall = bar.add_task("mappings synchronized", total=len(entry_ids))
        while True:
            snapshot = await _snapshot(sessionmaker, entry_ids)
            for key, job in snapshot.latest_jobs().items():
                state = progress.progress_of(job)
                total = (
                    state.total if state.finished_at is None else max(state.total or 0, state.done)
                )
                if key not in bars:
                    bars[key] = bar.add_task(f"  {key[0]} {key[1]}", total=total)
                bar.update(bars[key], completed=state.done, total=total)
            ended = sum(entry.status in scheduling.DONE for entry in snapshot.entries)
            bar.update(overall, completed=ended)
            if snapshot.is_done:
                return snapshot
            await asyncio.sleep(POLL_SECONDS)


def summary_table(snapshot: Snapshot) -> Table:
    """Records per mapping and direction; short headers so it fits 80 columns."""
    table = Table(title="Full synchronization (records)")
    table.add_column("mapping", no_wrap=True)
    table.add_column("direction", no_wrap=True)
    for header in ("new", "changed", "same", "skipped", "failed"):
        table.add_column(header, justify="right")
    for (mapping, direction), job in snapshot.latest_jobs().items():
        counts = (job.inserted, job.modified, job.unchanged, job.skipped, job.failed)
        table.add_row(mapping, direction, *map(str, counts))
    return table


def failed_entries(snapshot: Snapshot) -> list[JobQueueEntry]:
    return [entry for entry in snapshot.entries if entry.status == JobStatus.error]
