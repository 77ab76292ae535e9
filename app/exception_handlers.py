"""The one place errors become HTTP responses: ``{"error": <kind>, "detail": <message>}``.

Database integrity errors that slip past validation become 409 with a readable reason,
and anything unexpected is logged with its request id and answered with a plain 500 that
leaks nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import SalesbridgeError
from app.logs import get_logger

log = get_logger("salesbridge.errors")


class ErrorItem(BaseModel):
    """One problem of a request: the field it concerns (and the row, in bulk changes)."""

    model_config = ConfigDict(extra="forbid")

    index: int | None = None
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer of the REST API, whatever its status."""

    model_config = ConfigDict(extra="forbid")

    error: str
    detail: str
    errors: list[ErrorItem] | None = None


_ERROR_STATUSES = {
    400: "Bad input: a value the request may not carry, a filter naming an unknown field.",
    401: "No valid bearer token.",
    403: "The caller's roles do not allow this.",
    404: "No such record.",
    409: "Conflicts with existing data or needs set-up that is missing.",
    413: "The request body is larger than the configured limit.",
    414: "The request target (path and query) is longer than the configured limit.",
    422: "The request does not match the schema (``errors`` lists every problem).",
    429: "Too many failed sign-in attempts; see ``Retry-After``.",
    431: "Too many request headers, or headers larger than the configured limit.",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in _ERROR_STATUSES.items()
}
"""What the OpenAPI schema declares for every REST route, replacing FastAPI's default 422."""


def error_body(kind: str, detail: str, errors: list[dict[str, Any]] | None = None) -> Any:
    body: dict[str, Any] = {"error": kind, "detail": detail}
    if errors:
        body["errors"] = errors
    return body


def describe_integrity_error(exc: IntegrityError) -> str:
    text = str(exc.orig).lower()
    if "unique" in text or "duplicate" in text:
        return "A record with the same key already exists."
    if "foreign key" in text:
        return "The change refers to a record that does not exist, or the record is still in use."
    if "not null" in text or "null value" in text:
        return "A required field is missing."
    return "The change conflicts with existing data."


# PostgreSQL refuses text it cannot store (a NUL character, U+0000, above all): bad input,
# not our failure. character_not_in_repertoire, untranslatable_character.
_UNSTORABLE_TEXT_SQLSTATES = frozenset({"22021", "22P05"})


def is_unstorable_text(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _UNSTORABLE_TEXT_SQLSTATES


# One error code for every request the schema refuses, whether FastAPI or a service found
# the problem (``ValidationFailedError`` renders the same).
VALIDATION_FAILED = "ValidationFailed"
_FORM_ENDPOINTS = ("/api/v1/auth/token",)


def _is_json(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


def _common_mistake(request: Request, exc: RequestValidationError) -> str | None:
    """The commonest curl mistakes, named: broken JSON, JSON without its Content-Type, JSON
    to the form-encoded token endpoint."""
    found = exc.errors()
    if found and found[0].get("type") == "json_invalid":
        position = int(found[0]["loc"][-1]) if len(found[0]["loc"]) > 1 else 0
        text = exc.body if isinstance(exc.body, str) else ""
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        reason = str(found[0].get("ctx", {}).get("error", "invalid JSON"))
        return (
            f"The request body is not valid JSON: {reason} at line {line}, column {column} "
            f"(character {position + 1})."
        )
    if request.url.path in _FORM_ENDPOINTS and _is_json(request):
        return (
            "Send form fields username and password (Content-Type "
            "application/x-www-form-urlencoded; curl: -d username=... -d password=...), not JSON."
        )
    body = exc.body
    looks_like_json = isinstance(body, bytes) and body.lstrip()[:1] in (b"{", b"[")
    if looks_like_json and not _is_json(request):
        sent = request.headers.get("content-type") or "none"
        return (
            f"The request body looks like JSON but its Content-Type is {sent}: send "
            "'Content-Type: application/json' (curl: -H 'Content-Type: application/json', "
            "or --json instead of -d)."
        )
    return None


# A hostile body can carry hundreds of thousands of problems (one per unknown key); the
# answer lists the first ones, so a 6 MB request never becomes a 27 MB response.
MAX_REPORTED_ERRORS = 50
_MAX_FIELD_CHARS = 200


def _validation_errors(exc: RequestValidationError) -> tuple[list[dict[str, Any]], int]:
    """The first ``MAX_REPORTED_ERRORS`` problems, and how many there were in all."""
    found = exc.errors()
    out = []
    for err in found[:MAX_REPORTED_ERRORS]:
        location = ".".join(str(part) for part in err.get("loc", ()))[:_MAX_FIELD_CHARS]
        out.append({"field": location, "message": str(err.get("msg", "invalid value"))})
    return out, len(found)


def install_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(SalesbridgeError)
    async def _salesbridge_error(_request: Request, exc: SalesbridgeError) -> JSONResponse:
        return JSONResponse(
            error_body(
                type(exc).__name__.removesuffix("Error") or "Error",
                exc.detail,
                exc.errors[:MAX_REPORTED_ERRORS] if exc.errors else None,
            ),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors, total = _validation_errors(exc)
        cause = _common_mistake(request, exc)
        if cause is not None:
            detail = cause
        else:
            detail = "The request is not valid: " + "; ".join(
                f"{e['field']}: {e['message']}" for e in errors[:5]
            )
            if total > len(errors):
                detail += f" (and {total - len(errors)} more problems not listed)"
        return JSONResponse(error_body(VALIDATION_FAILED, detail, errors), status_code=422)

    @app.exception_handler(IntegrityError)
    async def _integrity(_request: Request, exc: IntegrityError) -> JSONResponse:
        return JSONResponse(error_body("Conflict", describe_integrity_error(exc)), status_code=409)

    @app.exception_handler(DBAPIError)
    async def _database(_request: Request, exc: DBAPIError) -> JSONResponse:
        if not is_unstorable_text(exc):
            raise exc  # unexpected: the plain 500 below
        detail = "Text may not contain NUL characters (U+0000) or characters it cannot store."
        return JSONResponse(error_body("InvalidInput", detail), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            error_body("HTTPError", str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
        return JSONResponse(
            error_body("InternalError", "Something went wrong on our side; see the server log."),
            status_code=500,
        )
