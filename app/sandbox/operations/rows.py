"""Rows on their way out: projected (``$select``), annotated (``Prefer:
odata.include-annotations``) and expanded (``$expand``), the same for every read."""

from __future__ import annotations

from typing import Any

from app.sandbox.operations.expand import Expansion, expand_row
from app.sandbox.operations.formatted_values import Annotator
from app.sandbox.operations.render import Preferences, project
from app.sandbox.schema.entities import EntityType
from app.sandbox.store import Store


class RowWriter:
    def __init__(self, store: Store, prefs: Preferences, *, base_currency_id: str) -> None:
        self.store = store
        self.annotator = Annotator(store, prefs, base_currency_id=base_currency_id)

    def row(
        self,
        doc: dict[str, Any],
        entity: EntityType,
        select: list[str] | None,
        expansions: list[Expansion] | None = None,
    ) -> dict[str, Any]:
        row = self.annotator.annotate(project(doc, entity, select), doc, entity)
        if expansions:
            expand_row(row, doc, expansions, self.store, self._nested)
        return row

    def _nested(
        self, doc: dict[str, Any], entity: EntityType, select: list[str] | None
    ) -> dict[str, Any]:
        return self.row(doc, entity, select)
