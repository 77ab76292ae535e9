"""The CRM side of the webhook: the service endpoint and step rows, and the ``Registrar``
that creates, repairs and deletes them over the Dataverse Web API.

The endpoint (``serviceendpoints``: contract Webhook, JSON, the key in an HTTP header named
``WEBHOOK_KEY_HEADER``) is found by its stored id, else by name, else created, and always
brought up to date; the steps under it (``_eventhandler_value``) are matched to the wanted
ones by their message filter (``sdkmessagefilters``: table and message), repaired when
changed by hand, deleted when unwanted or doubled, and the missing ones created in one
``$batch``. Each id made or deleted is written to the ``crm_webhook`` row at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any
from xml.sax.saxutils import quoteattr

from app.connection.webhook_key import WEBHOOK_KEY_HEADER
from app.connection.webhook_steps import StepKey, WantedStep
from app.dataverse import DataverseClient
from app.dataverse.addressing import bind, odata_literal
from app.dataverse.batch import create_op
from app.dataverse.errors import DataverseProtocolError
from app.logs import get_logger
from app.models.integration import CrmWebhook

log = get_logger("salesbridge.connection.webhook")

ENDPOINT_NAME = "Salesbridge change notifications"
SERVICE_ENDPOINTS = "serviceendpoints"
ENDPOINT_KEY = "serviceendpointid"
STEPS = "sdkmessageprocessingsteps"
STEP_KEY = "sdkmessageprocessingstepid"
CONTRACT_WEBHOOK = 8
MESSAGE_FORMAT_JSON = 2
AUTH_HTTP_HEADER = 5
MODE_ASYNCHRONOUS = 1
STAGE_POST_OPERATION = 40
DEPLOYMENT_SERVER = 0
STEP_ENABLED, STEP_ENABLED_STATUS = 0, 1  # a step disabled by hand sends nothing


def authvalue(key: str) -> str:
    """The HttpHeader ``authvalue``: the headers Dataverse adds to every delivery."""
    setting = f"<setting name={quoteattr(WEBHOOK_KEY_HEADER)} value={quoteattr(key)} />"
    return f"<settings>{setting}</settings>"


def endpoint_body(url: str, key: str) -> dict[str, Any]:
    return {
        "name": ENDPOINT_NAME,
        "description": "Salesbridge near-real-time synchronization: changes of mapped tables.",
        "contract": CONTRACT_WEBHOOK,
        "messageformat": MESSAGE_FORMAT_JSON,
        "authtype": AUTH_HTTP_HEADER,
        "url": url,
        "authvalue": authvalue(key),
    }


def step_body(
    step: WantedStep, *, endpoint_id: uuid.UUID, message_id: uuid.UUID, filter_id: uuid.UUID
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": step.name,
        "description": f"Notifies Salesbridge of each {step.key.message} of {step.key.entity}.",
        "mode": MODE_ASYNCHRONOUS,
        "stage": STAGE_POST_OPERATION,
        "rank": 1,
        "supporteddeployment": DEPLOYMENT_SERVER,
        "asyncautodelete": True,
        "eventhandler_serviceendpoint@odata.bind": bind(SERVICE_ENDPOINTS, endpoint_id),
        "sdkmessageid@odata.bind": bind("sdkmessages", message_id),
        "sdkmessagefilterid@odata.bind": bind("sdkmessagefilters", filter_id),
    }
    if step.key.message == "Update":
        body["filteringattributes"] = step.filtering_attributes or None
    return body


def as_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


async def _first(crm: DataverseClient, entity_set: str, *, filter: str, select: list[str]) -> Any:
    async for row in crm.query(entity_set, filter=filter, select=select, top=1):
        return row
    return None


async def _steps_under(crm: DataverseClient, endpoint_id: uuid.UUID) -> list[dict[str, Any]]:
    select = [STEP_KEY, "name", "_sdkmessagefilterid_value", "filteringattributes", "mode",
              "stage", "statecode"]  # fmt: skip
    filter = f"_eventhandler_value eq {endpoint_id}"
    return [row async for row in crm.query(STEPS, select=select, filter=filter)]


async def _message_ids(crm: DataverseClient, names: Iterable[str]) -> dict[str, uuid.UUID]:
    wanted = sorted(set(names))
    filter = " or ".join(f"name eq {odata_literal(name)}" for name in wanted)
    found: dict[str, uuid.UUID] = {}
    async for row in crm.query("sdkmessages", select=["sdkmessageid", "name"], filter=filter):
        found[str(row["name"])] = uuid.UUID(str(row["sdkmessageid"]))
    return found


async def _filter_ids(
    crm: DataverseClient, keys: Iterable[StepKey], messages: dict[str, uuid.UUID]
) -> dict[StepKey, uuid.UUID]:
    """The ``sdkmessagefilters`` of each (message, table), in one query."""
    keys = list(keys)
    entities = sorted({k.entity for k in keys})
    message_ids = {message_id: name for name, message_id in messages.items()}
    if not entities or not message_ids:
        return {}
    by_entity = " or ".join(f"primaryobjecttypecode eq {odata_literal(e)}" for e in entities)
    by_message = " or ".join(f"_sdkmessageid_value eq {m}" for m in message_ids)
    select = ["sdkmessagefilterid", "primaryobjecttypecode", "_sdkmessageid_value"]
    found: dict[StepKey, uuid.UUID] = {}
    async for row in crm.query(
        "sdkmessagefilters", select=select, filter=f"({by_entity}) and ({by_message})"
    ):
        message = message_ids.get(uuid.UUID(str(row["_sdkmessageid_value"])))
        if message is not None:
            key = StepKey(message, str(row["primaryobjecttypecode"]))
            found.setdefault(key, uuid.UUID(str(row["sdkmessagefilterid"])))
    return {key: found[key] for key in keys if key in found}


class Registrar:
    """One registration or removal against an open CRM client; every id it creates or
    deletes is written to the row at once, so a failure half-way leaves a true record."""

    def __init__(self, crm: DataverseClient, row: CrmWebhook) -> None:
        self.crm = crm
        self.row = row
        self.created = self.deleted = 0

    def _record_steps(self, steps: list[dict[str, Any]]) -> None:
        self.row.steps = sorted(steps, key=lambda s: (s["entity"], s["message"]))

    async def ensure_endpoint(self, url: str, key: str) -> uuid.UUID:
        """The stored endpoint, else ours found by name, else a new one; always brought up
        to date (a hand-edited url or key in the CRM is repaired by a redeploy)."""
        body = endpoint_body(url, key)
        endpoint_id = self.row.service_endpoint_id
        if endpoint_id is not None:
            found = await _first(
                self.crm, SERVICE_ENDPOINTS, filter=f"{ENDPOINT_KEY} eq {endpoint_id}",
                select=[ENDPOINT_KEY],
            )  # fmt: skip
            endpoint_id = None if found is None else endpoint_id
        if endpoint_id is None:
            by_name = await _first(
                self.crm, SERVICE_ENDPOINTS,
                filter=f"name eq {odata_literal(ENDPOINT_NAME)} and contract eq {CONTRACT_WEBHOOK}",
                select=[ENDPOINT_KEY],
            )  # fmt: skip
            endpoint_id = None if by_name is None else as_uuid(by_name[ENDPOINT_KEY])
        if endpoint_id is None:
            endpoint_id = await self.crm.create(SERVICE_ENDPOINTS, body, primary_key=ENDPOINT_KEY)
            self.row.service_endpoint_id = endpoint_id
            log.info("crm_webhook_endpoint_created", service_endpoint_id=str(endpoint_id))
            return endpoint_id
        self.row.service_endpoint_id = endpoint_id
        await self.crm.update(SERVICE_ENDPOINTS, endpoint_id, body)
        return endpoint_id

    async def delete_step(self, step_id: uuid.UUID) -> None:
        await self.crm.delete(STEPS, step_id, missing_ok=True)
        self.deleted += 1
        kept = [s for s in self.row.steps if as_uuid(s.get("step_id")) != step_id]
        self._record_steps(kept)

    async def converge_steps(
        self, endpoint_id: uuid.UUID, wanted: dict[StepKey, WantedStep]
    ) -> list[StepKey]:
        """Steps under the endpoint made equal to ``wanted``; returns the wanted steps the
        CRM offers no message filter for (those tables cannot notify that message)."""
        recorded = {i for i in (as_uuid(s.get("step_id")) for s in self.row.steps) if i}
        messages = await _message_ids(self.crm, (k.message for k in wanted))
        filters = await _filter_ids(self.crm, wanted, messages)
        key_of_filter = {filter_id: key for key, filter_id in filters.items()}
        kept: dict[StepKey, uuid.UUID] = {}
        existing = await _steps_under(self.crm, endpoint_id)
        for row in existing:
            step_id = uuid.UUID(str(row[STEP_KEY]))
            filter_id = as_uuid(row.get("_sdkmessagefilterid_value"))
            key = key_of_filter.get(filter_id) if filter_id else None
            if key is None or key in kept:
                await self.delete_step(step_id)
                continue
            kept[key] = step_id
            await self._repair(step_id, row, wanted[key])
        # Steps recorded under an endpoint that was recreated since: not wanted any more.
        for gone in recorded - {uuid.UUID(str(row[STEP_KEY])) for row in existing}:
            await self.delete_step(gone)
        self._record_steps([step_record(key, step_id) for key, step_id in kept.items()])
        missing = [s for k, s in sorted(wanted.items()) if k not in kept and k in filters]
        await self._create_steps(endpoint_id, missing, messages, filters)
        return sorted(k for k in wanted if k not in filters)

    async def _create_steps(
        self,
        endpoint_id: uuid.UUID,
        steps: list[WantedStep],
        messages: dict[str, uuid.UUID],
        filters: dict[StepKey, uuid.UUID],
    ) -> None:
        """One ``$batch`` (a first enable creates dozens of steps: one round trip, not one
        each); the steps it made are recorded even when another was refused."""
        if not steps:
            return
        operations = [
            create_op(
                STEPS,
                step_body(step, endpoint_id=endpoint_id, message_id=messages[step.key.message],
                          filter_id=filters[step.key]),
                primary_key=STEP_KEY,
            )
            for step in steps
        ]  # fmt: skip
        results = await self.crm.batch(operations, continue_on_error=True)
        made = [
            step_record(step.key, result.operation.record_id)
            for step, result in zip(steps, results, strict=True)
            if result.is_ok and result.operation.record_id is not None
        ]
        self.created += len(made)
        self._record_steps([*self.row.steps, *made])
        refused = next((r.error for r in results if not r.is_ok and r.error is not None), None)
        if refused is not None:
            raise refused
        if len(made) < len(steps):
            msg = f"{len(steps) - len(made)} of {len(steps)} steps were not created"
            raise DataverseProtocolError(msg)

    async def _repair(self, step_id: uuid.UUID, row: dict[str, Any], step: WantedStep) -> None:
        """A kept step changed by hand, or whose columns the mappings now read differently."""
        changes: dict[str, Any] = {}
        if row.get("statecode") not in (None, STEP_ENABLED):
            changes.update(statecode=STEP_ENABLED, statuscode=STEP_ENABLED_STATUS)
        if row.get("mode") != MODE_ASYNCHRONOUS:
            changes["mode"] = MODE_ASYNCHRONOUS
        if row.get("stage") != STAGE_POST_OPERATION:
            changes["stage"] = STAGE_POST_OPERATION
        if row.get("name") != step.name:
            changes["name"] = step.name
        if step.key.message == "Update":
            wanted = step.filtering_attributes
            if (row.get("filteringattributes") or "") != wanted:
                changes["filteringattributes"] = wanted or None
        if changes:
            await self.crm.update(STEPS, step_id, changes)

    async def remove_all(self) -> None:
        """Every step under the endpoint and every step recorded, then the endpoint."""
        endpoint_id = self.row.service_endpoint_id
        if endpoint_id is not None:
            for row in await _steps_under(self.crm, endpoint_id):
                await self.delete_step(uuid.UUID(str(row[STEP_KEY])))
        for record in list(self.row.steps):
            step_id = as_uuid(record.get("step_id"))
            if step_id is None:
                self._record_steps([s for s in self.row.steps if s is not record])
                continue
            await self.delete_step(step_id)
        if endpoint_id is not None:
            await self.crm.delete(SERVICE_ENDPOINTS, endpoint_id, missing_ok=True)
            self.row.service_endpoint_id = None
            log.info("crm_webhook_endpoint_deleted", service_endpoint_id=str(endpoint_id))
        self.row.url = ""
        self.row.registered_at = None


def step_record(key: StepKey, step_id: uuid.UUID) -> dict[str, Any]:
    return {"message": key.message, "entity": key.entity, "step_id": str(step_id)}
