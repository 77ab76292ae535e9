"""Fixtures for the OData tests: a reader's Basic auth header and a small catalogue."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from app.odata import auth as odata_auth
from app.settings import Settings
from tests.odata import factories

CRM_1000 = uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")


@pytest.fixture(autouse=True)
def _fresh_auth_cache() -> None:
    # Tables are emptied between tests; credentials cached by an earlier test must not count.
    odata_auth.clear_cache()


@pytest.fixture
async def reader(session: AsyncSession, settings: Settings) -> dict[str, str]:
    return await factories.odata_reader(session, settings)


@pytest.fixture
async def catalogue(session: AsyncSession) -> None:
    """Items 1000..1004 and 'A%_1', stock in BLUE/RED/'' locations, an order, a PO line."""
    await factories.add_items(session, ["1000", "1001", "1002", "1003", "1004", "A%_1"])
    await factories.add_ledger(
        session,
        [
            ("1000", "BLUE", 10),
            ("1000", "RED", 5),
            ("1000", "", "2.5"),
            ("1001", "BLUE", 100),
            ("1002", "", 1),
            ("1003", "RED", 50),
            ("1003", "RED", -20),
        ],
    )
    await factories.add_sales_order(session, "SO1", [("1000", "BLUE", 4, 1), ("1002", "", 3, 0)])
    await factories.add_purchase_line(session, "PO1", 10000, "1001", "BLUE", 7)
    await factories.couple(session, "1000", CRM_1000)
    await session.commit()
