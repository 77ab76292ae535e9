"""The metadata items ``EntityDefinitions`` serves, built from the sandbox's declarations:
entity metadata, attribute metadata (type from app/sandbox/schema/column_types.py), alternate keys
and relationships (app/sandbox/schema/navigation.py). Ids are fixed (uuid5) per sandbox schema."""

from __future__ import annotations

import uuid
from typing import Any

from app.sandbox.schema.attributes import Schema
from app.sandbox.schema.column_types import (
    attribute_type,
    lookup_name,
    lookup_targets,
    option_labels,
)
from app.sandbox.schema.entities import BY_SET, ENTITIES, RELATIONSHIPS, SERVER_SET, EntityType
from app.sandbox.schema.navigation import Navigation, relationship_name, single_valued

_OWNERSHIP = {"user": "UserOwned", "organization": "OrganizationOwned",
              "businessunit": "BusinessOwned", "none": "None"}  # fmt: skip
# Object type codes of the system tables (Dataverse's documented values); others get 10000+.
_TYPE_CODES = {
    "account": 1, "contact": 2, "opportunity": 3, "annotation": 5, "systemuser": 8,
    "role": 1036, "pricelevel": 1022, "product": 1024, "productpricelevel": 1026,
    "uom": 1055, "uomschedule": 1056, "quote": 1084, "quotedetail": 1085,
    "salesorder": 1088, "salesorderdetail": 1089, "invoice": 1090, "invoicedetail": 1091,
    "sdkmessage": 4606, "sdkmessagefilter": 4607, "solution": 7100, "post": 8000,
    "transactioncurrency": 9105,
}  # fmt: skip
_DISPLAY = {
    "uomschedule": "Unit Group", "uom": "Unit", "pricelevel": "Price List",
    "productpricelevel": "Price List Item", "quotedetail": "Quote Product",
    "salesorder": "Order", "salesorderdetail": "Order Product",
    "invoicedetail": "Invoice Product", "systemuser": "User",
    "transactioncurrency": "Currency", "annotation": "Note", "role": "Security Role",
    "sdkmessage": "Sdk Message", "sdkmessagefilter": "Sdk Message Filter",
    "nav_connection": "Dynamics NAV Connection", "nav_accountstatistics": "Account Statistics",
}  # fmt: skip
_METADATA_TYPES = {
    "Lookup": "Lookup",
    "Customer": "Lookup",
    "Owner": "Lookup",
    "Uniqueidentifier": "UniqueIdentifier",
}


def metadata_id(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "sandbox/metadata/" + "/".join(parts)))


def label(text: str) -> dict[str, Any]:
    localized = {"Label": text, "LanguageCode": 1033, "IsManaged": True,
                 "MetadataId": metadata_id("label", text), "HasChanged": None}  # fmt: skip
    return {"LocalizedLabels": [localized], "UserLocalizedLabel": localized}


def _schema_name(logical: str) -> str:
    return logical[:1].upper() + logical[1:]


def entity_item(entity: EntityType, index: int) -> dict[str, Any]:
    display = _DISPLAY.get(entity.logical, _schema_name(entity.logical))
    return {
        "MetadataId": metadata_id("entity", entity.logical),
        "LogicalName": entity.logical,
        "SchemaName": _schema_name(entity.logical),
        "EntitySetName": entity.set_name,
        "LogicalCollectionName": entity.set_name,
        "CollectionSchemaName": _schema_name(entity.set_name),
        "PrimaryIdAttribute": entity.pk,
        "PrimaryNameAttribute": entity.primary_name,
        "PrimaryImageAttribute": None,
        "ObjectTypeCode": _TYPE_CODES.get(entity.logical, 10000 + index),
        "OwnershipType": _OWNERSHIP[entity.ownership],
        "IsCustomEntity": entity.logical.startswith("nav_"),
        "IsActivity": False,
        "HasActivities": False,
        "IsIntersect": False,
        "IsValidForAdvancedFind": not entity.is_system,
        "ChangeTrackingEnabled": False,  # the sandbox has no change tracking
        "HasNotes": any(nav.name == f"objectid_{entity.logical}" for nav in _all_singles()),
        "DisplayName": label(display),
        "DisplayCollectionName": label(display + "s"),
        "Description": label(""),
    }


def _logical(column: str) -> str:
    return lookup_name(column) or column


