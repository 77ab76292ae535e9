"""Server-driven paging: ORDER BY clauses, opaque keyset ``$skiptoken``s and their predicate.

A token holds the sort values of the last row sent, signed (HMAC) so a client can neither
forge values of the wrong type nor reuse a token under another ``$orderby``. The next page
is "rows after that tuple", so every page costs what the first one does (no OFFSET).
Nulls sort first ascending and last descending (OData), on both databases.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
import sqlalchemy as sa

from app.odata.entity_sets import Property
from app.odata.errors import ODataBadRequestError
from app.odata.serialize import fragment_text
from app.odata.sql_constructs import binary_collation

Ordering = tuple[tuple[Property, bool], ...]
_MAC_BYTES = 12


def _sortable(prop: Property) -> Any:
    return binary_collation(prop.column) if prop.is_string else prop.column


def order_by_clauses(ordering: Ordering) -> list[Any]:
    clauses = []
    for prop, descending in ordering:
        expr = _sortable(prop)
        clause = expr.desc() if descending else expr.asc()
        if prop.nullable:  # only then: explicit NULLS FIRST/LAST can stop an index being used
            clause = clause.nulls_last() if descending else clause.nulls_first()
        clauses.append(clause)
    return clauses


def signature(ordering: Ordering) -> str:
    return ",".join(f"{prop.name} {'desc' if desc else 'asc'}" for prop, desc in ordering)


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def encode_token(secret: bytes, ordering: Ordering, values: list[Any]) -> str:
    payload = orjson.dumps([signature(ordering), [_plain(v) for v in values]])
    raw = payload + _mac(secret, payload)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _plain(value: Any) -> Any:
    value = fragment_text(value)  # an exact decimal sent as a JSON number
    if isinstance(value, Decimal | float):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def decode_token(secret: bytes, ordering: Ordering, token: str) -> list[Any]:
    """The last row's sort values, typed; 400 for anything we did not issue."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError) as exc:
        raise _bad_token() from exc
    payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, _mac(secret, payload)):
        raise _bad_token()
    issued_for, values = orjson.loads(payload)
    if issued_for != signature(ordering) or len(values) != len(ordering):
        msg = "The $skiptoken belongs to another $orderby; follow the nextLink unchanged."
        raise ODataBadRequestError(msg)
    try:
        return [_typed(prop, value) for (prop, _desc), value in zip(ordering, values, strict=True)]
    except (ValueError, InvalidOperation, TypeError) as exc:
        raise _bad_token() from exc


def _bad_token() -> ODataBadRequestError:
    return ODataBadRequestError("The $skiptoken is not valid; follow the nextLink unchanged.")


def _typed(prop: Property, value: Any) -> Any:
    if value is None:
        return None
    if prop.is_decimal:
        return Decimal(value)
    if prop.edm_type == "Edm.Guid":
        return uuid.UUID(value)
    if prop.edm_type == "Edm.DateTimeOffset":
        return dt.datetime.fromisoformat(value)
    return value


def after_predicate(ordering: Ordering, values: list[Any]) -> tuple[Any, set[str]]:
    """Rows strictly after ``values`` in ``ordering``: OR over levels of (ties, then after).

    Values are bind parameters ``after_<i>`` (the caller binds them), so the statement's
    shape depends only on the ordering and on which values are null.
    """
    levels = []
    ties: list[Any] = []
    names: set[str] = set()
    for index, ((prop, descending), value) in enumerate(zip(ordering, values, strict=True)):
        bound = None
        if value is not None:
            bound = sa.bindparam(f"after_{index}", type_=prop.column.type)
            names.add(f"after_{index}")
        after = _after_one(prop, descending, bound)
        if after is not None:
            levels.append(sa.and_(*ties, after))
        ties.append(prop.column.is_(None) if bound is None else prop.column == bound)
    return (sa.or_(*levels) if levels else sa.false()), names


def _after_one(prop: Property, descending: bool, bound: Any) -> Any:  # noqa: FBT001
    column = prop.column
    if bound is None:
        return None if descending else column.is_not(None)
    sortable, bound_sortable = (
        _sortable(prop),
        (binary_collation(bound) if prop.is_string else bound),
    )
    if descending:
        less = sortable < bound_sortable
        return sa.or_(less, column.is_(None)) if prop.nullable else less
    return sortable > bound_sortable
