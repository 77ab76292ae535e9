"""Errors of the OData boundary, each with the OData error ``code`` BC clients know.

All render as ``{"error": {"code": ..., "message": ...}}`` (OData JSON Format §21) through
``app.odata.responses.error_response``; the REST API's handler renders the same classes
as ``{"error", "detail"}`` because they are ordinary ``SalesbridgeError`` subclasses.

SalesbridgeError
 +-- InvalidInputError
 |    +-- ODataBadRequestError          400  BadRequest_InvalidRequest (bad option, key, token)
 |    +-- ODataFilterError              400  BadRequest_InvalidFilter  (syntax, property, type)
 |         +-- ODataFilterUnsupportedError 501 NotImplemented_Filter (valid OData we do not do)
 +-- UnauthorizedError
 |    +-- ODataUnauthorizedError        401  Authentication_InvalidCredentials + WWW-Authenticate
 +-- ForbiddenError
 |    +-- ODataForbiddenError           403  Authorization_Forbidden
 +-- NotFoundError
 |    +-- ODataNotFoundError            404  BadRequest_NotFound
 +-- ODataNotAcceptableError            406  BadRequest_NotAcceptable
 +-- ODataMethodNotAllowedError         405  BadRequest_MethodNotAllowed
 +-- ODataNotImplementedError           501  NotImplemented (expand, search, apply, ...)
"""

from __future__ import annotations

from app.errors import (
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    SalesbridgeError,
    UnauthorizedError,
)

REALM = "Salesbridge OData"


class ODataBadRequestError(InvalidInputError):
    odata_code = "BadRequest_InvalidRequest"


class ODataFilterError(InvalidInputError):
    """A ``$filter`` that cannot be run: syntax, unknown property, type mismatch, caps."""

    odata_code = "BadRequest_InvalidFilter"


class ODataFilterUnsupportedError(ODataFilterError):
    """Valid OData we deliberately do not implement (``any``, ``matchesPattern``, ...)."""

    status_code = 501
    odata_code = "NotImplemented_Filter"


class ODataUnauthorizedError(UnauthorizedError):
    odata_code = "Authentication_InvalidCredentials"

    @property
    def headers(self) -> dict[str, str] | None:
        return {"WWW-Authenticate": f'Basic realm="{REALM}", Bearer'}


class ODataForbiddenError(ForbiddenError):
    odata_code = "Authorization_Forbidden"


class ODataNotFoundError(NotFoundError):
    odata_code = "BadRequest_NotFound"


class ODataNotAcceptableError(SalesbridgeError):
    status_code = 406
    odata_code = "BadRequest_NotAcceptable"


class ODataMethodNotAllowedError(SalesbridgeError):
    status_code = 405
    odata_code = "BadRequest_MethodNotAllowed"

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Allow": "GET, HEAD"}


class ODataNotImplementedError(SalesbridgeError):
    status_code = 501
    odata_code = "NotImplemented"


def odata_code_for(exc: SalesbridgeError) -> str:
    """The OData code of one of ours, or a BC-style code for any other Salesbridge error."""
    code = getattr(exc, "odata_code", None)
    if isinstance(code, str):
        return code
    return {
        400: "BadRequest_InvalidRequest",
        401: "Authentication_InvalidCredentials",
        403: "Authorization_Forbidden",
        404: "BadRequest_NotFound",
        409: "Request_Conflict",
        429: "Request_TooManyRequests",
    }.get(exc.status_code, "Internal_ServerError")
