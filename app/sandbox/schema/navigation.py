"""Navigation properties: the single-valued lookups, many-to-many relationships and the
one-to-many relationships each lookup implies, by the names clients use in ``$expand``,
``$filter`` paths (``parentcustomerid_account/name``) and the relationship metadata.

One-to-many relationships are named ``<referenced>_<referencing>_<lookup>`` (the
sandbox's own naming; a real org's system relationships have names of their own, which a
client reads from ``EntityDefinitions(...)/OneToManyRelationships`` as it would here).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

from app.sandbox.schema.entities import BY_SET, ENTITIES, RELATIONSHIPS, SYSTEM_LOOKUPS, EntityType

Kind = Literal["single", "many", "children"]


@dataclass(frozen=True)
class Navigation:
    name: str
    kind: Kind
    source: EntityType
    target: EntityType
    column: str | None = None  # single: the source's "_<lookup>_value"
    lookup: str | None = None  # single and children: the lookup's logical name
    relationship: str | None = None  # many: the relationship's name
    is_polymorphic: bool = False

    @property
    def child_column(self) -> str:
        return f"_{self.lookup}_value"


def _single(entity: EntityType) -> list[Navigation]:
    found: list[Navigation] = []
    for lookup in entity.lookups.values():
        for target in lookup.targets:
            name = lookup.name
            if lookup.is_polymorphic:
                name = f"{lookup.name}_{BY_SET[target].logical}"
            found.append(
                Navigation(
                    name,
                    "single",
                    entity,
                    BY_SET[target],
                    f"_{lookup.name}_value",
                    lookup.name,
                    is_polymorphic=lookup.is_polymorphic,
                )  # fmt: skip
            )
    for name, target_set in SYSTEM_LOOKUPS.items():
        if name == "owninguser" and entity.ownership != "user":
            continue
        found.append(Navigation(name, "single", entity, BY_SET[target_set], f"_{name}_value", name))
    return found


def relationship_name(single: Navigation) -> str:
    """The one-to-many relationship behind a single-valued navigation property."""
    return f"{single.target.logical}_{single.source.logical}_{single.lookup}"


def _children(entity: EntityType) -> list[Navigation]:
    found: list[Navigation] = []
    for other in ENTITIES:
        for single in _single(other):
            if single.target.set_name == entity.set_name:
                found.append(
                    Navigation(
                        relationship_name(single), "children", entity, other, lookup=single.lookup
                    )  # fmt: skip
                )
    return found


def _many(entity: EntityType) -> list[Navigation]:
    found: list[Navigation] = []
    for name, (left, right) in RELATIONSHIPS.items():
        if entity.set_name in (left, right):
            other = BY_SET[right if entity.set_name == left else left]
            found.append(Navigation(name, "many", entity, other, relationship=name))
    return found


def navigations(entity: EntityType) -> dict[str, Navigation]:
    """Every navigation property of ``entity`` by name (names are case-sensitive)."""
    return _by_set(entity.set_name)


@cache
def _by_set(set_name: str) -> dict[str, Navigation]:
    entity = BY_SET[set_name]
    return {nav.name: nav for nav in (*_single(entity), *_many(entity), *_children(entity))}


def single_valued(entity: EntityType) -> list[Navigation]:
    return [nav for nav in navigations(entity).values() if nav.kind == "single"]


def find(entity: EntityType, name: str) -> Navigation | None:
    return navigations(entity).get(name)
