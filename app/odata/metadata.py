"""``$metadata`` as CSDL XML and CSDL JSON, and the service document, built once.

The Capabilities annotations say what we support (OData 4.01 Minimal #13): Intermediate
conformance, filter/sort/top/skip/count, no expand/search/batch/changes.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from xml.sax.saxutils import quoteattr

import orjson

from app.odata.entity_sets import (
    CONTAINER,
    ENTITY_SETS,
    NAMESPACE,
    QTY_PRECISION,
    QTY_SCALE,
    EntitySet,
    Property,
)

CAPABILITIES_NS = "Org.OData.Capabilities.V1"
CORE_NS = "Org.OData.Core.V1"
_VOCABULARIES = {
    "Core": ("https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Core.V1.xml"),
    "Capabilities": (
        "https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Capabilities.V1.xml"
    ),
}
FILTER_FUNCTIONS = (
    "contains startswith endswith length tolower toupper trim concat indexof substring "
    "year month day hour minute second round floor ceiling now"
).split()


def _property_facets(prop: Property) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if prop.max_length is not None:
        facets["MaxLength"] = prop.max_length
    if prop.is_decimal:
        facets["Precision"] = QTY_PRECISION
        facets["Scale"] = QTY_SCALE
    if prop.edm_type == "Edm.DateTimeOffset":
        facets["Precision"] = 6
    return facets


def _xml_property(prop: Property) -> str:
    attrs = {"Name": prop.name, "Type": prop.edm_type, "Nullable": str(prop.nullable).lower()}
    attrs.update({k: str(v) for k, v in _property_facets(prop).items()})
    rendered = " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items())
    return f"<Property {rendered}/>"


def _xml_entity_type(entity_set: EntitySet) -> str:
    keys = "".join(f'<PropertyRef Name="{name}"/>' for name in entity_set.key)
    props = "".join(_xml_property(p) for p in entity_set.properties)
    return f'<EntityType Name="{entity_set.type_name}"><Key>{keys}</Key>{props}</EntityType>'


def _xml_set_annotations(entity_set: EntitySet) -> str:
    return (
        f'<Annotation Term="Core.Description" String={quoteattr(entity_set.description)}/>'
        '<Annotation Term="Capabilities.TopSupported" Bool="true"/>'
        '<Annotation Term="Capabilities.SkipSupported" Bool="true"/>'
        '<Annotation Term="Capabilities.CountRestrictions"><Record>'
        '<PropertyValue Property="Countable" Bool="true"/></Record></Annotation>'
        '<Annotation Term="Capabilities.FilterRestrictions"><Record>'
        '<PropertyValue Property="Filterable" Bool="true"/></Record></Annotation>'
        '<Annotation Term="Capabilities.SortRestrictions"><Record>'
        '<PropertyValue Property="Sortable" Bool="true"/></Record></Annotation>'
        '<Annotation Term="Capabilities.ExpandRestrictions"><Record>'
        '<PropertyValue Property="Expandable" Bool="false"/></Record></Annotation>'
        '<Annotation Term="Capabilities.SearchRestrictions"><Record>'
        '<PropertyValue Property="Searchable" Bool="false"/></Record></Annotation>'
        '<Annotation Term="Capabilities.InsertRestrictions"><Record>'
        '<PropertyValue Property="Insertable" Bool="false"/></Record></Annotation>'
        '<Annotation Term="Capabilities.UpdateRestrictions"><Record>'
        '<PropertyValue Property="Updatable" Bool="false"/></Record></Annotation>'
        '<Annotation Term="Capabilities.DeleteRestrictions"><Record>'
        '<PropertyValue Property="Deletable" Bool="false"/></Record></Annotation>'
    )


def _xml_container_annotations() -> str:
    functions = "".join(f"<String>{name}</String>" for name in FILTER_FUNCTIONS)
    return (
        '<Annotation Term="Core.ODataVersions" String="4.0"/>'
        '<Annotation Term="Capabilities.ConformanceLevel" '
        'EnumMember="Capabilities.ConformanceLevelType/Intermediate"/>'
        '<Annotation Term="Capabilities.BatchSupported" Bool="false"/>'
        '<Annotation Term="Capabilities.AsynchronousRequestsSupported" Bool="false"/>'
        '<Annotation Term="Capabilities.SupportedFormats"><Collection>'
        "<String>application/json;odata.metadata=minimal</String>"
        "<String>application/json;odata.metadata=full</String>"
        "<String>application/json;odata.metadata=none</String></Collection></Annotation>"
        f'<Annotation Term="Capabilities.FilterFunctions"><Collection>{functions}'
        "</Collection></Annotation>"
    )


@cache
def csdl_xml() -> bytes:
    references = "".join(
        f'<edmx:Reference Uri="{uri}"><edmx:Include Namespace="Org.OData.{alias}.V1" '
        f'Alias="{alias}"/></edmx:Reference>'
        for alias, uri in _VOCABULARIES.items()
    )
    types = "".join(_xml_entity_type(s) for s in ENTITY_SETS.values())
    sets = "".join(
        f'<EntitySet Name="{s.name}" EntityType="{s.qualified_type}">'
        f"{_xml_set_annotations(s)}</EntitySet>"
        for s in ENTITY_SETS.values()
    )
    document = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">'
        f"{references}<edmx:DataServices>"
        f'<Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="{NAMESPACE}">'
        f'{types}<EntityContainer Name="{CONTAINER}">{sets}'
        f"{_xml_container_annotations()}</EntityContainer></Schema>"
        "</edmx:DataServices></edmx:Edmx>"
    )
    return document.encode()


def _json_property(prop: Property) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if prop.edm_type != "Edm.String":
        body["$Type"] = prop.edm_type
    if prop.nullable:
        body["$Nullable"] = True
    for facet, value in _property_facets(prop).items():
        body[f"${facet}"] = value
    return body


def _json_set_annotations(entity_set: EntitySet) -> dict[str, Any]:
    return {
        "@Core.Description": entity_set.description,
        "@Capabilities.TopSupported": True,
        "@Capabilities.SkipSupported": True,
        "@Capabilities.CountRestrictions": {"Countable": True},
        "@Capabilities.FilterRestrictions": {"Filterable": True},
        "@Capabilities.SortRestrictions": {"Sortable": True},
        "@Capabilities.ExpandRestrictions": {"Expandable": False},
        "@Capabilities.SearchRestrictions": {"Searchable": False},
        "@Capabilities.InsertRestrictions": {"Insertable": False},
        "@Capabilities.UpdateRestrictions": {"Updatable": False},
        "@Capabilities.DeleteRestrictions": {"Deletable": False},
    }


@cache
def csdl_json() -> bytes:
    schema: dict[str, Any] = {}
    for entity_set in ENTITY_SETS.values():
        schema[entity_set.type_name] = {
            "$Kind": "EntityType",
            "$Key": list(entity_set.key),
            **{p.name: _json_property(p) for p in entity_set.properties},
        }
    container: dict[str, Any] = {
        "$Kind": "EntityContainer",
        "@Core.ODataVersions": "4.0",
        "@Capabilities.ConformanceLevel": "Intermediate",
        "@Capabilities.BatchSupported": False,
        "@Capabilities.FilterFunctions": FILTER_FUNCTIONS,
    }
    for entity_set in ENTITY_SETS.values():
        container[entity_set.name] = {
            "$Collection": True,
            "$Type": entity_set.qualified_type,
            **_json_set_annotations(entity_set),
        }
    schema[CONTAINER] = container
    document = {
        "$Version": "4.0",
        "$EntityContainer": f"{NAMESPACE}.{CONTAINER}",
        "$Reference": {
            uri: {"$Include": [{"$Namespace": f"Org.OData.{alias}.V1", "$Alias": alias}]}
            for alias, uri in _VOCABULARIES.items()
        },
        NAMESPACE: schema,
    }
    return orjson.dumps(document)


def service_document(context_url: str) -> bytes:
    return orjson.dumps(
        {
            "@odata.context": context_url,
            "value": [{"name": name, "kind": "EntitySet", "url": name} for name in ENTITY_SETS],
        }
    )
