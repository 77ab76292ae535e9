"""Errors of the sync engine, classified by the action they need.

SyncError                       base: ``failure_kind`` says who must act:
 |                              config | transient | system
 +-- FatalSyncError             the run cannot go on (mapping misconfigured, CRM refused us);
 |                              the job queue entry records it; retrying will not help
 +-- RetriableSyncError         the run stopped on something passing (CRM unreachable,
 |                              throttled past the budget); the entry retries after its delay
 +-- SkippableRecordError       one record cannot sync (a dependency is not coupled, the CRM
                                refused the values); logged per record, the run goes on

Messages are for an administrator: they name the record, the field or the mapping, and
what to do. They never carry secrets (the Dataverse client's messages have none).
"""

from __future__ import annotations

from app.dataverse.errors import DataverseError, FailureKind

__all__ = [
    "FailureKind",
    "FatalSyncError",
    "RetriableSyncError",
    "SkippableRecordError",
    "SyncError",
    "from_dataverse",
    "not_coupled",
]


class SyncError(Exception):
    failure_kind: FailureKind = FailureKind.system

    def __init__(self, message: str, *, failure_kind: FailureKind | None = None) -> None:
        super().__init__(message)
        self.message = message
        if failure_kind is not None:
            self.failure_kind = failure_kind

    @property
    def admin_message(self) -> str:
        return f"[{self.failure_kind}] {self.message}"


class FatalSyncError(SyncError):
    failure_kind = FailureKind.config


class RetriableSyncError(SyncError):
    failure_kind = FailureKind.transient


class SkippableRecordError(SyncError):
    failure_kind = FailureKind.config


def from_dataverse(exc: DataverseError, *, action: str) -> SyncError:
    """A Dataverse error met while doing ``action``: per record, retriable or fatal."""
    message = f"Could not {action}: {exc.message}"
    if exc.is_record_level:
        return SkippableRecordError(message, failure_kind=exc.failure_kind)
    if exc.failure_kind == FailureKind.transient:
        return RetriableSyncError(message)
    return FatalSyncError(message, failure_kind=exc.failure_kind)


def not_coupled(table: str, code: str, *, mapping_hint: str = "") -> SkippableRecordError:
    """A reference whose ERP row has no CRM counterpart yet; retried on the next run."""
    what = table.replace("_", " ")
    hint = f" Synchronize {mapping_hint} first." if mapping_hint else ""
    return SkippableRecordError(
        f"The {what} {code} is not coupled to a Dynamics 365 Sales record.{hint}"
    )
