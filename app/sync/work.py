"""A record on its way through a page of a pass: ``ToCrmWork`` (ERP -> CRM) and
``FromCrmWork`` (CRM -> ERP). The passes fill them in steps; mapping hooks may add to them.
``Settlement`` is what a pass learned about both sides, for the coupling's fingerprints."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from app.dataverse import BatchOperation
from app.models.integration import IntegrationRecord
from app.sync.conflicts import SyncAction
from app.sync.fingerprints import Fingerprint, SideChanges


@dataclass
class Settlement:
    """What the pass read of a record, for its coupling (``app.sync.coupling_state``).

    ``destination_before`` is None when the destination was not compared field by field
    (a new record, or a source found unchanged by its fingerprint alone).
    """

    source_print: Fingerprint
    source_changes: SideChanges
    destination_before: Fingerprint | None = None
    destination_version: int | None = None  # the CRM row's version as read (ERP -> CRM)
    agreed: list[str] = field(default_factory=list)  # destination fields found equal
    written: list[str] = field(default_factory=list)  # destination fields written


@dataclass
class ToCrmWork:
    """One candidate ERP row on its way through a page."""

    row: Any
    coupling: IntegrationRecord | None
    erp_values: dict[str, Any] = field(default_factory=dict)
    action: SyncAction = SyncAction.modify
    crm_id: uuid.UUID | None = None
    values: dict[str, Any] = field(default_factory=dict)
    ops: list[BatchOperation] = field(default_factory=list)
    message: str = ""
    settlement: Settlement | None = None


@dataclass
class FromCrmWork:
    """One CRM record on its way through a page."""

    record: dict[str, Any]
    crm_id: uuid.UUID
    coupling: IntegrationRecord | None = None
    row: Any = None
    action: SyncAction = SyncAction.modify
    values: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    settlement: Settlement | None = None
