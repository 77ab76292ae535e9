"""The Sales Order Notes job end to end: ERP notes <-> CRM annotations on coupled orders.

Real arq workers, the REST run-now action, the sandbox over HTTP. A person's CRM edits are
made over the sandbox's Web API as a salesperson (``crm_user_edit``, impersonating them
with ``MSCRMCallerID``): the integration user's own
writes are never read back. Annotation payloads carry what Dataverse's annotation table
takes (subject, notetext, isdocument, ``objectid_salesorder@odata.bind``).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dataverse import DataverseClient
from app.db import SessionMaker
from app.models.erp import Note
from app.models.integration import IntegrationRecord, JobKind, JobStatus
from app.sales.note_text import plain_note_text
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.sales.legacy_orders import coupled_order, crm_rows, legacy, run_now
from tests.sales.world import World
from tests.sync.factories import crm_user_edit

__all__ = ["legacy"]  # the fixture, imported for these tests


async def _notes(sessionmaker: SessionMaker) -> list[tuple[str, str]]:
    async with sessionmaker() as session:
        rows = await session.exec(select(Note).order_by(col(Note.id)))
        return [(note.description, note.text) for note in rows]


def _annotations(sandbox: RunningSandbox, order_id: Any) -> list[dict[str, Any]]:
    return sorted(
        crm_rows(sandbox, "annotations", _objectid_value=str(order_id)),
        key=lambda row: row["createdon"] + row["annotationid"],
    )


async def test_notes_flow_both_ways_created_and_modified_without_echo(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession,
    sessionmaker: SessionMaker, crm: DataverseClient, world: World, legacy: Any,
    sandbox: RunningSandbox, tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    order = await coupled_order(client, admin, session, crm, world, number="SO-200")
    path = f"/api/v1/sales-orders/{order.no}/notes"
    made = await client.post(path, json={"description": "Gate", "text": "Code 4711"}, headers=admin)
    assert made.status_code == 201, made.text

    async def run() -> Any:
        return await run_now(client, admin, JobKind.notes, sessionmaker, tick_ctx, worker_settings)

    await run()  # ERP -> CRM, created
    (pushed,) = _annotations(sandbox, order.crm_id)
    assert (pushed["subject"], pushed["notetext"], pushed["isdocument"]) == (
        "Gate",
        "Code 4711",
        False,
    )
    assert pushed["objecttypecode"] == "salesorder"

    changed = await client.patch(f"{path}/{made.json()['id']}", json={"text": "Code 0815"},
                                 headers=admin)  # fmt: skip
    assert changed.status_code == 200, changed.text
    await run()  # ERP -> CRM, modified
    (pushed,) = _annotations(sandbox, order.crm_id)
    assert pushed["notetext"] == "Code 0815"

    typed = await crm.create("annotations", {
        "subject": "Call first", "notetext": "<div>Ring twice</div><div>Ask for Ann</div>",
        "objectid_salesorder@odata.bind": f"/salesorders({order.crm_id})",
    })  # fmt: skip
    await crm_user_edit(sandbox, "annotations", typed)  # a salesperson wrote it
    await run()  # CRM -> ERP, created
    assert await _notes(sessionmaker) == [
        ("Gate", "Code 0815"), ("Call first", "Ring twice\nAsk for Ann"),
    ]  # fmt: skip

    person = await crm_user_edit(sandbox, "annotations", typed, notetext="Ring three times")
    await run()  # CRM -> ERP, modified
    assert (await _notes(sessionmaker))[1] == ("Call first", "Ring three times")
    assert len(_annotations(sandbox, order.crm_id)) == 2  # the new ERP note was not sent back
    typed_row = sandbox.state.get("annotations", str(typed))
    assert typed_row is not None and typed_row["_modifiedby_value"] == person  # no echo

    versions = {
        row["annotationid"]: row["versionnumber"] for row in _annotations(sandbox, order.crm_id)
    }
    entry = await run()  # nothing new on either side: nothing written anywhere
    assert entry.status == JobStatus.on_hold_with_inactivity_timeout
    after = {
        row["annotationid"]: row["versionnumber"] for row in _annotations(sandbox, order.crm_id)
    }
    assert after == versions
    assert len(await _notes(sessionmaker)) == 2
    async with sessionmaker() as fresh:
        couplings = list(await fresh.exec(select(IntegrationRecord).where(
            IntegrationRecord.table_name == "note"
        )))  # fmt: skip
    annotation_ids = {uuid.UUID(row["annotationid"]) for row in _annotations(sandbox, order.crm_id)}
    assert {c.crm_id for c in couplings} == annotation_ids  # one coupling per note, no copies


def test_plain_note_text_reads_rich_text_lines_like_bc() -> None:
    assert plain_note_text("plain") == "plain"
    assert plain_note_text("<div>a &amp; b</div><div><b>c</b></div>") == "a & b\nc"
    assert plain_note_text('<div><span style="x">red</span></div>') == "red"
    assert plain_note_text('<div class="x">kept as is</div>') == '<div class="x">kept as is</div>'
