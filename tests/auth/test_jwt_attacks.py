"""Forged, stale and malformed bearer tokens: every one is a 401 with the same message."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.settings import Settings
from tests import factories
from tests.hostile.live import serve

ME = "/api/v1/auth/me"
ODATA = "/odata/v4/ItemAvailability"
_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PRIVATE_PEM = _RSA_KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
).decode()
RSA_PUBLIC_PEM = _RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(settings: Settings, **changes: Any) -> dict[str, Any]:
    now = int(utc_now().timestamp())
    claims: dict[str, Any] = {
        "sub": "admin",
        "roles": ["integration-admin"],
        "typ": "access",
        "cred": "password",
        "ver": 0,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def _sign(settings: Settings, claims: dict[str, Any]) -> str:
    token: str = jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm="HS256")
    return token


def _hand_signed(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def alg_none(settings: Settings) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(_claims(settings)).encode())}."


def hs_rs_confusion(settings: Settings) -> str:
    """CVE-2024-33663 style: HS256 "signed" with the RSA public key PEM as HMAC secret."""
    return _hand_signed({"alg": "HS256", "typ": "JWT"}, _claims(settings), RSA_PUBLIC_PEM)


def rs256_signed(settings: Settings) -> str:
    token: str = jwt.encode(_claims(settings), RSA_PRIVATE_PEM, algorithm="RS256")
    return token


def hs512_with_right_secret(settings: Settings) -> str:
    secret = settings.secret_key.get_secret_value()
    token: str = jwt.encode(_claims(settings), secret, algorithm="HS512")
    return token


def wrong_secret(settings: Settings) -> str:
    token: str = jwt.encode(_claims(settings), "another-secret-" * 4, algorithm="HS256")
    return token


def expired(settings: Settings) -> str:
    now = int(utc_now().timestamp())
    return _sign(settings, _claims(settings, iat=now - 3600, nbf=now - 3600, exp=now - 60))


def not_yet_valid(settings: Settings) -> str:
    now = int(utc_now().timestamp())
    return _sign(settings, _claims(settings, nbf=now + 3600, exp=now + 7200))


def wrong_audience(settings: Settings) -> str:
    return _sign(settings, _claims(settings, aud="someone-else"))


def wrong_issuer(settings: Settings) -> str:
    return _sign(settings, _claims(settings, iss="https://evil.example"))


def missing_exp(settings: Settings) -> str:
    claims = _claims(settings)
    del claims["exp"]
    return _sign(settings, claims)


def missing_aud(settings: Settings) -> str:
    claims = _claims(settings)
    del claims["aud"]
    return _sign(settings, claims)


def missing_sub(settings: Settings) -> str:
    claims = _claims(settings)
    del claims["sub"]
    return _sign(settings, claims)


def wrong_typ(settings: Settings) -> str:
    return _sign(settings, _claims(settings, typ="refresh"))


def roles_not_a_list(settings: Settings) -> str:
    return _sign(settings, _claims(settings, roles="integration-admin"))


def tampered_payload(settings: Settings) -> str:
    """A valid token of a product-availability user whose payload is swapped for the admin's."""
    header, _payload, signature = _sign(settings, _claims(settings, sub="crm")).split(".")
    forged = _b64(json.dumps(_claims(settings)).encode())
    return f"{header}.{forged}.{signature}"


def tampered_signature(settings: Settings) -> str:
    header, payload, signature = _sign(settings, _claims(settings)).split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return f"{header}.{payload}.{flipped}"


def signature_stripped(settings: Settings) -> str:
    header, payload, _signature = _sign(settings, _claims(settings)).split(".")
    return f"{header}.{payload}."


def issued_in_the_future(settings: Settings) -> str:
    """A token "issued" an hour from now would outlive any lifetime we grant."""
    now = int(utc_now().timestamp())
    return _sign(settings, _claims(settings, iat=now + 3600, nbf=now, exp=now + 3600 + 600))


def fractional_exp(settings: Settings) -> str:
    return _sign(settings, _claims(settings, exp=int(utc_now().timestamp()) + 600.5))


def fractional_iat(settings: Settings) -> str:
    return _sign(settings, _claims(settings, iat=int(utc_now().timestamp()) - 0.5))


def boolean_nbf(settings: Settings) -> str:
    return _sign(settings, _claims(settings, nbf=True))


def longer_than_any_token_we_issue(settings: Settings) -> str:
    """Signed right, but valid for a year: we never issue more than token_minutes."""
    now = int(utc_now().timestamp())
    return _sign(settings, _claims(settings, exp=now + 365 * 24 * 3600))


def exp_before_iat(settings: Settings) -> str:
    now = int(utc_now().timestamp())
    return _sign(settings, _claims(settings, iat=now, exp=now - 1, nbf=now - 100))


def missing_version(settings: Settings) -> str:
    return _sign(settings, _claims(settings, ver=None))


def version_not_an_integer(settings: Settings) -> str:
    return _sign(settings, _claims(settings, ver="0"))


