from typing import Any
from sqlmodel import select
from app.models import erp
from app.models.integration import IntegrationRecord, IntegrationTableMapping, IntegrationSynchJob
from tests.reliability import company
from tests.reliability.conftest import queue_full_sync
from tests.sync_jobs.conftest import drive


async def test_debug(sessionmaker, sandbox, connected, tick_ctx, queue_settings) -> None:
    await company.seed(sessionmaker, company.Size(items=20, customers=8))
    await queue_full_sync(sessionmaker)
    await drive(tick_ctx, queue_settings)
    async with sessionmaker() as s:
        m = (await s.exec(select(IntegrationTableMapping).where(IntegrationTableMapping.name == "CUSTOMER"))).one()
        print("WM", m.erp_modified_watermark, m.crm_modified_watermark)
        for c in (await s.exec(select(erp.Customer))).all()[:3]:
            r = (await s.exec(select(IntegrationRecord).where(IntegrationRecord.integration_id == c.system_id))).first()
            print(c.no, c.modified_at, c.modified_by, r and (r.last_synch_modified_on, r.last_synch_crm_result, r.last_synch_result, r.last_synch_crm_modified_on))
        for j in (await s.exec(select(IntegrationSynchJob).where(IntegrationSynchJob.mapping_name == "CUSTOMER"))).all():
            print(j.direction, j.started_at, j.finished_at, j.inserted, j.modified, j.unchanged, j.failed, j.message)
