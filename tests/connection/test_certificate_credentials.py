"""Certificate credentials: a client assertion signed with the certificate's key.

Over real HTTP: the service in uvicorn, the sandbox's token endpoint verifying assertions
against the certificates registered on the app (as Entra ID does), real arq workers.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.encryption import decrypt_secret
from app.dataverse.client_assertion import (
    CLIENT_ASSERTION_TYPE,
    ClientCertificate,
    load_client_certificate,
)
from app.models.integration import ConnectionSetup
from app.settings import Settings
from tests.fixtures.certificates import SelfSigned, make_certificate, rsa_key
from tests.fixtures.live_api import API, queue_full_sync, run_queue
from tests.fixtures.sandbox import RunningSandbox
from tests.sync import factories as f


def _certificate_connection(sandbox: RunningSandbox, pem: str, **extra: Any) -> dict[str, Any]:
    return {
        "server_address": sandbox.base_url, "authentication_type": "oauth_certificate",
        "token_url": sandbox.token_url, "client_id": sandbox.config.client_id,
        "client_certificate": pem, "dataverse_connection_enabled": True, **extra,
    }  # fmt: skip


async def _register(api: httpx.AsyncClient, sandbox: RunningSandbox, cert: SelfSigned) -> None:
    response = await api.post(
        f"{sandbox.control_url}/certificates", json={"certificate": cert.certificate_pem}
    )
    assert response.status_code == 201, response.text


async def test_a_certificate_connects_and_syncs_without_any_secret(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
    session: AsyncSession, settings: Settings, tick_ctx: dict[str, Any],
    worker_settings: Settings,
) -> None:  # fmt: skip
    cert = make_certificate("salesbridge-sync")
    await _register(live_api, sandbox, cert)
    await f.add(session, f.unit("PCS"))
    await f.add(session, f.item("1000"))
    await session.commit()

    saved = await live_api.patch(
        f"{API}/connection", json=_certificate_connection(sandbox, cert.bundle()),
        headers=live_admin,
    )  # fmt: skip

    assert saved.status_code == 200, saved.text
    shown = saved.json()["client_certificate"]
    assert shown["is_set"] is True and shown["thumbprint"] == cert.thumbprint
    assert shown["subject"] == "CN=salesbridge-sync" and shown["expires_at"]
    assert "PRIVATE KEY" not in saved.text and saved.json()["client_secret"]["is_set"] is False
    tested = await live_api.post(f"{API}/connection/test", headers=live_admin)
    assert tested.json()["ok"] is True, tested.text
    assert (await live_api.post(f"{API}/connection/enable", headers=live_admin)).is_success
    await queue_full_sync(live_api, live_admin, "UNIT OF MEASURE", "ITEM-PRODUCT")
    await run_queue(tick_ctx, worker_settings)

    assert [p["productnumber"] for p in sandbox.state.rows("products")] == ["1000"]
    setup = (await session.exec(select(ConnectionSetup))).one()
    stored = decrypt_secret(settings, setup.client_certificate_encrypted)
    assert load_client_certificate(stored).thumbprint == cert.thumbprint
    assert setup.client_secret_encrypted == ""


async def test_an_unregistered_certificate_is_refused_with_entras_reason(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
) -> None:  # fmt: skip
    registered, other = make_certificate("registered"), make_certificate("not-uploaded")
    await _register(live_api, sandbox, registered)
    saved = await live_api.patch(
        f"{API}/connection", json=_certificate_connection(sandbox, other.bundle()),
        headers=live_admin,
    )  # fmt: skip
    assert saved.status_code == 200  # disabled: stored, and tested on request

    tested = (await live_api.post(f"{API}/connection/test", headers=live_admin)).json()

    assert tested["ok"] is False
    (token,) = [step for step in tested["steps"] if step["name"] == "token"]
    assert "certificate is not registered on the app" in token["detail"]
    assert "AADSTS700027" in token["detail"]


async def test_a_new_certificate_for_an_enabled_connection_must_sign_in_first(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
) -> None:  # fmt: skip
    current, renewed = make_certificate("current"), make_certificate("renewed")
    await _register(live_api, sandbox, current)
    patched = await live_api.patch(
        f"{API}/connection", json=_certificate_connection(sandbox, current.bundle()),
        headers=live_admin,
    )  # fmt: skip
    assert patched.status_code == 200
    assert (await live_api.post(f"{API}/connection/enable", headers=live_admin)).is_success

    early = await live_api.patch(
        f"{API}/connection", json={"client_certificate": renewed.bundle()}, headers=live_admin
    )
    assert early.status_code == 409 and "refused the new client_certificate" in early.text
    await _register(live_api, sandbox, renewed)  # uploaded to the app registration
    later = await live_api.patch(
        f"{API}/connection", json={"client_certificate": renewed.bundle()}, headers=live_admin
    )

    assert later.status_code == 200, later.text
    assert later.json()["client_certificate"]["thumbprint"] == renewed.thumbprint


def _bad_inputs() -> list[tuple[dict[str, str], str]]:
    cert = make_certificate("inputs")
    other = make_certificate("other-key", key=rsa_key(2048, "other"))
    ec_cert = make_certificate("elliptic", key=ec.generate_private_key(ec.SECP256R1()))
    small = make_certificate("small", key=rsa_key(1024, "small"))
    return [
        ({"client_certificate": make_certificate("old", expired=True).bundle()}, "expired on"),
        ({"client_certificate": other.key_pem() + cert.certificate_pem}, "does not belong"),
        ({"client_certificate": ec_cert.bundle()}, "must be an RSA key"),
        ({"client_certificate": small.bundle()}, "1024 bits"),
        ({"client_certificate": cert.bundle("pw-1234")}, "give its password"),
        ({"client_certificate": cert.bundle("pw-1234"), "client_certificate_password": "nope"},
         "wrong password"),
        ({"client_certificate": cert.certificate_pem}, "no private key"),
        ({"client_certificate": "not a certificate"}, "neither PEM text nor"),
        ({"client_certificate_password": "pw-1234"}, "needs the certificate"),
    ]  # fmt: skip


async def test_unusable_certificates_are_refused_with_the_reason(
    live_api: httpx.AsyncClient, live_admin: dict[str, str],
) -> None:  # fmt: skip
    for body, words in _bad_inputs():
        response = await live_api.patch(f"{API}/connection", json=body, headers=live_admin)
        assert response.status_code == 400, (words, response.text)
        assert words in response.json()["detail"], response.text
        assert "PRIVATE KEY" not in response.text
    shown = (await live_api.get(f"{API}/connection", headers=live_admin)).json()
    assert shown["client_certificate"] == {
        "is_set": False, "thumbprint": None, "subject": None, "expires_at": None,
    }  # fmt: skip


@pytest.mark.parametrize("form", ["pem", "pfx"])
async def test_an_encrypted_key_or_a_pfx_is_opened_with_its_password_once(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], session: AsyncSession,
    settings: Settings, form: str,
) -> None:  # fmt: skip
    cert = make_certificate("protected")
    text = cert.bundle("s3cret-pw") if form == "pem" else cert.pfx_base64("s3cret-pw")

    response = await live_api.patch(
        f"{API}/connection",
        json={"client_certificate": text, "client_certificate_password": "s3cret-pw"},
        headers=live_admin,
    )

    assert response.status_code == 200, response.text
    setup = (await session.exec(select(ConnectionSetup))).one()
    stored = decrypt_secret(settings, setup.client_certificate_encrypted)
    assert "ENCRYPTED" not in stored and "s3cret-pw" not in stored  # the password is not kept
    assert load_client_certificate(stored).thumbprint == cert.thumbprint


async def test_other_stored_types_are_refused_naming_the_types_that_work(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
) -> None:  # fmt: skip
    for kind in ("office365", "ad", "ifd"):
        body = {"server_address": sandbox.base_url, "authentication_type": kind,
                "user_name": "crm@contoso", "password": "pw-123456789"}  # fmt: skip
        saved = await live_api.patch(f"{API}/connection", json=body, headers=live_admin)
        assert saved.status_code == 200, saved.text

        tested = (await live_api.post(f"{API}/connection/test", headers=live_admin)).json()

        assert tested["ok"] is False
        detail = tested["steps"][0]["detail"]
        assert f"'{kind}' is not supported" in detail
        assert "oauth_client_secret" in detail and "oauth_certificate" in detail


# --- the assertion as the token endpoint sees it -----------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _decode(part: str) -> Any:
    return orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_the_assertion_names_the_certificate_and_the_token_endpoint() -> None:
    cert = make_certificate("claims")
    signer = ClientCertificate(cert.key, cert.certificate)

    head, body, _signature = signer.sign_assertion(
        token_url="https://login.example/t/oauth2/v2.0/token", client_id="app-1", now=1000
    ).split(".")

    header, claims = _decode(head), _decode(body)
    sha1 = hashlib.sha1(cert.certificate.public_bytes(serialization.Encoding.DER)).digest()  # noqa: S324 - x5t
    assert header == {"alg": "RS256", "typ": "JWT", "x5t": _b64(sha1)}
    assert claims["aud"] == "https://login.example/t/oauth2/v2.0/token"
    assert claims["iss"] == claims["sub"] == "app-1"
    assert (claims["nbf"], claims["iat"], claims["exp"]) == (1000, 1000, 1600)
    assert len(claims["jti"]) == 36
    assert "claims" not in repr(signer) and cert.thumbprint in repr(signer)


def _tampered(assertion: str) -> str:
    head, body, signature = assertion.split(".")
    claims = _decode(body) | {"sub": "someone-else"}
    return f"{head}.{_b64(orjson.dumps(claims))}.{signature}"


async def test_the_sandbox_refuses_assertions_entra_would_refuse(
    sandbox: RunningSandbox,
) -> None:  # fmt: skip
    cert, stranger = make_certificate("token-endpoint"), make_certificate("stranger")
    sandbox.state.config.client_certificates = (cert.certificate_pem,)
    signer = ClientCertificate(cert.key, cert.certificate)
    unknown = ClientCertificate(stranger.key, stranger.certificate)
    client_id, url = sandbox.config.client_id, sandbox.token_url
    good = signer.sign_assertion(token_url=url, client_id=client_id)
    cases = [
        (good, 200, None),
        (unknown.sign_assertion(token_url=url, client_id=client_id), 401, 700027),
        (signer.sign_assertion(token_url="https://elsewhere/token", client_id=client_id), 401,
         700027),
        (signer.sign_assertion(token_url=url, client_id="other-app"), 401, 700021),
        (signer.sign_assertion(token_url=url, client_id=client_id, now=time.time() - 3600), 401,
         700024),
        (_tampered(good), 401, 700027),
        ("not.a.jwt", 401, 50027),
    ]  # fmt: skip
    async with httpx.AsyncClient() as http:
        for assertion, status, code in cases:
            form = {"grant_type": "client_credentials", "client_id": client_id,
                    "scope": sandbox.scope, "client_assertion_type": CLIENT_ASSERTION_TYPE,
                    "client_assertion": assertion}  # fmt: skip
            response = await http.post(url, data=form)
            assert response.status_code == status, (code, response.text)
            if code is not None:
                assert response.json()["error_codes"] == [code], response.text
        wrong_type = {**form, "client_assertion": good, "client_assertion_type": "urn:x"}
        assert (await http.post(url, data=wrong_type)).status_code == 400
