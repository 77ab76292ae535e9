"""The CRM change notification receiver, over real HTTP against the real app (uvicorn),
on both databases: stored once, refused with a clear 4xx and counted, ignored when it is
our own write or a table nothing reads, and shown by the status endpoint."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.connection.crm_notifications import MAX_NOTIFICATION_BYTES
from app.connection.defaults import recreate_default_setup
from app.connection.webhook_key import WEBHOOK_KEY_HEADER, new_webhook_key, set_webhook_key
from app.db import SessionMaker
from app.main import create_app
from app.models.integration import ConnectionSetup, CrmWebhook, DataverseEntityChange
from app.settings import Settings
from workers.queue import nudge_channel

PATH = "/api/v1/crm/notifications"
INTEGRATION_USER = uuid.UUID("00000000-0000-0000-0000-00000000a11e")
PERSON = uuid.UUID("00000000-0000-0000-0000-0000000b0b00")


def dataverse_context(**overrides: Any) -> dict[str, Any]:
    """A Dataverse ``RemoteExecutionContext`` as a webhook step posts it (Update of an
    account by a person), with the fields the receiver reads and some it does not."""
    record = str(uuid.uuid4())
    created = int(utc_now().timestamp() * 1000)
    body: dict[str, Any] = {
        "BusinessUnitId": str(uuid.uuid4()),
        "CorrelationId": str(uuid.uuid4()),
        "Depth": 1,
        "InitiatingUserId": str(PERSON),
        "InputParameters": [{"key": "Target", "value": {
            "__type": "Entity:http://schemas.microsoft.com/xrm/2011/Contracts",
            "Attributes": [{"key": "name", "value": "Fabrikam"},
                           {"key": "accountid", "value": record}],
            "Id": record, "LogicalName": "account", "FormattedValues": [], "KeyAttributes": [],
            "RelatedEntities": [], "EntityState": None, "RowVersion": None,
        }}],
        "IsExecutingOffline": False,
        "IsInTransaction": False,
        "IsOfflinePlayback": False,
        "IsolationMode": 1,
        "MessageName": "Update",
        "Mode": 1,
        "OperationCreatedOn": f"/Date({created})/",
        "OperationId": str(uuid.uuid4()),
        "OrganizationId": str(uuid.uuid4()),
        "OrganizationName": "org",
        "OutputParameters": [],
        "OwningExtension": {"Id": str(uuid.uuid4()), "LogicalName": "sdkmessageprocessingstep"},
        "ParentContext": None,
        "PostEntityImages": [],
        "PreEntityImages": [],
        "PrimaryEntityId": record,
        "PrimaryEntityName": "account",
        "RequestId": str(uuid.uuid4()),
        "SecondaryEntityName": "none",
        "SharedVariables": [],
        "Stage": 40,
        "UserId": str(PERSON),
    }  # fmt: skip
    body.update(overrides)
    return body


def dataverse_headers(body: dict[str, Any], key: str | None) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "x-ms-dynamics-organization": "org.crm.dynamics.com",
        "x-ms-dynamics-entity-name": str(body.get("PrimaryEntityName", "")),
        "x-ms-dynamics-request-name": str(body.get("MessageName", "")),
        "x-ms-correlation-request-id": str(uuid.uuid4()),
    }
    if key is not None:
        headers[WEBHOOK_KEY_HEADER] = key
    return headers


@pytest.fixture
async def webhook_key(session: AsyncSession, settings: Settings) -> str:
    """The default mappings (scheduled), the integration user, and a webhook with its key."""
    setup = ConnectionSetup(
        server_address="https://org.crm.dynamics.com", is_enabled=True,
        dataverse_connection_enabled=True, integration_user_id=INTEGRATION_USER,
    )  # fmt: skip
    session.add(setup)
    await session.flush()
    await recreate_default_setup(session, setup=setup)
    key = new_webhook_key()
    row = CrmWebhook(url=f"https://bridge.example{PATH}", registered_at=utc_now())
    set_webhook_key(settings, row, key)
    session.add(row)
    await session.commit()
    return key


async def _post(api: httpx.AsyncClient, body: dict[str, Any], key: str | None) -> httpx.Response:
    return await api.post(PATH, content=json.dumps(body), headers=dataverse_headers(body, key))


async def _changes(sessionmaker: SessionMaker) -> list[DataverseEntityChange]:
    async with sessionmaker() as session:
        return list((await session.exec(select(DataverseEntityChange))).all())


async def _webhook(sessionmaker: SessionMaker) -> CrmWebhook:
    async with sessionmaker() as session:
        return (await session.exec(select(CrmWebhook))).one()


async def test_a_delivery_is_stored_once_and_a_replay_changes_nothing(
    live_api: httpx.AsyncClient, sessionmaker: SessionMaker, webhook_key: str
) -> None:
    body = dataverse_context()
    first = await _post(live_api, body, webhook_key)
    assert first.status_code == 202, first.text
    assert first.json() == {
        "status": "accepted", "entity": "account", "message": "Update",
        "record_id": body["PrimaryEntityId"], "reason": "",
    }  # fmt: skip
    (change,) = await _changes(sessionmaker)
    assert (change.entity_name, str(change.record_id), change.message, change.delivery_key) == (
        "account", body["PrimaryEntityId"], "Update", body["OperationId"],
    )  # fmt: skip
    assert change.processed_at is None

    again = await _post(live_api, body, webhook_key)
    assert again.status_code == 409
    assert again.json()["detail"] == "This delivery was already received."
    assert len(await _changes(sessionmaker)) == 1
    webhook = await _webhook(sessionmaker)
    assert (webhook.received_count, webhook.refused_count) == (1, 0)
    assert webhook.last_received_at is not None


async def test_two_copies_at_once_store_one_row(
    live_api: httpx.AsyncClient, sessionmaker: SessionMaker, webhook_key: str
) -> None:
    body = dataverse_context()
    answers = await asyncio.gather(*(_post(live_api, body, webhook_key) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [202, 409, 409, 409]
    assert len(await _changes(sessionmaker)) == 1


async def test_the_request_id_names_the_delivery_without_an_operation_id(
    live_api: httpx.AsyncClient, sessionmaker: SessionMaker, webhook_key: str
) -> None:
    body = dataverse_context(OperationId=None, MessageName="Delete")
    assert (await _post(live_api, body, webhook_key)).status_code == 202
    (change,) = await _changes(sessionmaker)
    assert (change.delivery_key, change.message) == (body["RequestId"], "Delete")
    neither = dataverse_context(OperationId=None, RequestId=None)
    refused = await _post(live_api, neither, webhook_key)
    assert refused.status_code == 400
    assert "OperationId" in refused.json()["detail"]


async def test_a_missing_or_wrong_key_is_refused_and_counted(
    live_api: httpx.AsyncClient, sessionmaker: SessionMaker, webhook_key: str
) -> None:
    missing = await _post(live_api, dataverse_context(), None)
    wrong = await _post(live_api, dataverse_context(), webhook_key[:-2] + "xx")
    for answer in (missing, wrong):
        assert answer.status_code == 401
        assert answer.json() == {
            "error": "Unauthorized", "detail": f"Missing or wrong {WEBHOOK_KEY_HEADER} header."
        }  # fmt: skip
        assert webhook_key not in answer.text
    assert await _changes(sessionmaker) == []
    webhook = await _webhook(sessionmaker)
    assert (webhook.received_count, webhook.refused_count) == (0, 2)
    assert webhook.last_refusal == "wrong key"
    assert webhook.last_refused_at is not None
    assert webhook_key not in webhook.last_refusal


async def test_without_a_webhook_nothing_is_accepted(
    live_api: httpx.AsyncClient, sessionmaker: SessionMaker
) -> None:
    answer = await _post(live_api, dataverse_context(), "anything")
    assert answer.status_code == 401
    assert "No webhook is set up" in answer.json()["detail"]
    assert await _changes(sessionmaker) == []


def _old() -> str:
    return f"/Date({int((utc_now() - timedelta(days=8)).timestamp() * 1000)})/"


def _ahead() -> str:
    return f"/Date({int((utc_now() + timedelta(hours=1)).timestamp() * 1000)})/"


BAD_BODIES: list[tuple[str, dict[str, Any], int, str]] = [
    ("no message", {"MessageName": None}, 400, "MessageName is missing."),
    ("unknown message", {"MessageName": "Assign"}, 400, "is not one of Create, Update, Delete"),
    ("no table", {"PrimaryEntityName": ""}, 400, "PrimaryEntityName must be"),
    ("bad table", {"PrimaryEntityName": "Acc'ount"}, 400, "PrimaryEntityName must be"),
    ("no record", {"PrimaryEntityId": None}, 400, "PrimaryEntityId must be a GUID"),
    ("bad record", {"PrimaryEntityId": "not-a-guid"}, 400, "PrimaryEntityId is not a GUID"),
    ("bad operation", {"OperationId": "12"}, 400, "OperationId is not a GUID"),
    ("bad date", {"OperationCreatedOn": "yesterday"}, 400, "not /Date(ms)/"),
    ("from the future", {"OperationCreatedOn": _ahead()}, 400, "in the future"),
    ("too old", {"OperationCreatedOn": _old()}, 409, "more than 7 days old"),
]


async def test_malformed_deliveries_are_refused_with_the_reason_and_counted(
    live_api: httpx.AsyncClient, sessionmaker: SessionMaker, webhook_key: str
) -> None:
    failures = []
    for name, overrides, status, words in BAD_BODIES:
        body = dataverse_context(**overrides)
        answer = await _post(live_api, body, webhook_key)
        if answer.status_code != status or words not in answer.json().get("detail", ""):
            failures.append(f"{name}: {answer.status_code} {answer.text}")
    headers = dataverse_headers(dataverse_context(), webhook_key)
    untyped = {k: v for k, v in headers.items() if k != "content-type"}
    raw_cases = [
        ("not JSON", b"{not json", headers, "not valid JSON"),
        ("a list", b"[1, 2]", headers, "must be a RemoteExecutionContext"),
        ("text", b"hello", {**headers, "content-type": "text/plain"}, "must be JSON"),
        ("no type", b"{}", untyped, "must be JSON"),
    ]  # fmt: skip
    for name, content, raw_headers, words in raw_cases:
        answer = await live_api.post(PATH, content=content, headers=raw_headers)
        if answer.status_code != 400 or words not in answer.json().get("detail", ""):
            failures.append(f"{name}: {answer.status_code} {answer.text}")
    mismatch = dataverse_context()
    answer = await live_api.post(
        PATH, content=json.dumps(mismatch),
        headers={**dataverse_headers(mismatch, webhook_key), "x-ms-dynamics-entity-name": "lead"},
    )  # fmt: skip
    if answer.status_code != 400:
        failures.append(f"entity header mismatch: {answer.status_code}")

    assert failures == []
    assert await _changes(sessionmaker) == []
    webhook = await _webhook(sessionmaker)
    assert webhook.refused_count == len(BAD_BODIES) + len(raw_cases) + 1
    assert webhook.received_count == 0
    assert webhook.last_refusal == "entity mismatch"


async def test_an_oversized_body_is_refused_with_413(
    live_api: httpx.AsyncClient, sessionmaker: SessionMaker, webhook_key: str
) -> None:
    body = dataverse_context(SharedVariables=[{"key": "x", "value": "y" * MAX_NOTIFICATION_BYTES}])
    declared = await _post(live_api, body, webhook_key)
    assert declared.status_code == 413
    assert declared.json()["error"] == "PayloadTooLarge"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(MAX_NOTIFICATION_BYTES // 16_384 + 2):
            yield b" " * 16_384

    streamed = await live_api.post(
        PATH, content=chunks(), headers=dataverse_headers(body, webhook_key)
    )
    assert streamed.status_code == 413
    assert await _changes(sessionmaker) == []
    webhook = await _webhook(sessionmaker)
    assert (webhook.refused_count, webhook.last_refusal) == (2, "too large")


async def test_our_own_writes_and_unread_tables_are_ignored(
    live_api: httpx.AsyncClient, sessionmaker: SessionMaker, webhook_key: str
) -> None:
    own = dataverse_context(InitiatingUserId=str(INTEGRATION_USER), UserId=str(INTEGRATION_USER))
    answer = await _post(live_api, own, webhook_key)
    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored"
    assert answer.json()["reason"] == "a change made by the integration user"
    # The integration's application acting for a person (MSCRMCallerID, as `salesbridge
    # crm-edit` does): the person's change, stored.
    on_behalf = dataverse_context(InitiatingUserId=str(INTEGRATION_USER), UserId=str(PERSON))
    answer = await _post(live_api, on_behalf, webhook_key)
    assert answer.status_code == 202
    assert len(await _changes(sessionmaker)) == 1
    # CURRENCY only sends to the CRM: nothing brings a CRM currency to the ERP.
    currency = dataverse_context(PrimaryEntityName="transactioncurrency")
    answer = await _post(live_api, currency, webhook_key)
    assert (answer.status_code, answer.json()["status"]) == (200, "ignored")
    assert len(await _changes(sessionmaker)) == 1
    webhook = await _webhook(sessionmaker)
    assert (webhook.received_count, webhook.refused_count) == (3, 0)


@pytest.fixture
async def nudges(redis_url: str) -> AsyncIterator[aioredis.client.PubSub]:
    client = aioredis.Redis.from_url(redis_url)
    channel = client.pubsub()
    await channel.subscribe(nudge_channel(client))
    await channel.get_message(timeout=5)  # the subscription's confirmation
    yield channel
    await channel.aclose()
    await client.aclose()


async def test_a_stored_change_nudges_the_workers(
    live_api: httpx.AsyncClient, webhook_key: str, nudges: aioredis.client.PubSub
) -> None:
    body = dataverse_context(PrimaryEntityName="contact", MessageName="Create")
    assert (await _post(live_api, body, webhook_key)).status_code == 202
    message = await nudges.get_message(ignore_subscribe_messages=True, timeout=10)
    assert message is not None
    assert json.loads(message["data"]) == {"erp_tables": [], "crm_entities": ["contact"]}


async def test_the_status_shows_what_arrived(
    live_api: httpx.AsyncClient, webhook_key: str, live_reader: dict[str, str]
) -> None:
    assert (await _post(live_api, dataverse_context(), webhook_key)).status_code == 202
    assert (await _post(live_api, dataverse_context(), "wrong")).status_code == 401
    answer = await live_api.get(f"{PATH}/status", headers=live_reader)
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["registered"] is True
    assert found["url"] == f"https://bridge.example{PATH}"
    assert (found["received_count"], found["refused_count"], found["pending"]) == (1, 1, 1)
    assert found["last_refusal"] == "wrong key"
    assert webhook_key not in answer.text
    assert (await live_api.get(f"{PATH}/status")).status_code == 401


@pytest.fixture
def moved_settings(settings: Settings) -> Iterator[Settings]:
    yield settings.model_copy(update={"webhook_path": "/hooks/dataverse"})


async def test_the_receiver_follows_the_configured_path(
    moved_settings: Settings, sessionmaker: SessionMaker, webhook_key: str
) -> None:
    app = create_app(moved_settings, should_migrate=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            body = dataverse_context()
            moved = await client.post(
                "/hooks/dataverse", content=json.dumps(body),
                headers=dataverse_headers(body, webhook_key),
            )  # fmt: skip
            old = await client.post(PATH, content=json.dumps(body),
                                    headers=dataverse_headers(body, webhook_key))  # fmt: skip
    assert moved.status_code == 202, moved.text
    assert old.status_code in (404, 405)
    assert len(await _changes(sessionmaker)) == 1
