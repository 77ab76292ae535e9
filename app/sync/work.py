"""A record on its way through a page of a pass: ``ToCrmWork`` (ERP -> CRM) and
``FromCrmWork`` (CRM -> ERP). The passes fill them in steps; mapping hooks may add to them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from app.dataverse import BatchOperation
from app.models.integration import IntegrationRecord
from app.sync.conflicts import SyncAction


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
