"""Which fields a pass writes, pure: a three-way merge per field against the fingerprints.

A pass reads a source record whose side changed since the last sync and compares it with
the destination record. For each field whose values differ:

- a one-way field (ERP -> CRM in the ERP -> CRM pass, CRM -> ERP in the other) is written:
  that side owns it;
- a bidirectional field is written when the source changed it; when only the destination
  changed it, it is left for the other direction's pass to bring back; when both changed
  it, it is an update conflict, settled by the mapping's conflict resolution
  (``conflicts.decide_update``); when neither did (the stored values never compared
  equal, a transformation for example) it is left alone, so no write ever happens without
  a change behind it, and two passes can never hand a value back and forth.

Afterwards the stored fingerprints move only for what both sides now hold alike: the
fields written (as the destination returned them) and the fields found equal (as they
were read before the write). A field left for the other pass keeps its stored digest, so
that pass still sees it changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.sync.fingerprints import Fingerprint, SideChanges, merged


@dataclass
class FieldPlan:
    send: dict[str, Any] = field(default_factory=dict)  # destination field -> value
    conflicting: list[tuple[str, str]] = field(default_factory=list)  # (ERP, CRM) fields
    on_conflict: dict[str, Any] = field(default_factory=dict)  # written if this side wins


def plan_fields(
    diff: Mapping[str, Any],
    *,
    pairs: Mapping[str, str],
    source: SideChanges,
    destination: SideChanges,
    destination_changed_if_unknown: bool,
    to_crm: bool,
) -> FieldPlan:
    """Split the differing destination fields (``diff``) by the rules of the docstring.

    ``pairs``: bidirectional fields, destination field -> source field.
    """
    plan = FieldPlan()
    for name, value in diff.items():
        source_field = pairs.get(name)
        if source_field is None:  # one way: the source side owns it
            plan.send[name] = value
            continue
        by_source = source.as_source(source_field)
        by_destination = destination.as_destination(name, unknown=destination_changed_if_unknown)
        if by_source and by_destination:
            plan.conflicting.append((source_field, name) if to_crm else (name, source_field))
            plan.on_conflict[name] = value
        elif by_source:
            plan.send[name] = value
    return plan


def written_fields(plan: FieldPlan, *, won: bool) -> dict[str, Any]:
    """What a pass that decided to modify writes: its changes, and the conflicts it won."""
    return {**plan.send, **(plan.on_conflict if won else {})}


def agreed_fields(
    desired: Mapping[str, Any], diff: Mapping[str, Any], pairs: Mapping[str, str]
) -> list[str]:
    """Bidirectional destination fields the transfer gave a value that is already there."""
    return [name for name in pairs if name in desired and name not in diff]


def after_pass(
    stored: Mapping[str, str] | None,
    *,
    before: Fingerprint,
    after: Fingerprint,
    agreed: Iterable[str],
    written: Iterable[str],
) -> Fingerprint:
    """The destination's new stored fingerprint: equal fields as read, written as returned."""
    return merged(merged(stored, before, agreed), after, written)
