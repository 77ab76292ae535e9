"""Instance annotations a client asks for with ``Prefer: odata.include-annotations``.

Dataverse puts them right before the property they describe:
``OData.Community.Display.V1.FormattedValue`` (the label of a choice, state or status,
money with its currency symbol, dates and numbers as a person reads them, ``Yes``/``No``,
the primary name of a looked-up row) and, on lookups,
``Microsoft.Dynamics.CRM.associatednavigationproperty`` and ``...lookuplogicalname``.
Null values carry none. Formats are those of an en-US user in UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.sandbox.operations.render import Preferences
from app.sandbox.schema.column_types import (
    attribute_type,
    lookup_name,
    lookup_targets,
    option_labels,
)
from app.sandbox.schema.entities import BY_LOGICAL, BY_SET, EntityType
from app.sandbox.store import Store

FORMATTED = "@OData.Community.Display.V1.FormattedValue"
NAVIGATION = "@Microsoft.Dynamics.CRM.associatednavigationproperty"
LOGICAL = "@Microsoft.Dynamics.CRM.lookuplogicalname"


class Annotator:
    """Annotates rows for one request; looked-up names and currencies are read once."""

    def __init__(self, store: Store, prefs: Preferences, *, base_currency_id: str) -> None:
        self.store = store
        self.prefs = prefs
        self.base_currency_id = base_currency_id
        self._names: dict[tuple[str, str], str | None] = {}

    @property
    def active(self) -> bool:
        return bool(self.prefs.annotations)

    def annotate(
        self, row: dict[str, Any], doc: dict[str, Any], entity: EntityType
    ) -> dict[str, Any]:
        if not self.active:
            return row
        annotated: dict[str, Any] = {}
        for name, value in row.items():
            if value is not None and "@" not in name:
                for suffix, text in self._annotations(entity, name, value, doc):
                    if text is not None and self.prefs.wants_annotation(suffix):
                        annotated[name + suffix] = text
            annotated[name] = value
        return annotated

    def _annotations(
        self, entity: EntityType, name: str, value: Any, doc: dict[str, Any]
    ) -> Iterator[tuple[str, str | None]]:
        lookup = lookup_name(name)
        if lookup is not None:
            logical = doc.get(name + LOGICAL) or self._single_target(entity, lookup)
            if logical is None:
                return
            target = BY_LOGICAL[logical]
            yield FORMATTED, self._primary_name(target, str(value))
            polymorphic = len(lookup_targets(entity, lookup)) > 1
            yield NAVIGATION, f"{lookup}_{logical}" if polymorphic else lookup
            yield LOGICAL, logical
            return
        yield FORMATTED, self._formatted(entity, name, value, doc)

    def _single_target(self, entity: EntityType, lookup: str) -> str | None:
        targets = lookup_targets(entity, lookup)
        return BY_SET[targets[0]].logical if len(targets) == 1 else None

    def _primary_name(self, target: EntityType, record_id: str) -> str | None:
        key = (target.set_name, record_id)
        if key not in self._names:
            row = self.store.get(target.set_name, record_id)
            name = row.get(target.primary_name) if row and target.primary_name else None
            self._names[key] = None if name is None else str(name)
        return self._names[key]

    def _formatted(
        self, entity: EntityType, name: str, value: Any, doc: dict[str, Any]
    ) -> str | None:
        kind = attribute_type(entity, name)
        if kind in ("Picklist", "State", "Status"):
            labels = option_labels(entity, name)
            return labels.get(value) if labels and isinstance(value, int) else None
        if kind == "Boolean" and isinstance(value, bool):
            return "Yes" if value else "No"
        if kind == "Money" and isinstance(value, int | float | Decimal):
            return self._money(value, name, doc)
        if kind == "DateTime" and isinstance(value, str):
            return _date_text(value)
        if kind == "Integer" and isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return None

    def _money(self, value: float | Decimal, name: str, doc: dict[str, Any]) -> str:
        currency_id = doc.get("_transactioncurrencyid_value")
        if name.endswith("_base") or not currency_id:
            currency_id = self.base_currency_id
        currency = self.store.get("transactioncurrencies", str(currency_id)) or {}
        symbol = str(currency.get("currencysymbol") or "")
        precision = currency.get("currencyprecision")
        digits = precision if isinstance(precision, int) else 2
        sign = "-" if value < 0 else ""
        return f"{sign}{symbol}{abs(value):,.{digits}f}"


def _date_text(value: str) -> str | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    day = f"{moment.month}/{moment.day}/{moment.year}"
    if "T" not in value:
        return day
    hour = moment.hour % 12 or 12
    return f"{day} {hour}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"
