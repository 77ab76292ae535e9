"""Whether a cloud CRM can call the webhook URL, and the key's header in ``authvalue``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from app.connection.webhook_key import WEBHOOK_KEY_HEADER
from app.connection.webhook_registrar import authvalue
from app.connection.webhook_url import unreachable_reason, webhook_url
from app.settings import Settings


def _settings(tmp_path: Path, *, allow_private: bool = False, **values: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", allow_private_crm_addresses=allow_private, **values)


@pytest.mark.parametrize(
    ("public_url", "words"),
    [
        ("https://127.0.0.1", "loopback, private"),
        ("https://10.1.2.3/base", "loopback, private"),
        ("https://localhost", "loopback, private"),
        ("https://[::1]", "loopback, private"),
        ("http://93.184.215.14", "must use https"),
        ("https://93.184.215.14:8443", "port 8443"),
    ],
)
async def test_urls_a_cloud_crm_cannot_call_are_refused_with_the_reason(
    tmp_path: Path, public_url: str, words: str
) -> None:
    settings = _settings(tmp_path, public_url=public_url)
    reason = await unreachable_reason(settings)
    assert words in reason


async def test_a_missing_public_url_is_refused_unless_private_addresses_are_allowed(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    assert not settings.has_public_url
    reason = await unreachable_reason(settings)
    assert "SALESBRIDGE_PUBLIC_URL is not set" in reason
    assert webhook_url(settings) in reason
    assert "SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES" in reason
    allowed = _settings(tmp_path, allow_private=True)
    assert await unreachable_reason(allowed) == ""
    assert webhook_url(allowed) == "http://127.0.0.1:8000/api/v1/crm/notifications"


async def test_a_public_https_url_is_accepted(tmp_path: Path) -> None:
    settings = _settings(tmp_path, public_url="https://93.184.215.14/bridge/")
    assert await unreachable_reason(settings) == ""
    assert webhook_url(settings) == "https://93.184.215.14/bridge/api/v1/crm/notifications"


def test_authvalue_carries_the_key_in_one_header_escaped() -> None:
    key = 'a"b<c>&d'
    root = ET.fromstring(authvalue(key))  # noqa: S314 - our own XML
    assert root.tag == "settings"
    assert [(s.attrib["name"], s.attrib["value"]) for s in root] == [(WEBHOOK_KEY_HEADER, key)]
    assert authvalue("k1") == (
        '<settings><setting name="x-salesbridge-webhook-key" value="k1" /></settings>'
    )
