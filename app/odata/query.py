"""System query options: parsed from the raw query string, checked against an entity set.

4.01 rules: option names are case-insensitive and the ``$`` is optional; options we do not
implement (``$expand``, ``$search``, ``$apply``, ``$compute``, ...) fail with 501 instead of
being ignored; a repeated option is a 400. Names without ``$`` that are not system
options are custom options, which OData says to ignore. ``@name`` are parameter aliases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from app.odata.entity_sets import EntitySet, Property
from app.odata.errors import ODataBadRequestError, ODataNotImplementedError

SUPPORTED = {"filter", "select", "orderby", "top", "skip", "count", "skiptoken", "format"}
UNSUPPORTED = {"expand", "search", "apply", "compute", "levels", "deltatoken", "index", "id"}
MAX_SELECT_ITEMS = 50
_ORDER_ITEM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)(?:\s+(asc|desc))?\s*$", re.IGNORECASE)


@dataclass
class QueryOptions:
    values: dict[str, str] = field(default_factory=dict)  # as sent (next links repeat them)
    aliases: dict[str, str] = field(default_factory=dict)
    custom: list[tuple[str, str]] = field(default_factory=list)
    # What the query runs instead of a value as sent (a V3 $filter in V4 syntax).
    translated: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def query_value(self, name: str) -> str | None:
        return self.translated.get(name, self.values.get(name))


def parse_options(query_string: str) -> QueryOptions:
    options = QueryOptions()
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, strict_parsing=False)
    except ValueError as exc:
        msg = "The query string is not valid."
        raise ODataBadRequestError(msg) from exc
    for raw_name, value in pairs:
        if raw_name.startswith("@"):
            options.aliases[raw_name[1:]] = value
            continue
        has_dollar = raw_name.startswith("$")
        name = raw_name.removeprefix("$").lower()
        if name in UNSUPPORTED:
            msg = f"The query option '${name}' is not supported by this service."
            raise ODataNotImplementedError(msg)
        if name not in SUPPORTED:
            if has_dollar:
                msg = f"Unknown system query option '{raw_name}'."
                raise ODataBadRequestError(msg)
            options.custom.append((raw_name, value))
            continue
        if name in options.values:
            msg = f"The query option '${name}' is given more than once."
            raise ODataBadRequestError(msg)
        options.values[name] = value
    return options


def parse_non_negative(options: QueryOptions, name: str) -> int | None:
    raw = options.get(name)
    if raw is None:
        return None
    text = raw.strip()
    if not text.isdigit() or len(text) > 12:
        msg = f"${name} must be a non-negative whole number, not '{raw[:40]}'."
        raise ODataBadRequestError(msg)
    return int(text)


def parse_count(options: QueryOptions) -> bool:
    raw = options.get("count")
    if raw is None:
        return False
    text = raw.strip().lower()
    if text not in ("true", "false"):
        msg = f"$count must be true or false, not '{raw[:40]}'."
        raise ODataBadRequestError(msg)
    return text == "true"


def parse_select(entity_set: EntitySet, options: QueryOptions) -> tuple[Property, ...]:
    """The properties to return, in declaration order (all of them without ``$select``)."""
    raw = options.get("select")
    if raw is None or raw.strip() in ("", "*"):
        return entity_set.properties
    names = [part.strip() for part in raw.split(",")]
    if len(names) > MAX_SELECT_ITEMS:
        msg = "$select names too many properties."
        raise ODataBadRequestError(msg)
    chosen: set[str] = set()
    for name in names:
        if name == "*":
            return entity_set.properties
        prop = entity_set.resolve(name)
        if prop is None:
            msg = f"'{name[:60]}' is not a property of {entity_set.name} ($select)."
            raise ODataBadRequestError(msg)
        chosen.add(prop.name)
    return tuple(p for p in entity_set.properties if p.name in chosen)


def parse_orderby(
    entity_set: EntitySet, options: QueryOptions
) -> tuple[tuple[Property, bool], ...]:
    """(property, descending) pairs, with the key appended so the order is total."""
    raw = options.get("orderby")
    order: list[tuple[Property, bool]] = []
    seen: set[str] = set()
    if raw is not None and raw.strip():
        for item in raw.split(","):
            match = _ORDER_ITEM.match(item)
            if match is None:
                msg = f"Invalid $orderby item '{item.strip()[:60]}'."
                raise ODataBadRequestError(msg)
            prop = entity_set.resolve(match.group(1))
            if prop is None:
                msg = f"'{match.group(1)}' is not a property of {entity_set.name} ($orderby)."
                raise ODataBadRequestError(msg)
            if prop.name not in seen:
                order.append((prop, (match.group(2) or "asc").lower() == "desc"))
                seen.add(prop.name)
    for key in entity_set.key:
        if key not in seen:
            order.append((entity_set.by_name[key], False))
    return tuple(order)


def refuse_query_options(options: QueryOptions, kind: str) -> None:
    """The service document and ``$metadata`` take no query option but ``$format``: a
    ``$filter`` appended to the service root would otherwise be ignored without a word."""
    extra = [f"${name}" for name in options.values if name != "format"]
    extra += [f"@{name}" for name in options.aliases]
    if extra:
        what = "The service document" if kind == "service" else "$metadata"
        msg = (
            f"{what} takes no query options ({', '.join(extra)[:80]}); "
            "put them on an entity set, e.g. .../ItemAvailability?$filter=..."
        )
        raise ODataBadRequestError(msg)