def stale_version(settings: Settings) -> str:
    """Issued before the user's credentials changed (tests/auth/test_token_revocation)."""
    return _sign(settings, _claims(settings, ver=-1))


def missing_credential(settings: Settings) -> str:
    return _sign(settings, _claims(settings, cred=None))


def unknown_credential(settings: Settings) -> str:
    return _sign(settings, _claims(settings, cred="certificate"))


def key_credential_of_no_key(settings: Settings) -> str:
    return _sign(settings, _claims(settings, cred="key:abcdefghijkm"))


def unknown_user(settings: Settings) -> str:
    return _sign(settings, _claims(settings, sub="nobody"))


def garbage(settings: Settings) -> str:
    return "this-is-not-a-jwt"


def garbage_three_parts(settings: Settings) -> str:
    return "a.b.c"


# Over the token cap (4,096 characters) but under the header cap: these reach the token
# check. Headers over the header cap get 431 before any auth (tests/hostile/test_oversized).
def oversized_but_correctly_signed(settings: Settings) -> str:
    return _sign(settings, _claims(settings, padding="x" * 10_000))


def oversized_garbage(settings: Settings) -> str:
    return "A" * 10_000 + "." + "B" * 10_000 + "." + "C" * 43


ATTACKS: list[Callable[[Settings], str]] = [
    alg_none,
    hs_rs_confusion,
    rs256_signed,
    hs512_with_right_secret,
    wrong_secret,
    expired,
    not_yet_valid,
    wrong_audience,
    wrong_issuer,
    missing_exp,
    missing_aud,
    missing_sub,
    wrong_typ,
    roles_not_a_list,
    tampered_payload,
    tampered_signature,
    signature_stripped,
    issued_in_the_future,
    fractional_exp,
    fractional_iat,
    boolean_nbf,
    longer_than_any_token_we_issue,
    exp_before_iat,
    missing_version,
    version_not_an_integer,
    stale_version,
    missing_credential,
    unknown_credential,
    key_credential_of_no_key,
    unknown_user,
    garbage,
    garbage_three_parts,
    oversized_but_correctly_signed,
    oversized_garbage,
]


@pytest.fixture
async def users(session: AsyncSession) -> None:
    await factories.create_user(session, user_name="admin", password=None)
    await factories.create_user(session, user_name="crm", roles=(), password=None)
    await session.commit()


async def test_a_well_formed_token_is_accepted(
    client: httpx.AsyncClient, settings: Settings, users: None
) -> None:
    """The control: the forging helpers build tokens the API accepts when nothing is wrong."""
    response = await client.get(
        ME, headers={"Authorization": f"Bearer {_sign(settings, _claims(settings))}"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["user_name"] == "admin"


async def test_every_bad_token_is_refused_with_the_same_401(
    client: httpx.AsyncClient, settings: Settings, users: None
) -> None:
    """One test over the whole table: each case costs a request, not a fresh database."""
    expected = {"error": "Unauthorized", "detail": "Invalid or expired token."}
    failures = []
    for attack in ATTACKS:
        headers = {"Authorization": f"Bearer {attack(settings)}"}
        response = await client.get(ME, headers=headers)
        if response.status_code != 401 or response.json() != expected:
            failures.append(f"{attack.__name__}: {response.status_code} {response.text[:80]}")

    assert failures == []


async def test_bad_tokens_are_refused_over_real_http_on_rest_and_odata(
    settings: Settings, users: None
) -> None:
    """The same table against uvicorn, on the REST API and the OData service (whose
    Bearer path decodes with the same code), plus the control on both."""
    failures = []
    with serve(settings) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as live:
            good = {"Authorization": f"Bearer {_sign(settings, _claims(settings))}"}
            assert (await live.get(ME, headers=good)).status_code == 200
            assert (await live.get(ODATA, headers=good)).status_code == 200
            for attack in ATTACKS:
                headers = {"Authorization": f"Bearer {attack(settings)}"}
                statuses = [(await live.get(url, headers=headers)).status_code
                            for url in (ME, ODATA)]  # fmt: skip
                if statuses != [401, 401]:
                    failures.append(f"{attack.__name__}: {statuses}")

    assert failures == []


async def test_missing_or_other_scheme_is_refused_with_401(
    client: httpx.AsyncClient, users: None
) -> None:
    failures = []
    for authorization in [
        "",
        "Bearer",
        "Bearer ",
        "Basic YWRtaW46cGFzc3dvcmQ=",
        "Token a",
        "bearer",
    ]:
        response = await client.get(ME, headers={"Authorization": authorization})
        if response.status_code != 401 or response.headers.get("www-authenticate") != "Bearer":
            failures.append(f"{authorization!r}: {response.status_code}")

    assert failures == []


async def test_signing_secret_from_another_install_is_refused(
    client: httpx.AsyncClient, settings: Settings, users: None, tmp_path: Any
) -> None:
    other = Settings(data_dir=tmp_path / "other", database_url=settings.database_url)
    token = _sign(other, _claims(settings))

    response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})

    assert other.secret_key.get_secret_value() != settings.secret_key.get_secret_value()
    assert response.status_code == 401
