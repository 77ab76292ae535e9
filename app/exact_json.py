"""JSON with exact decimals, for the Dataverse Web API (our client and the sandbox).

Dataverse keeps money and decimal columns as decimals, and reads and writes them as JSON
numbers. Through a Python float, an amount with more than 15 significant digits would
arrive changed (1234567890123.4567 -> 1234567890123.4568), so JSON is written with every
``Decimal`` as its exact digits and read with every non-integer number as a ``Decimal``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson

CONTENT_TYPE = "application/json; charset=utf-8"


def _exact(value: Any) -> Any:
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(format(value, "f"))  # plain digits: no exponent for Dataverse
    msg = f"cannot write {type(value).__name__} as JSON"
    raise TypeError(msg)


def encode(body: Any) -> bytes:
    return orjson.dumps(body, default=_exact)


def default(value: Any) -> Any:
    """orjson's ``default=`` for callers with their own options: ``Decimal`` exactly."""
    return _exact(value)


def decode(content: bytes | str) -> Any:
    """JSON text -> Python, non-integer numbers as ``Decimal``; ``ValueError`` if invalid."""
    return json.loads(content, parse_float=Decimal)


def number(value: Any) -> Decimal:
    """A JSON number (int, Decimal, or a float through its shortest text) as a ``Decimal``;
    anything else (null, text, booleans) is 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return Decimal(0)
    return Decimal(str(value))
