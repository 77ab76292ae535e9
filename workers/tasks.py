"""arq tasks: thin edges that resolve a job queue entry and call ``app.jobs.queue``.

Both are idempotent; each says why in its docstring. Payloads are ids only.
"""

from __future__ import annotations

from typing import Any

from app import catalog
from app.clock import utc_now
from app.db import SessionMaker, session_scope
from app.jobs import queue, scheduling, wakeup
from app.logs import get_logger
from app.settings import Settings
from workers.queue import enqueue_entry

log = get_logger("salesbridge.tasks")

# arq's own timeout is a backstop behind ours (catalog.run_entry records a timeout itself), and
# a claim outlives both, so no claim expires while its run may still be going.
ARQ_TIMEOUT_MARGIN_SECONDS = 2
CLAIM_MARGIN_SECONDS = 5
# Tests shorten the spec's 30 s wake-up delay through the worker's ctx.
WAKE_UP_DELAY = wakeup.WAKE_UP_DELAY_SECONDS


def claim_seconds(settings: Settings) -> int:
    return settings.job_timeout_seconds + CLAIM_MARGIN_SECONDS


async def tick(ctx: dict[str, Any]) -> int:
    """Wake entries whose data changed, then enqueue a trigger for every entry that is due
    and may start (dependencies ended, its mapping not running); returns how many.

    Idempotent: a trigger's job id names the entry and its run, and arq keeps one job per
    id, so ticks of several workers, or a tick after "run now", add nothing twice.
    """
    sessionmaker: SessionMaker = ctx["sessionmaker"]
    now = utc_now()
    async with session_scope(sessionmaker) as session:
        await queue.give_up_abandoned(session, now=now)
        await wakeup.wake_changed_entries(
            session, now=now, delay_seconds=ctx.get("wake_up_delay_seconds", WAKE_UP_DELAY)
        )
    async with session_scope(sessionmaker) as session:
        due = await queue.find_due(session, now=now)
        startable = await scheduling.startable(session, [entry.entry_id for entry in due])
    due = [entry for entry in due if entry.entry_id in startable]
    enqueued = 0
    for entry in due:
        is_new = await enqueue_entry(
            ctx["redis"], entry_id=entry.entry_id, run_count=entry.run_count
        )
        enqueued += is_new
    if enqueued:
        log.info("entries_enqueued", count=enqueued)
    return enqueued


async def run_entry(ctx: dict[str, Any], entry_id: int, run_count: int) -> str:
    """Run run number ``run_count`` of one entry, at most once.

    Idempotent: the claim is a conditional UPDATE on the entry's run_count and due state,
    so a repeated or late delivery, or one for an entry that is on hold, claims nothing
    and changes nothing.
    """
    settings: Settings = ctx["settings"]
    sessionmaker: SessionMaker = ctx["sessionmaker"]
    async with session_scope(sessionmaker) as session:
        run = await queue.claim(
            session,
            entry_id=entry_id,
            run_count=run_count,
            worker_id=ctx["worker_id"],
            now=utc_now(),
            claim_seconds=claim_seconds(settings),
        )
    if run is None:
        log.info("entry_not_claimed", entry_id=entry_id, run_count=run_count)
        return "not claimed"
    status = await catalog.run_entry(
        sessionmaker, run=run, settings=settings, timeout_seconds=settings.job_timeout_seconds
    )
    return status.value if status else "superseded"
