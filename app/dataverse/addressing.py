"""Addressing records: key predicates, ``@odata.bind`` values and lookup columns.

- ``record_path("accounts", id)``            -> ``accounts(<guid>)``
- ``record_path("products", {"productnumber": "A-1"})`` -> ``products(productnumber='A-1')``
- ``bind("products", id)``                    -> ``/products(<guid>)`` (a lookup write value)
- ``bind_field("customerid_account")``        -> ``customerid_account@odata.bind``
- ``lookup_field("pricelevelid")``            -> ``_pricelevelid_value`` (how a lookup reads)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

KeyValue = str | int | float | Decimal | bool | uuid.UUID | None
RecordKey = uuid.UUID | str | Mapping[str, KeyValue]

_ENTITY_ID = re.compile(r"\(([0-9a-fA-F-]{36})\)\s*$")
# Characters kept literal in a key predicate; everything else in a value is percent-encoded
# so '/', '#', '?' and '%' in an alternate key cannot change the URL's meaning.
_PREDICATE_SAFE = "()=,'$-_.~:"


def odata_literal(value: KeyValue) -> str:
    """An OData URL literal: strings quoted with ``'`` doubled, GUIDs and numbers bare."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, int | float | Decimal):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def key_predicate(key: RecordKey) -> str:
    """``<guid>`` or ``name='x',other=2`` (without the parentheses)."""
    if isinstance(key, uuid.UUID):
        return str(key)
    if isinstance(key, str):
        return str(uuid.UUID(key))  # a plain string key must be a GUID; raises otherwise
    if not key:
        msg = "an alternate key needs at least one column"
        raise ValueError(msg)
    return ",".join(f"{name}={odata_literal(value)}" for name, value in key.items())


def record_path(entity_set: str, key: RecordKey) -> str:
    return quote(f"{entity_set}({key_predicate(key)})", safe=_PREDICATE_SAFE)


def bind(entity_set: str, key: RecordKey) -> str:
    """The value of a ``<nav>@odata.bind`` field pointing at one record."""
    return "/" + record_path(entity_set, key)


def bind_field(navigation_property: str) -> str:
    """The field name that writes a lookup: nav names are case-sensitive, kept as given."""
    return f"{navigation_property}@odata.bind"


def lookup_field(navigation_property: str) -> str:
    """The column a lookup comes back as when read: ``_<nav>_value``."""
    return f"_{navigation_property.lower()}_value"


def read_lookup(record: Mapping[str, Any], navigation_property: str) -> uuid.UUID | None:
    value = record.get(lookup_field(navigation_property))
    return uuid.UUID(value) if value else None


def parse_entity_id(entity_url: str | None) -> uuid.UUID | None:
    """The GUID of an ``OData-EntityId`` / ``Location`` header in the id form
    (``.../accounts(<guid>)``); None in the alternate-key form
    (``.../accounts(accountnumber='A-1')``), which names the record by its key values."""
    if not entity_url:
        return None
    match = _ENTITY_ID.search(entity_url)
    return uuid.UUID(match.group(1)) if match else None


def record_id_of(response: Any, *, primary_key: str) -> uuid.UUID | None:
    """The id of the record a write answered for: from ``OData-EntityId`` in the id form,
    else from the representation's primary key (the answer to ``return=representation``)."""
    found = parse_entity_id(response.headers.get("OData-EntityId"))
    if found is not None:
        return found
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get(primary_key) if isinstance(body, dict) else None
    return uuid.UUID(value) if isinstance(value, str) else None
