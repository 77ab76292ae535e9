"""Actions the sandbox serves besides record writes: ``WinOpportunity`` and
``LoseOpportunity``, the supported way to close an opportunity (a PATCH of its state is
refused, as in Dataverse)."""

from __future__ import annotations

from typing import Any

from app.sandbox.errors import SandboxError, does_not_exist
from app.sandbox.operations.payload import reference_to_ref, resolve_ref
from app.sandbox.operations.records import Records

# Action -> (state it closes to, default status).
CLOSE_ACTIONS = {"WinOpportunity": (1, 3), "LoseOpportunity": (2, 4)}


def close_opportunity(action: str, body: dict[str, Any], records: Records) -> None:
    close = body.get("OpportunityClose")
    target = close.get("opportunityid@odata.bind") if isinstance(close, dict) else None
    if not isinstance(target, str):
        msg = "OpportunityClose needs 'opportunityid@odata.bind'."
        raise SandboxError(400, "0x80040203", msg)
    ref = reference_to_ref(target, records.context)
    doc = resolve_ref(ref, records.store)
    if doc is None:
        raise does_not_exist(ref.entity.logical, ref.describe())
    state, default_status = CLOSE_ACTIONS[action]
    if doc.get("statecode") != 0:
        msg = "The opportunity is already closed."
        raise SandboxError(400, "0x80040203", msg)
    status = body.get("Status", default_status)
    entity = ref.entity
    if entity.state is None or status not in entity.state.statuses[state]:
        msg = f"{status} is not a valid status code for {action}."
        raise SandboxError(400, "0x80040203", msg)
    records.close(entity, doc, state, status)
