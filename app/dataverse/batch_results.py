"""Matching a parsed ``$batch`` answer back to the operations that were sent.

One ``BatchResult`` per operation, in request order. A change set that failed is rolled
back as a whole: its failing operation carries the error, the others say ``rolled_back``.
A record-level failure fails that record only; the caller decides what to do with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from app.dataverse import addressing
from app.dataverse.batch import BatchItem, BatchOperation, ChangeSet, ChangeSetPart, HttpPart
from app.dataverse.errors import (
    DataverseProtocolError,
    DataverseStatusError,
    DuplicateRecordError,
)
from app.dataverse.retry import error_class_for


class BatchOutcome(StrEnum):
    ok = "ok"
    failed = "failed"  # this operation's own error
    rolled_back = "rolled_back"  # its change set failed on another operation
    not_run = "not_run"  # the batch stopped before it (no continue-on-error)
    unknown = "unknown"  # the batch stopped and did not say where: it may or may not have run


@dataclass(frozen=True)
class BatchResult:
    operation: BatchOperation
    outcome: BatchOutcome
    status_code: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    entity_id: uuid.UUID | None = None
    error: DataverseStatusError | None = None
    is_replayed_duplicate: bool = False  # a replayed create found its own earlier row

    @property
    def is_ok(self) -> bool:
        return self.outcome is BatchOutcome.ok


def match_results(
    items: Sequence[BatchItem],
    parts: Sequence[HttpPart | ChangeSetPart],
    *,
    has_stopped: bool = False,
) -> list[BatchResult]:
    """Pair answers with operations. ``has_stopped``: the batch answered an error status
    (no continue-on-error), so ``parts`` holds only the failure; everything before it ran."""
    if has_stopped:
        return _stopped_results(items, parts)
    if len(parts) > len(items):
        msg = f"the batch answer has {len(parts)} parts for {len(items)} requests"
        raise DataverseProtocolError(msg)
    results: list[BatchResult] = []
    for index, item in enumerate(items):
        part = parts[index] if index < len(parts) else None
        if isinstance(item, BatchOperation):
            results.append(_single_result(item, part))
        else:
            results.extend(_changeset_results(item, part))
    return results


def _stopped_results(
    items: Sequence[BatchItem], parts: Sequence[HttpPart | ChangeSetPart]
) -> list[BatchResult]:
    failure = parts[-1] if parts else None
    content_id = failure.content_id if isinstance(failure, HttpPart) else None
    at = next((i for i, item in enumerate(items) if content_id in _content_ids(item)), None)
    results: list[BatchResult] = []
    for index, item in enumerate(items):
        ops = item.operations if isinstance(item, ChangeSet) else [item]
        if at is None:
            results.extend(BatchResult(op, BatchOutcome.unknown) for op in ops)
        elif index < at:  # ran and succeeded; Dataverse returns no answer for these
            results.extend(BatchResult(op, BatchOutcome.ok, entity_id=op.record_id) for op in ops)
        elif index == at:
            if isinstance(item, ChangeSet):
                results.extend(_changeset_results(item, failure))
            else:
                results.append(_single_result(item, failure))
        else:
            results.extend(BatchResult(op, BatchOutcome.not_run) for op in ops)
    return results


def _content_ids(item: BatchItem) -> set[str | None]:
    ops = item.operations if isinstance(item, ChangeSet) else [item]
    return {op.content_id for op in ops if op.content_id is not None}


def _single_result(op: BatchOperation, part: HttpPart | ChangeSetPart | None) -> BatchResult:
    if part is None:
        return BatchResult(op, BatchOutcome.not_run)
    if isinstance(part, ChangeSetPart):
        part = part.parts[0] if part.parts else None
        if part is None:
            return BatchResult(op, BatchOutcome.not_run)
    return _result_from_part(op, part)


def _changeset_results(
    changeset: ChangeSet, part: HttpPart | ChangeSetPart | None
) -> list[BatchResult]:
    ops = changeset.operations
    if part is None:
        return [BatchResult(op, BatchOutcome.not_run) for op in ops]
    answers = part.parts if isinstance(part, ChangeSetPart) else [part]
    by_id = {answer.content_id: answer for answer in answers if answer.content_id}
    failure = next((answer for answer in answers if answer.status_code >= 400), None)
    if failure is None:
        paired = [by_id.get(op.content_id or "") or _nth(answers, i) for i, op in enumerate(ops)]
        return [
            _result_from_part(op, answer) if answer else BatchResult(op, BatchOutcome.not_run)
            for op, answer in zip(ops, paired, strict=True)
        ]
    # Rolled back as a whole. Blame the operation named by the failing Content-ID, or the
    # first one when Dataverse did not say which.
    culprit = next((op for op in ops if op.content_id == failure.content_id), ops[0])
    failed = _result_from_part(culprit, failure)
    return [
        failed if op is culprit else BatchResult(op, BatchOutcome.rolled_back, error=failed.error)
        for op in ops
    ]


def _id_in_body(op: BatchOperation, body: Any) -> uuid.UUID | None:
    """A key-addressed upsert's id, from the representation it asked for."""
    value = body.get(op.id_column) if op.id_column and isinstance(body, dict) else None
    return uuid.UUID(value) if isinstance(value, str) else None


def _nth(answers: Sequence[HttpPart], index: int) -> HttpPart | None:
    return answers[index] if index < len(answers) else None


def _result_from_part(op: BatchOperation, part: HttpPart) -> BatchResult:
    entity_id = addressing.parse_entity_id(
        part.headers.get("odata-entityid") or part.headers.get("location")
    )
    body = _json_or_none(part)
    if part.status_code < 400:
        return BatchResult(
            op,
            BatchOutcome.ok,
            status_code=part.status_code,
            headers=part.headers,
            body=body,
            entity_id=entity_id or _id_in_body(op, body) or op.record_id,
        )
    code, message = _error_fields(body, part)
    error_class = error_class_for(part.status_code, code=code, message=message)
    error = error_class(message, status_code=part.status_code, code=code, request_label=op.label)
    return BatchResult(
        op,
        BatchOutcome.failed,
        status_code=part.status_code,
        headers=part.headers,
        body=body,
        error=error,
    )


def _json_or_none(part: HttpPart) -> Any:
    try:
        return part.json()
    except ValueError:
        return None


def _error_fields(body: Any, part: HttpPart) -> tuple[str, str]:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return str(error.get("code") or ""), str(error.get("message") or "")
    return "", part.body.decode("utf-8", "replace")[:500]


def accept_replayed_duplicates(
    items: Sequence[BatchItem], results: Sequence[BatchResult]
) -> list[BatchResult]:
    """After a replay, a create that hits its own id already committed counts as done.

    Only for batches resent after an attempt that may have executed (5xx, dropped
    connection): the ids were generated by us, so a duplicate can only be our own earlier
    write. A change set is atomic, so if its create is a duplicate the whole set committed.
    """
    accepted = list(results)
    position = 0
    for item in items:
        ops = item.operations if isinstance(item, ChangeSet) else [item]
        span = range(position, position + len(ops))
        position += len(ops)
        failed = [accepted[i] for i in span if accepted[i].outcome is BatchOutcome.failed]
        if len(failed) != 1 or not _is_own_duplicate(failed[0]):
            continue
        for i in span:
            op = accepted[i].operation
            accepted[i] = BatchResult(
                op, BatchOutcome.ok, entity_id=op.record_id, is_replayed_duplicate=True
            )
    return accepted


def _is_own_duplicate(result: BatchResult) -> bool:
    return isinstance(result.error, DuplicateRecordError) and result.operation.record_id is not None
