"""Webhook deliveries over real HTTP: a step registered through the Web API, a change
committed through it, and the ``RemoteExecutionContext`` a real receiver gets, with
Dataverse's headers and the endpoint's authentication; retries, faults and the control API.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.fixtures.sandbox import RunningSandbox, crm_person
from tests.sandbox.conftest import entity_id, seed
from tests.sandbox.webhook_receiver import (
    KEY_HEADER,
    Receiver,
    header_settings,
    register_webhook,
    set_webhooks,
    settle,
    start_receiver,
    webhook_state,
)

_NET_DATE = re.compile(r"^/Date\(\d+\)/$")
_CONTRACTS = "http://schemas.microsoft.com/xrm/2011/Contracts"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with start_receiver() as running:
        yield running


async def test_create_update_delete_deliver_the_execution_context(
    api: httpx.AsyncClient, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    _, step_ids = await register_webhook(api, receiver.url)
    person = await crm_person(sandbox)
    app_user = sandbox.state.user_id

    created = await api.post(
        "accounts", json={"name": "Contoso", "accountnumber": "C-1", "creditlimit": 1000}
    )
    assert created.status_code == 204
    account_id = entity_id(created)
    as_person = {"MSCRMCallerID": person}
    updated = await api.patch(
        f"accounts({account_id})", json={"name": "Contoso Ltd"}, headers=as_person
    )
    assert updated.status_code == 204
    assert (await api.delete(f"accounts({account_id})")).status_code == 204

    state = await settle(sandbox)
    assert state["counters"]["delivered"] == 3 and state["counters"]["failed"] == 0
    by_message = {r.body["MessageName"]: r for r in receiver.delivered}
    assert set(by_message) == {"Create", "Update", "Delete"}
    operation_ids = {r.operation_id for r in receiver.delivered}
    assert len(operation_ids) == 3 and all(uuid.UUID(o) for o in operation_ids)

    create = by_message["Create"]
    body = create.body
    assert (body["PrimaryEntityName"], body["PrimaryEntityId"]) == ("account", account_id)
    assert (body["InitiatingUserId"], body["UserId"]) == (app_user, app_user)
    assert (body["Stage"], body["Mode"], body["Depth"]) == (40, 1, 1)
    assert body["OrganizationId"] == sandbox.state.identity.organization_id
    assert body["BusinessUnitId"] == sandbox.state.identity.business_unit_id
    assert body["OwningExtension"]["Id"] == step_ids[0]
    assert body["OwningExtension"]["LogicalName"] == "sdkmessageprocessingstep"
    assert body["OutputParameters"] == [{"key": "id", "value": account_id}]
    assert _NET_DATE.match(body["OperationCreatedOn"])
    assert body["ParentContext"]["Stage"] == 30
    assert body["PostEntityImages"][0]["key"] == "AsynchronousStepPrimaryName"
    target = create.target
    assert target["__type"] == f"Entity:{_CONTRACTS}"
    assert (target["Id"], target["LogicalName"]) == (account_id, "account")
    attributes = create.attributes
    assert attributes["name"] == "Contoso" and attributes["accountnumber"] == "C-1"
    assert attributes["accountid"] == account_id
    assert attributes["creditlimit"] == {"__type": f"Money:{_CONTRACTS}", "Value": 1000}
    assert attributes["statecode"] == {"__type": f"OptionSetValue:{_CONTRACTS}", "Value": 0}
    assert attributes["ownerid"]["Id"] == app_user
    assert attributes["ownerid"]["LogicalName"] == "systemuser"
    assert _NET_DATE.match(attributes["createdon"])

    headers = create.headers
    assert headers["content-type"] == "application/json"
    assert headers[KEY_HEADER] == "k1"
    assert headers["x-ms-dynamics-entity-name"] == "account"
    assert headers["x-ms-dynamics-request-name"] == "Create"
    assert headers["x-ms-dynamics-organization"] == "127.0.0.1"
    assert headers["x-ms-correlation-request-id"] == body["CorrelationId"]

    update = by_message["Update"]
    assert (update.body["InitiatingUserId"], update.body["UserId"]) == (app_user, person)
    changed = update.attributes
    assert changed["name"] == "Contoso Ltd" and changed["accountid"] == account_id
    assert changed["modifiedby"]["Id"] == person and _NET_DATE.match(changed["modifiedon"])
    assert "accountnumber" not in changed  # only what the update set or changed
    assert update.headers["x-ms-dynamics-request-name"] == "Update"

    delete = by_message["Delete"]
    assert delete.target == {
        "__type": f"EntityReference:{_CONTRACTS}",
        "Id": account_id,
        "KeyAttributes": [],
        "LogicalName": "account",
        "Name": None,
        "RowVersion": None,
    }
    assert delete.body["PostEntityImages"] == [] and delete.body["OutputParameters"] == []


async def test_webhook_key_and_query_string_authentication(
    api: httpx.AsyncClient, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    await register_webhook(api, receiver.url, messages=("Create",), authtype=4, authvalue="s3cret")
    await register_webhook(
        api,
        receiver.url,
        messages=("Create",),
        authtype=6,
        authvalue=header_settings(tenant="t1", sig="a&b"),
    )
    assert (await api.post("accounts", json={"name": "A"})).status_code == 204
    await settle(sandbox)
    queries = sorted((r.query for r in receiver.delivered), key=len)
    assert queries == [{"code": "s3cret"}, {"tenant": "t1", "sig": "a&b"}]
    assert all(KEY_HEADER not in r.headers for r in receiver.delivered)


async def test_a_failing_receiver_gets_it_on_the_third_attempt(
    api: httpx.AsyncClient, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    await set_webhooks(sandbox, backoff_ms=20)
    await register_webhook(api, receiver.url, messages=("Create",))
    receiver.answers.extend([500, 500])
    assert (await api.post("accounts", json={"name": "Retried"})).status_code == 204
    state = await settle(sandbox)
    assert [r.status for r in receiver.requests] == [500, 500, 200]
    assert len({r.operation_id for r in receiver.requests}) == 1  # one job, three attempts
    counters = state["counters"]
    assert (counters["attempts"], counters["retried"], counters["delivered"]) == (3, 2, 1)
    assert counters["failed"] == 0


async def test_a_refusal_is_not_retried_but_a_throttle_is(
    api: httpx.AsyncClient, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    await set_webhooks(sandbox, backoff_ms=10)
    await register_webhook(api, receiver.url, messages=("Create",))
    receiver.answers.extend([409])  # "already received": sending it again changes nothing
    assert (await api.post("accounts", json={"name": "Refused"})).status_code == 204
    state = await settle(sandbox)
    assert [r.status for r in receiver.requests] == [409]
    assert (state["counters"]["failed"], state["counters"]["retried"]) == (1, 0)
    receiver.answers.extend([429, 408])
    assert (await api.post("accounts", json={"name": "Throttled"})).status_code == 204
    state = await settle(sandbox)
    assert [r.status for r in receiver.requests][1:] == [429, 408, 200]
    assert state["counters"]["delivered"] == 1


async def test_a_delivery_is_given_up_after_max_attempts(
    api: httpx.AsyncClient, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    await set_webhooks(sandbox, backoff_ms=10, max_attempts=2)
    await register_webhook(api, receiver.url, messages=("Create",), authtype=4, authvalue="key!")
    receiver.answers.extend([503, 502])
    assert (await api.post("accounts", json={"name": "Lost"})).status_code == 204
    state = await settle(sandbox)
    assert [r.status for r in receiver.requests] == [503, 502]
    assert state["counters"]["failed"] == 1 and state["counters"]["delivered"] == 0
    [failure] = state["recent_failures"]
    assert failure["attempts"] == 2 and failure["error"] == "HTTP 502"
    assert failure["url"] == receiver.url  # without the query: the key is a secret
    assert "key!" not in str(state)


async def test_a_timeout_is_retried(
    api: httpx.AsyncClient, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    await set_webhooks(sandbox, backoff_ms=10, timeout_ms=200)
    await register_webhook(api, receiver.url, messages=("Create",))
    receiver.holds.append(1.0)  # the first attempt outlasts the timeout
    assert (await api.post("accounts", json={"name": "Slow"})).status_code == 204
    state = await settle(sandbox)
    assert state["counters"]["attempts"] == 2 and state["counters"]["delivered"] == 1


async def test_drop_rate_one_delivers_nothing(
    api: httpx.AsyncClient, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    await set_webhooks(sandbox, drop_rate=1)
    await register_webhook(api, receiver.url, messages=("Create",))
    for name in ("A", "B", "C"):
        assert (await api.post("accounts", json={"name": name})).status_code == 204
    state = await settle(sandbox)
    assert receiver.requests == []
    assert state["counters"]["queued"] == 3 and state["counters"]["dropped"] == 3
    assert state["counters"]["attempts"] == 0


async def test_duplicate_rate_one_delivers_the_same_operation_twice(
    api: httpx.AsyncClient, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    await set_webhooks(sandbox, duplicate_rate=1)
    await register_webhook(api, receiver.url, messages=("Create",))
    assert (await api.post("accounts", json={"name": "Twice"})).status_code == 204
    state = await settle(sandbox)
    first, second = receiver.delivered
    assert first.operation_id == second.operation_id
    assert first.body == second.body
    assert state["counters"]["duplicated"] == 1 and state["counters"]["delivered"] == 2


async def test_fail_rate_is_seeded_and_retried(
    api: httpx.AsyncClient, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    await set_webhooks(sandbox, fail_rate=0.5, seed=7, backoff_ms=5, max_attempts=10)
    await register_webhook(api, receiver.url, messages=("Create",))
    for number in range(6):
        assert (await api.post("accounts", json={"name": f"F{number}"})).status_code == 204
    state = await settle(sandbox)
    counters = state["counters"]
    assert counters["delivered"] == 6 and len(receiver.delivered) == 6
    assert counters["failures_injected"] > 0
    assert counters["attempts"] == 6 + counters["failures_injected"]


async def test_no_delivery_without_a_matching_enabled_async_post_operation_step(
    api: httpx.AsyncClient, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    assert (await api.post("accounts", json={"name": "No step"})).status_code == 204
    await register_webhook(api, receiver.url, messages=("Create",), mode=0)  # synchronous
    await register_webhook(api, receiver.url, messages=("Create",), stage=20)  # pre-operation
    await register_webhook(api, receiver.url, messages=("Create",), table="contact")
    _, [disabled] = await register_webhook(api, receiver.url, messages=("Create",))
    off = await api.patch(f"sdkmessageprocessingsteps({disabled})", json={"statecode": 1})
    assert off.status_code == 204
    _, [filtered] = await register_webhook(
        api, receiver.url, messages=("Update",), filtering="accountnumber"
    )
    made = await api.post("accounts", json={"name": "Still none"})
    assert made.status_code == 204
    patched = await api.patch(f"accounts({entity_id(made)})", json={"name": "Renamed"})
    assert patched.status_code == 204
    state = await settle(sandbox)
    assert receiver.requests == [] and state["counters"]["queued"] == 0
    # The filtered step runs once a filtering attribute is in the Target.
    numbered = await api.patch(f"accounts({entity_id(made)})", json={"accountnumber": "N-1"})
    assert numbered.status_code == 204
    await settle(sandbox)
    [update] = receiver.delivered
    assert update.body["OwningExtension"]["Id"] == filtered


def _batch(parts: list[tuple[str, str, dict[str, Any]]]) -> bytes:
    """One change set of JSON requests (paths relative to the service root)."""
    lines = ["--batch_1", "Content-Type: multipart/mixed; boundary=changeset_1", ""]
    for number, (method, path, body) in enumerate(parts, start=1):
        lines += ["--changeset_1", "Content-Type: application/http",
                  "Content-Transfer-Encoding: binary", f"Content-ID: {number}", "",
                  f"{method} {path} HTTP/1.1", "Content-Type: application/json", "",
                  orjson.dumps(body).decode()]  # fmt: skip
    lines += ["--changeset_1--", "--batch_1--", ""]
    return "\r\n".join(lines).encode()


async def test_batch_changeset_delivers_after_commit_and_nothing_when_it_fails(
    api: httpx.AsyncClient, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    await register_webhook(api, receiver.url, messages=("Create",))
    # What the receiver sees of the row at the moment of delivery: committed, or not.
    receiver.on_request = lambda body: sandbox.state.get("accounts", body["PrimaryEntityId"])
    batch_headers = {"Content-Type": "multipart/mixed; boundary=batch_1"}
    ok = _batch([("POST", "accounts", {"name": "B1"}), ("POST", "accounts", {"name": "B2"})])
    answered = await api.post("$batch", content=ok, headers=batch_headers)
    assert answered.status_code == 200, answered.text
    await settle(sandbox)
    assert sorted(r.attributes["name"] for r in receiver.delivered) == ["B1", "B2"]
    assert all(r.seen is not None for r in receiver.delivered)  # committed when delivered

    failing = _batch(
        [("POST", "accounts", {"name": "B3"}), ("POST", "accounts", {"name": 1, "nope": 2})]
    )
    refused = await api.post("$batch", content=failing, headers=batch_headers)
    assert refused.status_code == 400
    state = await settle(sandbox)
    assert len(receiver.requests) == 2 and state["counters"]["queued"] == 2
    assert [row["name"] for row in sandbox.state.rows("accounts")].count("B3") == 0


async def test_upserts_and_actions_are_announced(
    api: httpx.AsyncClient, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    await register_webhook(api, receiver.url, messages=("Create", "Update"))
    await register_webhook(api, receiver.url, messages=("Update",), table="opportunity")
    new_id = str(uuid.uuid4())
    assert (await api.patch(f"accounts({new_id})", json={"name": "Upserted"})).status_code == 204
    by_key = await api.patch("accounts(accountnumber='K-9')", json={"name": "Keyed"})
    assert by_key.status_code == 204
    assert (await api.patch(f"accounts({new_id})", json={"name": "Again"})).status_code == 204
    opportunity = await api.post("opportunities", json={"name": "Deal"})
    won = await api.post(
        "WinOpportunity",
        json={"Status": 3, "OpportunityClose": {
            "opportunityid@odata.bind": f"/opportunities({entity_id(opportunity)})"}},
    )  # fmt: skip
    assert won.status_code == 204
    await settle(sandbox)
    seen = sorted(
        (r.body["PrimaryEntityName"], r.body["MessageName"], r.attributes.get("name"))
        for r in receiver.delivered
    )
    assert seen == [
        ("account", "Create", "Keyed"),
        ("account", "Create", "Upserted"),
        ("account", "Update", "Again"),
        ("opportunity", "Update", None),
    ]
    [win] = [r for r in receiver.delivered if r.body["PrimaryEntityName"] == "opportunity"]
    assert win.attributes["statecode"]["Value"] == 1


async def test_in_process_writes_and_cascaded_deletes_are_announced(
    api: httpx.AsyncClient, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    await register_webhook(api, receiver.url, messages=("Delete",), table="annotation")
    account = await api.post("accounts", json={"name": "Parent"})
    account_id = entity_id(account)
    note = await api.post(
        "annotations",
        json={"subject": "n", "objectid_account@odata.bind": f"/accounts({account_id})"},
    )
    assert note.status_code == 204
    assert (await api.delete(f"accounts({account_id})")).status_code == 204
    await settle(sandbox)
    [deleted] = receiver.delivered
    assert deleted.body["PrimaryEntityId"] == entity_id(note)
    assert deleted.target["LogicalName"] == "annotation"


async def test_a_slow_receiver_loses_nothing_and_concurrency_is_bounded(
    api: httpx.AsyncClient, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    await set_webhooks(sandbox, concurrency=2)
    await register_webhook(api, receiver.url, messages=("Create",))
    receiver.hold_seconds = 0.2
    for number in range(8):
        assert (await api.post("accounts", json={"name": f"S{number}"})).status_code == 204
    state = await settle(sandbox)
    assert sorted(r.attributes["name"] for r in receiver.delivered) == [f"S{n}" for n in range(8)]
    assert receiver.max_in_flight <= 2
    assert state["counters"]["delivered"] == 8


async def test_control_api_settings_validation_and_reset(sandbox: RunningSandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.control_url) as control:
        initial = (await control.get("/webhooks")).json()
        assert initial["pending"] == 0
        assert initial["settings"]["drop_rate"] == 0 and initial["settings"]["max_attempts"] == 5
        changed = await control.patch(
            "/webhooks", json={"drop_rate": 0.3, "duplicate_rate": 0.3, "delay_ms": 5, "seed": 3}
        )
        assert changed.status_code == 200
        assert changed.json()["settings"]["duplicate_rate"] == 0.3
        for bad in ({"drop_rate": 2}, {"nope": 1}, {"max_attempts": 0}, {"delay_ms": "x"}, [1]):
            refused = await control.patch("/webhooks", json=bad)
            assert refused.status_code == 400, bad
            assert "error" in refused.json()
        assert (await control.get("/webhooks")).json()["settings"]["drop_rate"] == 0.3
        assert (await control.post("/reset")).status_code == 200
        after = await webhook_state(sandbox)
        assert after["settings"] == initial["settings"]
        assert after["counters"] == initial["counters"]


async def test_bad_webhook_registrations_are_refused(api: httpx.AsyncClient) -> None:
    base = {"name": "x", "contract": 8, "url": "https://bridge.example/hook"}
    for body in (
        {**base, "authtype": 5, "authvalue": "not settings"},
        {
            **base,
            "authtype": 5,
            "authvalue": '<settings><setting name="bad header" value="v" /></settings>',
        },
        {**base, "authtype": 6},
        {**base, "authtype": 4, "authvalue": ""},
        {**base, "url": "ftp://bridge.example/hook", "authtype": 4, "authvalue": "k"},
    ):
        refused = await api.post("serviceendpoints", json=body)
        assert refused.status_code == 400, body


async def test_rows_written_in_process_are_announced_too(
    api: httpx.AsyncClient, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    await register_webhook(api, receiver.url, messages=("Create",), table="contact")
    seed(sandbox, "contacts", [{"firstname": "Ada", "lastname": "Lovelace"}])
    await settle(sandbox)
    [created] = receiver.delivered
    assert created.attributes["fullname"] == "Ada Lovelace"
    assert created.headers["x-ms-dynamics-organization"] == "localhost"
