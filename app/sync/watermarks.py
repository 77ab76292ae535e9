"""Watermarks, pure: signpost fixed at run start, bookmark advanced only to committed values.

A run reads rows modified after the stored watermark, less an overlap. The CRM side's is
1 s, because Dataverse keeps ``modifiedon`` to the second. The ERP side's is
``ERP_OVERLAP``: an ERP row's ``modified_at`` is stamped before its transaction commits,
so a write can commit after a run has read a later-stamped one and moved the watermark
past it; without the overlap that write would never be read (measured by
bench/latency.py: 3 of 1,300 REST edits at 10-17 per second). Rows of the overlap that
the sync already has are dropped unread (``to_crm``), so they cost a read, not a count.

The signpost is the run's start time: the stored watermark never moves past it, so a
row written while the run goes on is read again by the next run (and found unchanged
through its coupling timestamps).
A watermark only moves forward, and only for values whose rows were committed.
Every value is an aware UTC datetime; a naive one is refused, not guessed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

CRM_OVERLAP = timedelta(seconds=1)
ERP_OVERLAP = timedelta(seconds=10)  # far beyond a write's stamp-to-commit time here
ERP_PAGE_EPSILON = timedelta(microseconds=1)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        msg = f"a watermark must be an aware UTC datetime, not naive {value.isoformat()}"
        raise ValueError(msg)
    return value.astimezone(UTC)


def read_from(stored: datetime | None, *, overlap: timedelta = timedelta(0)) -> datetime | None:
    """The lower bound (exclusive) of the next read; None reads everything."""
    return None if stored is None else _utc(stored) - overlap


def advance(
    stored: datetime | None, observed: Iterable[datetime | None], *, signpost: datetime
) -> datetime | None:
    """The new watermark: the max observed value, capped at the signpost, never backwards."""
    cap = _utc(signpost)
    seen = [_utc(value) for value in observed if value is not None]
    if not seen:
        return None if stored is None else _utc(stored)
    candidate = min(max(seen), cap)
    if stored is not None and _utc(stored) >= candidate:
        return _utc(stored)
    return candidate


def page_bookmark(last_in_page: datetime) -> datetime:
    """What a committed page of rows sorted by modified-at lets the watermark reach.

    Rows sharing the page's last timestamp may continue on the next page, so the bookmark
    stops just before it: a crash then re-reads them instead of skipping them.
    """
    return _utc(last_in_page) - ERP_PAGE_EPSILON


def crm_filter_value(moment: datetime) -> str:
    """The OData literal for a ``modifiedon`` comparison (UTC, seconds)."""
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")
