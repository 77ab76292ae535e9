"""One committed change of a row, as the write path notes it for webhook steps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.sandbox.schema.entities import EntityType


@dataclass(frozen=True)
class Change:
    message: str  # the SDK message: Create, Update or Delete
    entity: EntityType
    record_id: str
    # The Target's columns as stored (``_x_value`` lookups with their logical-name
    # annotation): the whole row for Create, what the request changed for Update, none for
    # Delete (its Target is a reference).
    attributes: dict[str, Any]
    user_id: str  # whom the operation ran as (the impersonated user, else the caller)
    initiating_user_id: str  # the caller
    row_version: int | None = None
    primary_name: Any = None  # the row's primary name column, for AsynchronousStepPrimaryName

    @property
    def attribute_names(self) -> frozenset[str]:
        """The logical names of the Target's columns (``_x_value`` -> ``x``)."""
        names = set()
        for column in self.attributes:
            if "@" in column:
                continue
            if column.startswith("_") and column.endswith("_value"):
                column = column[1:-6]
            names.add(column)
        return frozenset(names)
