"""``salesbridge sync run`` / ``sync status``: a mapping run in this process, the queue's state.

``sync run`` runs the mapping here (not on a worker), so it works without Redis and
shows a live progress bar; it refuses while a job queue entry of the same mapping is
running, so it does not overlap a worker's run. ``sync status`` fits 80 columns (the
last error is cut to the width left); ``--wide`` shows every column and whole errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rich import box
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
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import as_utc, utc_now
from app.command_lines import command_line
from app.connection.crm_notifications import NotificationStatus, notification_status
from app.db import SessionMaker, session_scope
from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.jobs.entries import is_running
from app.logs import quiet_under_a_progress_bar
from app.mappings.table_mappings import get_mapping, list_mappings
from app.models.integration import Direction, JobQueueEntry, JobStatus
from app.settings import Settings
from app.sync import log, progress


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
            raise NotFoundError(await _unknown_mapping(session, mapping_name))
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
    # Here, not at the top: `sync status` shares this module and needs no engine.
    from app import catalog
    from app.sync.errors import SyncError

    total = await _check_can_run(sessionmaker, mapping_name, is_full=is_full)
    summary = RunSummary()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with (
        Progress(*columns, console=console, transient=False) as bar,
        quiet_under_a_progress_bar(),
    ):
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


async def _unknown_mapping(session: AsyncSession, mapping_name: str) -> str:
    names = [mapping.name for mapping in await list_mappings(session)]
    if names:
        return (
            f"Mapping {mapping_name!r} does not exist. The mappings are: {', '.join(names)} "
            f"(`{command_line('mapping list')}`)."
        )
    return (
        f"Mapping {mapping_name!r} does not exist, and there are no mappings yet: they are "
        f"created when the CRM connection is set up (`{command_line('connection setup')}`, "
        "docs/setup.md), or again with their defaults by POST /api/v1/mappings/reset-defaults."
    )


# What each status means to a person; a recurring entry resting between changes is not "off".
_STATES = {
    JobStatus.ready: "scheduled",
    JobStatus.in_process: "running",
    JobStatus.error: "failed",
    JobStatus.on_hold: "on hold",
    JobStatus.finished: "done",
    JobStatus.on_hold_with_inactivity_timeout: "resting",
}
LEGEND = (
    "scheduled: runs at its next start; running: on a worker now; failed: gave up after its "
    "retries (see the error); on hold: paused by an admin or a disabled connection; resting: "
    "waits for a change in the ERP or the CRM, then runs; done: a one-off run that ended."
)


def state_of(entry: JobQueueEntry) -> str:
    return _STATES.get(entry.status, str(entry.status))


async def status_table(sessionmaker: SessionMaker, *, is_wide: bool, width: int) -> Table:
    """Every job queue entry with its state, and the records done of each running sync job.

    Every column but the last error keeps its full width; the error gets what is left of
    ``width`` (cut with an ellipsis), or wraps whole with ``is_wide``.
    """
    async with session_scope(sessionmaker) as session:
        entries = list(await session.exec(select(JobQueueEntry).order_by(col(JobQueueEntry.id))))
        running = {p.job_queue_entry_id: p for p in await progress.running_jobs(session)}
    headers = ["id", "mapping / job", "state", "next start", "done"]
    if is_wide:
        headers += ["kind", "runs", "last finished"]
    rows = [_status_row(entry, running.get(entry.id), is_wide=is_wide) for entry in entries]
    widths = [
        max([len(header)] + [len(row[i]) for row in rows]) for i, header in enumerate(headers)
    ]
    table = Table(title="Job queue (times in UTC)", box=box.SIMPLE_HEAD, pad_edge=False)
    for header, column_width in zip(headers, widths, strict=True):
        table.add_column(header, no_wrap=True, min_width=column_width)
    room = width - sum(widths) - 2 * len(widths) - 1  # two spaces between columns
    table.add_column("last error", overflow="fold" if is_wide else "ellipsis",
                     no_wrap=not is_wide, max_width=None if is_wide else max(room, 10))  # fmt: skip
    for row, entry in zip(rows, entries, strict=True):
        table.add_row(*row, " ".join(entry.last_error.split()))
    return table


async def load_notifications(sessionmaker: SessionMaker) -> NotificationStatus:
    async with session_scope(sessionmaker) as session:
        return await notification_status(session)


def _cut(text: str, room: int, *, is_wide: bool) -> str:
    text = " ".join(text.split())
    return text if is_wide or len(text) <= room else text[: room - 3] + "..."


def notification_lines(found: NotificationStatus, *, is_wide: bool) -> list[str]:
    """Whether CRM change notifications arrive, in lines of at most 80 columns (``is_wide``:
    the URL and the whole error)."""
    if found.registered:
        head = f"CRM change notifications: registered {_when(found.registered_at)}"
        head += f", {found.steps} step{'' if found.steps == 1 else 's'}"
    else:
        head = "CRM change notifications: not registered (periodic runs only)"
    lines = [head]
    if is_wide and found.url:
        lines.append(f"  posted to {found.url}")
    if found.last_error:
        lines.append("  " + _cut(f"registration error: {found.last_error}", 78, is_wide=is_wide))
    received = f"received {found.received_count}"
    if found.last_received_at:
        received += f", last {_when(found.last_received_at)}"
    refused = f"refused {found.refused_count}"
    if found.last_refused_at:
        refused += f", last {_when(found.last_refused_at)}"
    lines.append(f"  {received}; {refused}")
    if found.last_refusal:
        lines.append("  " + _cut(f"last refusal: {found.last_refusal}", 78, is_wide=is_wide))
    lines.append(f"  pending changes (not read by a run yet): {found.pending}")
    return lines


def _status_row(
    entry: JobQueueEntry, job: progress.JobProgress | None, *, is_wide: bool
) -> list[str]:
    done = "" if job is None else f"{job.done}/{'?' if job.total is None else job.total}"
    name = (entry.mapping_name or str(entry.kind)) + ("" if entry.recurring else " (once)")
    cells = [str(entry.id), name, state_of(entry), _when(entry.earliest_start_at), done]
    if is_wide:
        cells += [str(entry.kind), str(entry.run_count), _when(entry.last_finished_at)]
    return cells


def _when(moment: datetime | None) -> str:
    return as_utc(moment).strftime("%m-%d %H:%M") if moment else ""
