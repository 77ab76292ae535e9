"""``/ODataV3/$metadata``: the V3 sets as an EDMX 1.0 document with CSDL 3.0, built once."""

from __future__ import annotations

from functools import cache
from xml.sax.saxutils import quoteattr

from app.odata.entity_sets import (
    CONTAINER,
    ENTITY_SETS,
    NAMESPACE,
    QTY_PRECISION,
    QTY_SCALE,
    EntitySet,
    Property,
)

EDMX_NS = "http://schemas.microsoft.com/ado/2007/06/edmx"
METADATA_NS = "http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"
EDM_NS = "http://schemas.microsoft.com/ado/2009/11/edm"


def _property(prop: Property) -> str:
    attrs = {"Name": prop.name, "Type": prop.edm_type, "Nullable": str(prop.nullable).lower()}
    if prop.max_length is not None:
        attrs["MaxLength"] = str(prop.max_length)
    if prop.is_decimal:
        attrs["Precision"], attrs["Scale"] = str(QTY_PRECISION), str(QTY_SCALE)
    rendered = " ".join(f"{name}={quoteattr(value)}" for name, value in attrs.items())
    return f"<Property {rendered}/>"


def _entity_type(entity_set: EntitySet) -> str:
    keys = "".join(f'<PropertyRef Name="{name}"/>' for name in entity_set.key)
    properties = "".join(_property(p) for p in entity_set.properties)
    return f'<EntityType Name="{entity_set.type_name}"><Key>{keys}</Key>{properties}</EntityType>'


@cache
def edmx(names: tuple[str, ...]) -> bytes:
    """The document for the sets called ``names``."""
    entity_sets = [ENTITY_SETS[name] for name in names]
    types = "".join(_entity_type(s) for s in entity_sets)
    sets = "".join(
        f'<EntitySet Name="{s.name}" EntityType="{s.qualified_type}"/>' for s in entity_sets
    )
    document = (
        '<?xml version="1.0" encoding="utf-8" standalone="yes"?>'
        f'<edmx:Edmx Version="1.0" xmlns:edmx="{EDMX_NS}">'
        f'<edmx:DataServices m:DataServiceVersion="3.0" m:MaxDataServiceVersion="3.0" '
        f'xmlns:m="{METADATA_NS}">'
        f'<Schema Namespace="{NAMESPACE}" xmlns="{EDM_NS}">{types}'
        f'<EntityContainer Name="{CONTAINER}" m:IsDefaultEntityContainer="true">{sets}'
        "</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>"
    )
    return document.encode()
