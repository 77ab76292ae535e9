"""Per-record decisions, pure: insert, modify, unchanged, skip, fail, uncouple.

``decide_missing_destination`` covers "no destination row": never coupled -> insert (or
ignore when only coupled records sync), coupled to a deleted row -> the mapping's
deletion-conflict resolution. ``decide_update`` covers a coupled row whose destination
exists: unchanged source, update conflicts on bidirectional fields, modify or unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from app.models.integration import (
    DeletionConflictResolution,
    Direction,
    UpdateConflictResolution,
)


class SyncAction(StrEnum):
    insert = "insert"
    modify = "modify"
    unchanged = "unchanged"
    skip = "skip"
    fail = "fail"
    uncouple = "uncouple"
    ignore = "ignore"  # not a candidate (uncoupled while only coupled records sync)


@dataclass(frozen=True)
class Decision:
    action: SyncAction
    message: str = ""


def decide_missing_destination(
    *,
    is_coupled: bool,
    only_coupled: bool,
    resolution: DeletionConflictResolution,
    destination: str,
) -> Decision:
    """No destination row: a new record, or a deletion conflict for a coupled one."""
    if not is_coupled:
        return Decision(SyncAction.ignore) if only_coupled else Decision(SyncAction.insert)
    if resolution == DeletionConflictResolution.restore_records:
        return Decision(SyncAction.insert)
    if resolution == DeletionConflictResolution.remove_coupling:
        return Decision(SyncAction.uncouple)
    return Decision(
        SyncAction.fail,
        f"The record cannot be updated because it is coupled to a deleted {destination} "
        "record. Restore it, remove the coupling, or set the mapping's deletion-conflict "
        "resolution.",
    )


def _conflict_message(
    pairs: Sequence[tuple[str, str]], table: str, entity: str, *, destination: str
) -> str:
    erp_field, crm_field = pairs[0]
    return (
        f"Cannot update a record in the {destination} table. The mapping between the {erp_field} "
        f"field on the {table} table and the {crm_field} field on the {entity} table is "
        "bi-directional, and one or both values have changed since the last synchronization."
    )


@dataclass(frozen=True)
class UpdateFacts:
    """What is known about a coupled record whose destination exists."""

    direction: Direction  # of this pass: to_crm or from_crm
    is_source_changed: bool
    is_destination_changed: bool
    is_mapping_bidirectional: bool
    conflicting: Sequence[tuple[str, str]]  # bidirectional (erp, crm) pairs that differ
    has_changes: bool  # the transfer would change the destination


def decide_update(
    facts: UpdateFacts, *, resolution: UpdateConflictResolution, table: str, entity: str
) -> Decision:
    if not facts.is_source_changed:
        return Decision(SyncAction.unchanged)
    is_conflict = (
        facts.is_mapping_bidirectional and facts.is_destination_changed and bool(facts.conflicting)
    )
    if is_conflict:
        if resolution == UpdateConflictResolution.none:
            destination = entity if facts.direction == Direction.to_crm else table
            message = _conflict_message(facts.conflicting, table, entity, destination=destination)
            return Decision(SyncAction.fail, message)
        winner = (
            Direction.from_crm
            if resolution == UpdateConflictResolution.get_update_from_crm
            else Direction.to_crm
        )
        if facts.direction != winner:
            return Decision(SyncAction.skip, "update conflict: the other side wins")
        return Decision(SyncAction.modify)
    return Decision(SyncAction.modify if facts.has_changes else SyncAction.unchanged)
