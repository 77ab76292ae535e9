"""The OpenAPI document as a reader of ``/docs`` needs it: summaries, field texts, examples.

FastAPI builds the document from the routes and schemas; this adds, where the code did
not say it itself: a summary from the first line of the endpoint's docstring, a
description on every schema property (``app.api.field_glossary``), and an example on
every JSON request body, built from the glossary's example values (a bulk upsert's is a
list of the resource's create example).
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.api.field_glossary import DESCRIPTIONS, EXAMPLES, SCHEMA_EXAMPLES, WHOLE_EXAMPLES

MAX_DEPTH = 4


def install_openapi_text(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            document(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(schema: dict[str, Any]) -> None:
    components = schema.get("components", {}).get("schemas", {})
    for component in components.values():
        for name, prop in component.get("properties", {}).items():
            if not prop.get("description") and name in DESCRIPTIONS:
                prop["description"] = DESCRIPTIONS[name]
    bulk: list[tuple[dict[str, Any], str]] = []
    for path, item in schema.get("paths", {}).items():
        for operation in item.values():
            summary = _summary(operation.get("description", ""))
            if summary:  # no route sets its own summary: FastAPI's is the title-cased name
                operation["summary"] = summary
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content is None or "example" in content:
                continue
            if path.endswith("/bulk-upsert"):
                bulk.append((content, path.removesuffix("/bulk-upsert")))
                continue
            example = example_of(content["schema"], components)
            if example is not None:
                content["example"] = example
    for content, collection in bulk:
        create = schema["paths"].get(collection, {}).get("post", {})
        single = create.get("requestBody", {}).get("content", {}).get("application/json", {})
        if "example" in single:
            content["example"] = [single["example"]]


def _summary(docstring: str) -> str:
    """The first sentence of the endpoint's docstring (FastAPI's description of it)."""
    first = docstring.strip().split("\n\n", 1)[0].replace("\n", " ").strip()
    return first.split("; ", 1)[0].split(". ", 1)[0].rstrip(".:")[:100]


def example_of(
    schema: dict[str, Any], components: dict[str, Any], *, name: str = "", depth: int = 0
) -> Any:
    """An example of ``schema``: known values by field name, an enum's first value,
    objects from their required and known fields; None when nothing sensible is known."""
    if name in EXAMPLES:
        return EXAMPLES[name]
    if "$ref" in schema:
        component = schema["$ref"].rsplit("/", 1)[-1]
        if component in WHOLE_EXAMPLES:
            return copy.deepcopy(WHOLE_EXAMPLES[component])
        found = example_of(components[component], components, name=name, depth=depth)
        if isinstance(found, dict):
            found.update(SCHEMA_EXAMPLES.get(component, {}))
        return found
    choices = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if choices:
        return example_of(choices[0], components, name=name, depth=depth)
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object" and depth < MAX_DEPTH:
        return _object_example(schema, components, depth=depth)
    if kind == "array" and depth < MAX_DEPTH:
        item = example_of(schema.get("items", {}), components, depth=depth + 1)
        return [] if item is None else [item]
    return None


def _object_example(schema: dict[str, Any], components: dict[str, Any], *, depth: int) -> Any:
    required = set(schema.get("required", []))
    example = {}
    for field, prop in schema.get("properties", {}).items():
        if field not in required and field not in EXAMPLES and prop.get("type") != "array":
            continue
        value = example_of(prop, components, name=field, depth=depth + 1)
        if value is not None and (field in required or value != []):
            example[field] = value
    return example
