"""Errors the REST API renders; one handler turns each into ``{"error", "detail"}``.

SalesbridgeError (status 500 only if something is truly wrong)
 +-- InvalidInputError     400  the request is well-formed JSON but says something impossible
 +-- UnauthorizedError     401
 +-- ForbiddenError        403
 +-- NotFoundError         404
 +-- ConflictError         409  duplicate code, wrong document state, a row still referenced
 +-- ValidationFailedError 422  several row-level problems reported together (bulk upsert)
 +-- TooManyRequestsError  429  login throttling; carries Retry-After
 +-- NotConfiguredError    409  an action needs set-up that is missing
"""

from __future__ import annotations

from typing import Any


class SalesbridgeError(Exception):
    status_code = 500

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors

    @property
    def headers(self) -> dict[str, str] | None:
        return None


class InvalidInputError(SalesbridgeError):
    status_code = 400


class UnauthorizedError(SalesbridgeError):
    status_code = 401

    @property
    def headers(self) -> dict[str, str] | None:
        return {"WWW-Authenticate": "Bearer"}


class ForbiddenError(SalesbridgeError):
    status_code = 403


class NotFoundError(SalesbridgeError):
    status_code = 404


class ConflictError(SalesbridgeError):
    status_code = 409


class NotConfiguredError(SalesbridgeError):
    status_code = 409


class ValidationFailedError(SalesbridgeError):
    status_code = 422


class TooManyRequestsError(SalesbridgeError):
    status_code = 429

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after_seconds)}
