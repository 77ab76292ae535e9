"""A file-backed sandbox keeps its rows, identity, version counter and tokens across restarts."""

from __future__ import annotations

from pathlib import Path

import httpx

from app.sandbox import SandboxConfig
from tests.fixtures.sandbox import start_sandbox
from tests.sandbox.conftest import ODATA_HEADERS, api_client, entity_id


async def test_rows_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.db"
    with start_sandbox(SandboxConfig(db_path=db)) as first:
        async with await api_client(first) as api:
            product = entity_id(
                await api.post("products", json={"name": "Kept", "productnumber": "K-1"})
            )
            token = api.headers["Authorization"]
            user = (await api.get("WhoAmI")).json()["UserId"]
            version = (await api.get(f"products({product})")).json()["versionnumber"]
    with start_sandbox(SandboxConfig(db_path=db)) as second:
        headers = {**ODATA_HEADERS, "Authorization": token}
        async with httpx.AsyncClient(base_url=second.api_url, headers=headers) as api:
            assert (await api.get("WhoAmI")).json()["UserId"] == user
            row = (await api.get("products(productnumber='K-1')")).json()
            assert row["productid"] == product and row["name"] == "Kept"
            duplicate = await api.post("products", json={"name": "again", "productnumber": "K-1"})
            assert duplicate.status_code == 412
            newer = await api.post(
                "accounts", json={"name": "new"}, headers={"Prefer": "return=representation"}
            )
            assert newer.json()["versionnumber"] > version
        assert second.state.count("systemusers") == 1  # seeded once, not again
    assert db.exists()
