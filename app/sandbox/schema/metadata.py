"""A minimal CSDL ``$metadata``: the entity types with their keys, system columns, lookups
and navigation properties (app/sandbox/schema/navigation.py), the entity sets, and the WhoAmI
function. Other columns are listed by ``EntityDefinitions(...)/Attributes``."""

from __future__ import annotations

from functools import cache
from xml.sax.saxutils import quoteattr

from app.sandbox.schema.entities import ENTITIES, EntityType
from app.sandbox.schema.navigation import navigations

_NS = "Microsoft.Dynamics.CRM"
_SYSTEM = (
    ("createdon", "Edm.DateTimeOffset"),
    ("modifiedon", "Edm.DateTimeOffset"),
    ("versionnumber", "Edm.Int64"),
    ("_createdby_value", "Edm.Guid"),
    ("_modifiedby_value", "Edm.Guid"),
)


def _entity_type(entity: EntityType) -> list[str]:
    lines = [
        f"<EntityType Name={quoteattr(entity.logical)}>",
        f'<Key><PropertyRef Name="{entity.pk}"/></Key>',
        f'<Property Name="{entity.pk}" Type="Edm.Guid"/>',
    ]
    if entity.primary_name:
        lines.append(f'<Property Name="{entity.primary_name}" Type="Edm.String"/>')
    if entity.state is not None:
        lines.append('<Property Name="statecode" Type="Edm.Int32"/>')
        lines.append('<Property Name="statuscode" Type="Edm.Int32"/>')
    lines += [f'<Property Name="{name}" Type="{kind}"/>' for name, kind in _SYSTEM]
    for lookup in entity.lookups.values():
        lines.append(f'<Property Name="_{lookup.name}_value" Type="Edm.Guid"/>')
    for nav in navigations(entity).values():
        kind = f"{_NS}.{nav.target.logical}"
        if nav.kind != "single":
            kind = f"Collection({kind})"
        lines.append(f'<NavigationProperty Name="{nav.name}" Type="{kind}"/>')
    lines.append("</EntityType>")
    return lines


@cache
def metadata_document() -> str:
    body: list[str] = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">',
        "<edmx:DataServices>",
        f'<Schema Namespace="{_NS}" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">',
    ]
    for entity in ENTITIES:
        body += _entity_type(entity)
    body += [
        '<ComplexType Name="WhoAmIResponse">',
        '<Property Name="BusinessUnitId" Type="Edm.Guid" Nullable="false"/>',
        '<Property Name="UserId" Type="Edm.Guid" Nullable="false"/>',
        '<Property Name="OrganizationId" Type="Edm.Guid" Nullable="false"/>',
        "</ComplexType>",
        '<Function Name="WhoAmI"><ReturnType Type="mscrm.WhoAmIResponse" Nullable="false"/>'
        "</Function>",
        '<EntityContainer Name="System">',
    ]
    for entity in ENTITIES:
        body.append(f'<EntitySet Name="{entity.set_name}" EntityType="{_NS}.{entity.logical}"/>')
    body += [
        '<FunctionImport Name="WhoAmI" Function="mscrm.WhoAmI"/>',
        "</EntityContainer>",
        "</Schema>",
        "</edmx:DataServices>",
        "</edmx:Edmx>",
    ]
    return "\n".join(body)
