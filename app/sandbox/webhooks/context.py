"""The body and headers of a webhook request: a ``RemoteExecutionContext`` as JSON.

Shaped as Microsoft's sample in "Use webhooks to create external handlers for server
events": the data-contract serializer's property order (alphabetical), ``/Date(ms)/``
dates, lookups as ``EntityReference``, choices as ``OptionSetValue``, money as ``Money``,
a ``ParentContext`` for the main operation (stage 30), and the
``AsynchronousStepPrimaryName`` post image an asynchronous step gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.sandbox.schema.column_types import attribute_type, lookup_name, lookup_targets
from app.sandbox.schema.entities import BY_SET, EntityType
from app.sandbox.webhooks.changes import Change
from app.sandbox.webhooks.steps import Step

_CONTRACTS = "http://schemas.microsoft.com/xrm/2011/Contracts"
_LOGICAL = "@Microsoft.Dynamics.CRM.lookuplogicalname"
_NO_USER_OBJECT = "00000000-0000-0000-0000-000000000000"
MAIN_OPERATION, POST_OPERATION = 30, 40


@dataclass(frozen=True)
class Org:
    organization_id: str
    organization_name: str
    business_unit_id: str
    domain: str  # x-ms-dynamics-organization: the host clients reach the org on


@dataclass(frozen=True)
class Operation:
    """One asynchronous operation (system job): a change delivered for a step."""

    change: Change
    step: Step
    operation_id: str  # the job's id: the same on every attempt and duplicate
    correlation_id: str
    created_on: datetime


def net_date(value: datetime) -> str:
    """``/Date(<ms since 1970 UTC>)/``, the data-contract serializer's DateTime."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return f"/Date({int(value.timestamp() * 1000)})/"


def entity_reference(record_id: str, logical: str | None) -> dict[str, Any]:
    return {"__type": f"EntityReference:{_CONTRACTS}", "Id": record_id, "KeyAttributes": [],
            "LogicalName": logical, "Name": None, "RowVersion": None}  # fmt: skip


def _attribute(entity: EntityType, column: str, value: Any, row: dict[str, Any]) -> Any:
    if value is None:
        return None
    lookup = lookup_name(column)
    if lookup is not None:
        logical = row.get(column + _LOGICAL)
        if not logical:
            targets = lookup_targets(entity, lookup)
            logical = BY_SET[targets[0]].logical if targets else None
        return entity_reference(str(value), logical)
    kind = attribute_type(entity, column)
    if kind == "DateTime" and isinstance(value, str):
        try:
            return net_date(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return value
    if kind == "Money":
        return {"__type": f"Money:{_CONTRACTS}", "Value": value}
    if kind in ("Picklist", "State", "Status") and isinstance(value, int):
        return {"__type": f"OptionSetValue:{_CONTRACTS}", "Value": value}
    return value


def _attributes(entity: EntityType, row: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"key": lookup_name(column) or column, "value": _attribute(entity, column, value, row)}
        for column, value in row.items()
        if "@" not in column
    ]


def _entity(
    entity: EntityType, record_id: str, row: dict[str, Any], version: Any
) -> dict[str, Any]:
    return {"__type": f"Entity:{_CONTRACTS}", "Attributes": _attributes(entity, row),
            "EntityState": None, "FormattedValues": [], "Id": record_id, "KeyAttributes": [],
            "LogicalName": entity.logical, "RelatedEntities": [],
            "RowVersion": None if version is None else str(version)}  # fmt: skip


def _target(change: Change) -> dict[str, Any]:
    if change.message == "Delete":
        return entity_reference(change.record_id, change.entity.logical)
    return _entity(change.entity, change.record_id, change.attributes, change.row_version)


def _post_images(change: Change) -> list[dict[str, Any]]:
    entity = change.entity
    if change.message == "Delete" or not entity.primary_name:
        return []
    row = {entity.primary_name: change.primary_name, entity.pk: change.record_id}
    image = _entity(entity, change.record_id, row, None)
    del image["__type"]  # as in Microsoft's sample: an image is not polymorphic
    return [{"key": "AsynchronousStepPrimaryName", "value": image}]


def execution_context(
    operation: Operation, org: Org, user_objects: dict[str, str | None]
) -> dict[str, Any]:
    """The ``RemoteExecutionContext`` of one operation, as a JSON-ready dict."""
    change, step = operation.change, operation.step
    owning: dict[str, Any] = {
        "Id": step.step_id,
        "KeyAttributes": [],
        "LogicalName": "sdkmessageprocessingstep",
        "Name": step.name,
        "RowVersion": None,
    }
    outputs = [{"key": "id", "value": change.record_id}] if change.message == "Create" else []

    def context(stage: int, parent: dict[str, Any] | None, images: list[Any]) -> dict[str, Any]:
        return {
            "BusinessUnitId": org.business_unit_id,
            "CorrelationId": operation.correlation_id,
            "Depth": 1,
            "InitiatingUserAzureActiveDirectoryObjectId": (
                user_objects.get(change.initiating_user_id) or _NO_USER_OBJECT
            ),
            "InitiatingUserId": change.initiating_user_id,
            "InputParameters": [{"key": "Target", "value": _target(change)}],
            "IsExecutingOffline": False,
            "IsInTransaction": False,
            "IsOfflinePlayback": False,
            "IsolationMode": 1,
            "MessageName": change.message,
            "Mode": 1,
            "OperationCreatedOn": net_date(operation.created_on),
            "OperationId": operation.operation_id,
            "OrganizationId": org.organization_id,
            "OrganizationName": org.organization_name,
            "OutputParameters": outputs,
            "OwningExtension": owning,
            "ParentContext": parent,
            "PostEntityImages": images,
            "PreEntityImages": [],
            "PrimaryEntityId": change.record_id,
            "PrimaryEntityName": change.entity.logical,
            "RequestId": None,
            "SecondaryEntityName": "none",
            "SharedVariables": [],
            "Stage": stage,
            "UserAzureActiveDirectoryObjectId": user_objects.get(change.user_id) or _NO_USER_OBJECT,
            "UserId": change.user_id,
        }

    return context(POST_OPERATION, context(MAIN_OPERATION, None, []), _post_images(change))


def request_headers(operation: Operation, org: Org) -> dict[str, str]:
    """The headers Dataverse sends with every webhook request (before authentication)."""
    return {
        "Content-Type": "application/json",
        "x-ms-dynamics-organization": org.domain,
        "x-ms-dynamics-entity-name": operation.change.entity.logical,
        "x-ms-dynamics-request-name": operation.change.message,
        "x-ms-correlation-request-id": operation.correlation_id,
    }
