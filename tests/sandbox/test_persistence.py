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


async def test_in_memory_sandboxes_are_private_and_throwaway() -> None:
    """Two in-memory sandboxes in one process never share rows, and a restart starts empty
    (the store lives in SQLite's memdb VFS, one private database per sandbox)."""
    with start_sandbox() as first, start_sandbox() as second:
        async with await api_client(first) as api:
            created = await api.post("products", json={"name": "Mine", "productnumber": "M-1"})
            assert created.status_code == 204
        async with await api_client(second) as api:
            assert (await api.get("products(productnumber='M-1')")).status_code == 404
            other = await api.post("products", json={"name": "Theirs", "productnumber": "M-1"})
            assert other.status_code == 204  # no key clash with the first sandbox's row
        assert first.state.count("products") == second.state.count("products") == 1
        assert first.config.db_path is None
    with start_sandbox() as fresh:
        assert fresh.state.count("products") == 0
        assert fresh.state.count("systemusers") == 1  # seeded anew
