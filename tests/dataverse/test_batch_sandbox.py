"""$batch against the sandbox: change sets, Content-ID references, rollback, continue-on-error."""

from __future__ import annotations

import uuid

import pytest

from app.dataverse import (
    BatchOutcome,
    ChangeSet,
    DataverseClient,
    bind,
    create_op,
    delete_op,
    get_op,
    reference,
    set_state_op,
    update_op,
    upsert_op,
)
from app.dataverse.errors import InvalidRecordError, NotFoundError
from tests.fixtures.sandbox import RunningSandbox

MISSING = uuid.UUID(int=9)


async def test_changeset_with_content_id_references(
    crm: DataverseClient, dv_sandbox: RunningSandbox
) -> None:
    account = create_op("accounts", {"name": "Parent"}, content_id="1")
    contact = create_op(
        "contacts", {"firstname": "Kid", "parentcustomerid_account@odata.bind": reference("1")}
    )
    results = await crm.batch([ChangeSet([account, contact])])
    assert [r.outcome for r in results] == [BatchOutcome.ok, BatchOutcome.ok]
    assert [r.status_code for r in results] == [204, 204]
    assert results[0].entity_id == account.record_id
    assert results[1].entity_id == contact.record_id
    stored = dv_sandbox.state.get("contacts", str(contact.record_id))
    assert stored is not None
    assert stored["_parentcustomerid_value"] == str(account.record_id)


async def test_failing_changeset_is_rolled_back_and_others_continue(
    crm: DataverseClient, dv_sandbox: RunningSandbox
) -> None:
    good = create_op("accounts", {"name": "Would be rolled back"})
    bad = create_op(
        "contacts",
        {"firstname": "X", "parentcustomerid_account@odata.bind": bind("accounts", MISSING)},
    )
    independent = create_op("accounts", {"name": "Independent"})
    results = await crm.batch([ChangeSet([good, bad]), independent])
    assert [r.outcome for r in results] == [
        BatchOutcome.rolled_back,
        BatchOutcome.failed,
        BatchOutcome.ok,
    ]
    assert isinstance(results[1].error, NotFoundError)
    assert results[1].error.is_record_level
    assert dv_sandbox.state.get("accounts", str(good.record_id)) is None  # rolled back
    assert dv_sandbox.state.get("contacts", str(bad.record_id)) is None
    assert dv_sandbox.state.get("accounts", str(independent.record_id)) is not None


async def test_without_continue_on_error_the_batch_stops_at_the_first_failure(
    crm: DataverseClient, dv_sandbox: RunningSandbox
) -> None:
    first = create_op("accounts", {"name": "First"})
    bad = update_op("accounts", MISSING, {"name": "ghost"})
    never = create_op("accounts", {"name": "Never"})
    results = await crm.batch([first, bad, never], continue_on_error=False)
    assert [r.outcome for r in results] == [
        BatchOutcome.ok,
        BatchOutcome.failed,
        BatchOutcome.not_run,
    ]
    assert results[1].status_code == 404
    assert dv_sandbox.state.get("accounts", str(never.record_id)) is None


async def test_every_operation_kind_in_one_batch(
    crm: DataverseClient, dv_sandbox: RunningSandbox
) -> None:
    keep = await crm.create("accounts", {"name": "Keep"})
    drop = await crm.create("accounts", {"name": "Drop"})
    product = await crm.create("products", {"name": "P", "productnumber": "P-9"})
    results = await crm.batch(
        [
            ChangeSet(
                [
                    update_op("accounts", keep, {"name": "Kept"}),
                    delete_op("accounts", drop),
                    upsert_op("products", {"productnumber": "P-10"}, {"name": "New by key"}),
                    set_state_op("products", product, statecode=0, statuscode=1),
                ]
            ),
            get_op("accounts", keep, select=["name"]),
        ]
    )
    assert all(r.is_ok for r in results), [r.error for r in results]
    assert results[-1].body["name"] == "Kept"
    by_key = dv_sandbox.state.store.find_by_key("products", {"productnumber": "P-10"})
    assert by_key is not None and str(results[2].entity_id) == by_key["productid"]
    assert dv_sandbox.state.get("accounts", str(drop)) is None
    assert dv_sandbox.state.get("products", str(product))["statecode"] == 0  # type: ignore[index]
    assert dv_sandbox.state.count("products") == 2


async def test_a_record_level_validation_error_fails_that_record_only(
    crm: DataverseClient,
) -> None:
    order = create_op("salesorders", {"name": "SO"})
    await crm.batch([order])
    await crm.set_state("salesorders", order.record_id, statecode=1, statuscode=3)  # type: ignore[arg-type]
    ok = create_op("accounts", {"name": "fine"})
    results = await crm.batch([update_op("salesorders", order.record_id, {"name": "late"}), ok])  # type: ignore[arg-type]
    assert isinstance(results[0].error, InvalidRecordError)
    assert results[1].is_ok


async def test_batch_size_is_bounded(crm: DataverseClient) -> None:
    with pytest.raises(ValueError, match="1 to 1000"):
        await crm.batch([])
    with pytest.raises(ValueError, match="1 to 1000"):
        await crm.batch([create_op("accounts", {"name": str(i)}) for i in range(1001)])
