"""A webhook endpoint's authentication, as Microsoft's "Register a webhook" describes it.

``authtype`` 4 (WebhookKey) sends ``authvalue`` as the query parameter ``code``; 5
(HttpHeader) and 6 (HttpQueryString) keep name/value pairs in ``authvalue`` as
``<settings><setting name="..." value="..." /></settings>`` and send them as headers or
query parameters.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

WEBHOOK_KEY, HTTP_HEADER, HTTP_QUERY_STRING = 4, 5, 6
PAIRED = (HTTP_HEADER, HTTP_QUERY_STRING)

# Read with patterns, not an XML parser: the value is a flat list of empty elements, and
# a pattern cannot be made to expand entities or fetch anything.
_DOCUMENT = re.compile(r"^\s*<settings\s*>(?P<body>.*)</settings\s*>\s*$", re.DOTALL)
_SETTING = re.compile(
    r"<setting\b(?P<attributes>[^<>]*?)/>|<setting\b(?P<open>[^<>]*)>\s*</setting>"
)
_ATTRIBUTE = re.compile(r"""(?P<name>[A-Za-z_][\w.-]*)\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')""")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def parse_settings(text: str) -> list[tuple[str, str]]:
    """The name/value pairs of an ``authvalue``; ValueError says what is wrong with it."""
    document = _DOCUMENT.match(text)
    if document is None:
        msg = 'authvalue must be <settings><setting name="..." value="..." /></settings>'
        raise ValueError(msg)
    body = document.group("body")
    pairs: list[tuple[str, str]] = []
    for setting in _SETTING.finditer(body):
        attributes = {
            match.group("name"): html.unescape(match.group("dq") or match.group("sq") or "")
            for match in _ATTRIBUTE.finditer(setting.group("attributes") or setting.group("open"))
        }
        name = attributes.get("name", "")
        if not name:
            msg = "every <setting> of authvalue needs a non-empty name"
            raise ValueError(msg)
        pairs.append((name, attributes.get("value", "")))
    if not pairs or _SETTING.sub("", body).strip():
        msg = 'authvalue must hold one or more <setting name="..." value="..." /> elements'
        raise ValueError(msg)
    return pairs


def check_endpoint(doc: dict[str, Any]) -> None:
    """Refuse a webhook registration the sender could not use (ValueError)."""
    url = doc.get("url") or doc.get("namespaceaddress")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        msg = "a webhook (contract 8) needs an absolute http(s) url"
        raise ValueError(msg)
    check_authvalue(doc.get("authtype"), doc.get("authvalue"))


def check_authvalue(authtype: object, authvalue: object) -> None:
    if authtype in PAIRED:
        if not isinstance(authvalue, str):
            msg = "authtype 5 (HttpHeader) and 6 (HttpQueryString) need an authvalue"
            raise ValueError(msg)
        pairs = parse_settings(authvalue)
        if authtype == HTTP_HEADER:
            for name, _ in pairs:
                if not _HEADER_NAME.match(name):
                    msg = f"'{name}' is not a valid HTTP header name"
                    raise ValueError(msg)
    elif authtype == WEBHOOK_KEY and not (isinstance(authvalue, str) and authvalue):
        msg = "authtype 4 (WebhookKey) needs an authvalue (the key)"
        raise ValueError(msg)


@dataclass(frozen=True)
class Credentials:
    """What a delivery adds to its request for the endpoint's authentication."""

    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


def credentials(authtype: object, authvalue: object) -> Credentials:
    if not isinstance(authvalue, str) or not authvalue:
        return Credentials()
    if authtype == WEBHOOK_KEY:
        return Credentials(params={"code": authvalue})
    if authtype in PAIRED:
        try:
            pairs = dict(parse_settings(authvalue))
        except ValueError:
            return Credentials()
        return Credentials(headers=pairs) if authtype == HTTP_HEADER else Credentials(params=pairs)
    return Credentials()
