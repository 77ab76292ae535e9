"""A bearer token dies when the credential it came from changes, over real HTTP.

Password change (API or ``salesbridge user reset-password``), key rotation or revocation,
a role taken away, a disable: each stops the tokens issued before, on the REST API and
the OData service alike (the OData service's 5 s credential cache is cleared here, so the
check itself is what answers).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.security import Role
from app.odata import auth as odata_auth
from app.settings import Settings
from tests import factories
from tests.hostile.live import serve

ME = "/api/v1/auth/me"
ODATA = "/odata/v4/ItemAvailability"
NEW_PASSWORD = "a brand new passphrase"


@dataclass
class Api:
    client: httpx.AsyncClient
    alice_key: str

    async def token(self, user_name: str, secret: str) -> dict[str, str]:
        form = {"username": user_name, "password": secret}
        response = await self.client.post("/api/v1/auth/token", data=form)
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def alice(self) -> tuple[dict[str, str], dict[str, str]]:
        """Alice's tokens: one from her password, one from her access key."""
        return await self.token("alice", factories.PASSWORD), await self.token(
            "alice", self.alice_key
        )

    async def statuses(self, *tokens: dict[str, str]) -> list[int]:
        """What each token gets on the REST API and on the OData service, in that order."""
        statuses = []
        for token in tokens:
            odata_auth.clear_cache()
            statuses += [(await self.client.get(ME, headers=token)).status_code,
                         (await self.client.get(ODATA, headers=token)).status_code]  # fmt: skip
        return statuses

    async def patch_alice(self, root: dict[str, str], body: dict[str, object]) -> None:
        response = await self.client.patch("/api/v1/users/alice", json=body, headers=root)
        assert response.status_code == 200, response.text


@pytest.fixture
async def api(settings: Settings, session: AsyncSession) -> AsyncIterator[Api]:
    await factories.create_user(session, user_name="root")
    alice = await factories.create_user(
        session, user_name="alice", roles=(Role.integration_user, Role.product_availability)
    )
    alice_key = await factories.create_access_key(session, settings, user=alice)
    await session.commit()
    odata_auth.clear_cache()
    with serve(settings) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield Api(client, alice_key)
    odata_auth.clear_cache()


async def test_a_password_change_ends_the_users_tokens(api: Api) -> None:
    by_password, by_key = await api.alice()
    root = await api.token("root", factories.PASSWORD)
    assert await api.statuses(by_password, by_key) == [200] * 4

    await api.patch_alice(root, {"password": NEW_PASSWORD})

    assert await api.statuses(by_password, by_key) == [401] * 4
    assert await api.statuses(await api.token("alice", NEW_PASSWORD)) == [200, 200]
    assert await api.statuses(root) == [200, 200]  # nobody else's


async def test_reset_password_from_the_cli_ends_the_users_tokens(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    by_password, _by_key = await api.alice()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESBRIDGE_")}
    env.update(SALESBRIDGE_DATA_DIR=str(settings.data_dir),
               SALESBRIDGE_DATABASE_URL=settings.database_url)  # fmt: skip
    reset = subprocess.run(
        [str(Path(sys.executable).parent / "salesbridge"), "user", "reset-password", "alice"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert reset.returncode == 0, reset.stderr
    assert await api.statuses(by_password) == [401, 401]
    assert await api.statuses(await api.token("alice", reset.stdout.strip())) == [200, 200]


async def test_rotating_or_revoking_keys_ends_the_tokens_of_those_keys(
    api: Api,
) -> None:
    by_password, by_key = await api.alice()
    root = await api.token("root", factories.PASSWORD)

    rotated = await api.client.post("/api/v1/users/alice/keys/rotate", headers=root)
    assert rotated.status_code == 200, rotated.text
    assert await api.statuses(by_key, by_password) == [401, 401, 200, 200]

    by_new_key = await api.token("alice", rotated.json()["key"])
    assert await api.statuses(by_new_key) == [200, 200]
    revoked = await api.client.post("/api/v1/users/alice/keys/revoke", headers=root)
    assert revoked.json()["revoked"] == 1
    assert await api.statuses(by_new_key, by_password) == [401, 401, 200, 200]


async def test_a_role_taken_away_ends_the_users_tokens(api: Api) -> None:
    by_password, by_key = await api.alice()
    root = await api.token("root", factories.PASSWORD)

    await api.patch_alice(root, {"roles": ["integration-user"]})

    assert await api.statuses(by_password, by_key) == [401] * 4
    # Signed in again: the roles she has now (no OData service for her any more).
    assert await api.statuses(await api.token("alice", factories.PASSWORD)) == [200, 403]


async def test_a_role_added_keeps_the_users_tokens(api: Api) -> None:
    by_password, _by_key = await api.alice()
    root = await api.token("root", factories.PASSWORD)
    roles = ["integration-user", "product-availability", "integration-admin"]

    await api.patch_alice(root, {"roles": roles})

    assert await api.statuses(by_password) == [200, 200]


async def test_enabling_a_disabled_user_does_not_bring_old_tokens_back(
    api: Api,
) -> None:
    by_password, by_key = await api.alice()
    root = await api.token("root", factories.PASSWORD)
    for state in ("disabled", "enabled"):
        await api.patch_alice(root, {"state": state})

    assert await api.statuses(by_password, by_key) == [401] * 4
