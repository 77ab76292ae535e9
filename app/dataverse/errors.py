"""Errors raised by the Dataverse client, one tree for the whole boundary.

DataverseError                       base: ``failure_kind`` says who must act
 +-- DataverseConfigError            the connection settings cannot work (config)
 +-- DataverseTransportError         no HTTP answer: refused, dropped, timed out (transient)
 +-- DataverseProtocolError          an answer we cannot read: bad $batch, foreign nextLink,
 |                                   paging loop or page cap (system)
 +-- DataverseStatusError            Dataverse answered an error status; carries
      |                              ``status_code``, ``code`` (e.g. ``0x80040217``), ``message``
      +-- RetriableError             429 / 502 / 503 / 504 that outlived the retry budget;
      |                              ``retry_after_seconds`` says when to try again (transient)
      +-- AuthError                  401 / 403 or the token endpoint refused us (config)
      +-- NotFoundError              404: the record or entity set does not exist
      +-- ConcurrencyError           412: the row version does not match
      |    +-- DuplicateRecordError  the primary or alternate key already exists
      +-- FatalError                 the request cannot succeed as sent (405, 413, 500 plug-in
           |                         failure, 501, unknown statuses); retrying cannot help
           +-- InvalidRecordError    400: validation failed or a bad argument for this record

``is_record_level`` marks errors that concern one record (validation, not found, version,
duplicate): a sync run skips that record and goes on. Messages never contain secrets, tokens
or full URLs with query strings, only the method and the path.
"""

from __future__ import annotations

from enum import StrEnum


class FailureKind(StrEnum):
    """Who must act: an admin fixing set-up, nobody (wait), or a developer."""

    config = "config"
    transient = "transient"
    system = "system"


class DataverseError(Exception):
    failure_kind: FailureKind = FailureKind.system
    is_record_level = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DataverseConfigError(DataverseError):
    failure_kind = FailureKind.config


class DataverseTransportError(DataverseError):
    failure_kind = FailureKind.transient


class DataverseProtocolError(DataverseError):
    failure_kind = FailureKind.system


class DataverseStatusError(DataverseError):
    """An error status from Dataverse with its ``error.code`` and ``error.message``."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str = "",
        request_label: str = "",
        after_ambiguous_attempt: bool = False,
        source: str = "Dataverse",
    ) -> None:
        label = f"{request_label}: " if request_label else ""
        code_part = f" ({code})" if code else ""
        super().__init__(f"{label}{source} answered {status_code}{code_part}: {message}")
        self.status_code = status_code
        self.code = code
        self.dataverse_message = message
        self.request_label = request_label
        # True when an earlier attempt of the same request may have been executed (5xx,
        # dropped connection): a duplicate-key answer then means "our first try worked".
        self.after_ambiguous_attempt = after_ambiguous_attempt


class RetriableError(DataverseStatusError):
    failure_kind = FailureKind.transient

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str = "",
        request_label: str = "",
        after_ambiguous_attempt: bool = False,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(
            message,
            status_code=status_code,
            code=code,
            request_label=request_label,
            after_ambiguous_attempt=after_ambiguous_attempt,
        )
        self.retry_after_seconds = retry_after_seconds


class AuthError(DataverseStatusError):
    failure_kind = FailureKind.config


class NotFoundError(DataverseStatusError):
    is_record_level = True


class ConcurrencyError(DataverseStatusError):
    is_record_level = True


class DuplicateRecordError(ConcurrencyError):
    pass


class FatalError(DataverseStatusError):
    pass


class InvalidRecordError(FatalError):
    is_record_level = True