def attribute_item(entity: EntityType, column: str, schema: Schema) -> dict[str, Any]:
    kind = attribute_type(entity, column)
    logical = _logical(column)
    metadata_type = _METADATA_TYPES.get(kind, kind)
    server_set = column in SERVER_SET or column == "versionnumber"
    item: dict[str, Any] = {
        "@odata.type": f"#Microsoft.Dynamics.CRM.{metadata_type}AttributeMetadata",
        "MetadataId": metadata_id("attribute", entity.logical, logical),
        "LogicalName": logical,
        "SchemaName": _schema_name(logical),
        "EntityLogicalName": entity.logical,
        "AttributeType": kind,
        "AttributeTypeName": {"Value": f"{kind}Type"},
        "IsPrimaryId": column == entity.pk,
        "IsPrimaryName": column == entity.primary_name,
        "IsCustomAttribute": logical.startswith(("nav_", "bcbi_"))
        or logical in schema.extra(entity),  # noqa: S610 - not Django
        "IsValidForRead": True,
        "IsValidForCreate": not server_set and column != "statecode",
        "IsValidForUpdate": not server_set and column != entity.pk,
        "IsLogical": False,
        "RequiredLevel": {"Value": "SystemRequired" if column == entity.pk else "None",
                          "CanBeChanged": column != entity.pk,
                          "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings"},
        "DisplayName": label(_schema_name(logical)),
    }  # fmt: skip
    if lookup_name(column) is not None:
        item["Targets"] = [BY_SET[target].logical for target in lookup_targets(entity, logical)]
    return item


def option_set(entity: EntityType, column: str) -> dict[str, Any] | None:
    labels = option_labels(entity, column)
    if labels is None:
        return None
    options = [{"Value": value, "Label": label(text)} for value, text in sorted(labels.items())]
    return {"MetadataId": metadata_id("optionset", entity.logical, column), "Options": options}


def key_item(entity: EntityType, attributes: tuple[str, ...]) -> dict[str, Any]:
    name = f"{entity.logical}_{'_'.join(attributes)}"
    return {
        "MetadataId": metadata_id("key", entity.logical, *attributes),
        "LogicalName": name,
        "SchemaName": name,
        "EntityLogicalName": entity.logical,
        "KeyAttributes": list(attributes),
        "EntityKeyIndexStatus": "Active",
        "DisplayName": label(", ".join(attributes)),
    }


def _all_singles() -> list[Navigation]:
    return [nav for entity in ENTITIES for nav in single_valued(entity)]


def one_to_many_item(nav: Navigation) -> dict[str, Any]:
    """The relationship behind a lookup, seen from either side (Dataverse uses one shape)."""
    name = relationship_name(nav)
    return {
        "@odata.type": "#Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
        "MetadataId": metadata_id("relationship", name),
        "SchemaName": name,
        "RelationshipType": "OneToManyRelationship",
        "ReferencedEntity": nav.target.logical,
        "ReferencedAttribute": nav.target.pk,
        "ReferencingEntity": nav.source.logical,
        "ReferencingAttribute": nav.lookup,
        "ReferencedEntityNavigationPropertyName": name,
        "ReferencingEntityNavigationPropertyName": nav.name,
        "IsCustomRelationship": (nav.lookup or "").startswith("nav_"),
        "IsValidForAdvancedFind": True,
    }


def many_to_one(entity: EntityType) -> list[dict[str, Any]]:
    return [one_to_many_item(nav) for nav in single_valued(entity)]


def one_to_many(entity: EntityType) -> list[dict[str, Any]]:
    return [one_to_many_item(nav) for nav in _all_singles() if nav.target is entity]


def many_to_many(entity: EntityType) -> list[dict[str, Any]]:
    items = []
    for name, (left, right) in RELATIONSHIPS.items():
        if entity.set_name not in (left, right):
            continue
        first, second = BY_SET[left], BY_SET[right]
        items.append({
            "@odata.type": "#Microsoft.Dynamics.CRM.ManyToManyRelationshipMetadata",
            "MetadataId": metadata_id("relationship", name),
            "SchemaName": name,
            "RelationshipType": "ManyToManyRelationship",
            "Entity1LogicalName": first.logical,
            "Entity2LogicalName": second.logical,
            "Entity1IntersectAttribute": first.pk,
            "Entity2IntersectAttribute": second.pk,
            "Entity1NavigationPropertyName": name,
            "Entity2NavigationPropertyName": name,
            "IsCustomRelationship": False,
        })  # fmt: skip
    return items
