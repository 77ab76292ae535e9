"""No password, key, digest, hash or token in users/keys responses or in any log output."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
import structlog
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.logs import configure_logging
from app.models.security import User, WebServiceAccessKey
from app.settings import Settings
from tests import factories

USERS = "/api/v1/users"
TOKEN_URL = "/api/v1/auth/token"
ALICE_PASSWORD = "alice's first passphrase"
ALICE_NEW_PASSWORD = "alice's second passphrase"
WRONG_PASSWORD = "a wrong guess at the password"


class Recorder:
    """Every response of the flow, plus the secrets it learned along the way."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers
        self.responses: list[httpx.Response] = []
        self.secrets: set[str] = set()

    async def call(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        response = await self.client.request(method, url, headers=self.headers, **kwargs)  # type: ignore[arg-type]
        self.responses.append(response)
        return response


async def _run_flows(recorder: Recorder) -> list[str]:
    """Create, change, key, rotate, revoke, sign in; returns the keys that were issued."""
    await recorder.call(
        "POST",
        USERS,
        json={"user_name": "alice", "roles": ["integration-user"], "password": ALICE_PASSWORD},
    )
    await recorder.call("PATCH", f"{USERS}/alice", json={"password": ALICE_NEW_PASSWORD})
    await recorder.call("POST", USERS, json={"user_name": "x", "roles": [], "password": "short"})
    keys = [(await recorder.call("POST", f"{USERS}/alice/keys")).json()["key"]]
    keys.append((await recorder.call("POST", f"{USERS}/alice/keys/rotate")).json()["key"])
    for url in (USERS, f"{USERS}/alice", f"{USERS}/alice/keys"):
        await recorder.call("GET", url)
    for secret in (keys[1], ALICE_NEW_PASSWORD, WRONG_PASSWORD, keys[0]):
        token = await recorder.client.post(
            TOKEN_URL, data={"username": "alice", "password": secret}
        )
        if token.status_code == 200:
            recorder.secrets.add(token.json()["access_token"])
    await recorder.call("POST", f"{USERS}/alice/keys/revoke")
    await recorder.call("GET", f"{USERS}/alice/keys")
    return keys


async def _stored_secrets(session: AsyncSession) -> set[str]:
    session.expire_all()
    hashes = {u.password_hash for u in await session.exec(select(User)) if u.password_hash}
    digests = {k.key_digest for k in await session.exec(select(WebServiceAccessKey))}
    return hashes | digests


@pytest.fixture
async def recorder(client: httpx.AsyncClient, session: AsyncSession) -> Recorder:
    await factories.create_user(session, user_name="admin")
    await session.commit()
    headers = await factories.bearer_headers(client, user_name="admin")
    recorder = Recorder(client, headers)
    recorder.secrets |= {factories.PASSWORD, headers["Authorization"].removeprefix("Bearer ")}
    return recorder


async def test_no_secret_in_users_and_keys_responses(
    recorder: Recorder, session: AsyncSession, settings: Settings
) -> None:
    keys = await _run_flows(recorder)

    secrets = recorder.secrets | await _stored_secrets(session)
    secrets |= {ALICE_PASSWORD, ALICE_NEW_PASSWORD, WRONG_PASSWORD}
    secrets |= {settings.secret_key.get_secret_value()}
    secrets |= {settings.access_key_pepper.get_secret_value()}
    assert len(recorder.responses) == 10
    for response in recorder.responses:
        shown = response.text + str(response.headers)
        leaked = [s for s in secrets if s in shown]
        # The one exception: the response that issues a key shows that key, once.
        assert leaked == [], f"{response.request.method} {response.request.url} leaks a secret"
        issued = [key for key in keys if key in shown]
        assert len(issued) <= 1
        assert not issued or response.request.url.path.endswith(("/keys", "/keys/rotate"))
        assert not issued or response.request.method == "POST"


@pytest.fixture
def debug_logging(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> Iterator[None]:
    """The production logging set-up at its most talkative level, JSON to captured stderr."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_structlog = structlog.get_config()
    noisy = {name: logging.getLogger(name).level for name in ("aiosqlite", "odata_query")}
    configure_logging(level="DEBUG", fmt="json")
    structlog.configure(cache_logger_on_first_use=False)  # leave no logger bound to this set-up
    root.addHandler(caplog.handler)
    yield
    root.handlers, root.level = saved_handlers, saved_level
    structlog.configure(**saved_structlog)
    for name, level in noisy.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger("uvicorn.access").disabled = False


async def test_no_secret_in_log_output(
    recorder: Recorder,
    session: AsyncSession,
    settings: Settings,
    debug_logging: None,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys = await _run_flows(recorder)

    captured = capsys.readouterr()
    records = "\n".join(f"{r.getMessage()} {r.args!r} {r.__dict__!r}" for r in caplog.records)
    output = "\n".join([caplog.text, records, captured.out, captured.err])
    assert "user_created" in output and "access_key_issued" in output  # logging was captured
    secrets = recorder.secrets | await _stored_secrets(session) | set(keys)
    secrets |= {ALICE_PASSWORD, ALICE_NEW_PASSWORD, WRONG_PASSWORD}
    secrets |= {settings.secret_key.get_secret_value()}
    secrets |= {settings.access_key_pepper.get_secret_value()}
    secrets |= {key.split("_", 2)[2] for key in keys}  # the random part alone
    leaked = sorted(s[:6] + "..." for s in secrets if s in output)
    assert leaked == []
