"""Dataverse-shaped errors: ``{"error": {"code": "0x...", "message": ...}}`` with a status.

Codes and messages marked [doc] are quoted from Microsoft's Web API documentation or
troubleshooting pages; the others are the codes Dataverse is known to use for the case
([inferred], see docs/sandbox.md).

SandboxError
 +-- every failure a Web API operation can answer, carrying status, code and message
"""

from __future__ import annotations

import orjson


class SandboxError(Exception):
    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> bytes:
        return orjson.dumps({"error": {"code": self.code, "message": self.message}})


# --- addressing ---------------------------------------------------------------------------
def resource_not_found(segment: str) -> SandboxError:  # [doc]
    return SandboxError(404, "0x8006088a", f"Resource not found for the segment '{segment}'.")


def no_http_resource(url: str) -> SandboxError:  # [doc]
    return SandboxError(
        404, "", f"No HTTP resource was found that matches the request URI '{url}'."
    )


def method_not_allowed(method: str, path: str) -> SandboxError:
    return SandboxError(
        405, "0x80060888", f"The HTTP method '{method}' is not supported for '{path}'."
    )


def invalid_key(logical: str) -> SandboxError:  # [doc] message
    kind = f"Microsoft.Dynamics.CRM.{logical}"
    return SandboxError(
        400,
        "0x80060888",
        f"The key in the request URI is not valid for resource '{kind}'. Ensure that the "
        f"names and number of key properties match the declared or alternate key "
        f"properties for the resource '{kind}'.",
    )


def bad_syntax(detail: str) -> SandboxError:
    return SandboxError(400, "0x80060888", f"Bad Request - Error in query syntax. {detail}")


def unknown_property(name: str, logical: str) -> SandboxError:
    # [doc] code and message: Microsoft's "Troubleshoot Dataverse Web API client errors"
    # ($select=Name -> 400 0x0); $filter and $orderby go through the same OData URI parser.
    return SandboxError(
        400,
        "0x0",
        f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{logical}'.",
    )


def skip_not_supported() -> SandboxError:
    return SandboxError(400, "0x80060888", "The query parameter $skip is not supported")


# --- records ------------------------------------------------------------------------------
def does_not_exist(logical: str, record_id: str) -> SandboxError:
    return SandboxError(404, "0x80040217", f"{logical} With Id = {record_id} Does Not Exist")


def key_does_not_exist(logical: str, key: str) -> SandboxError:
    return SandboxError(
        404,
        "0x80040217",
        f"A record with the specified key values does not exist in {logical} entity ({key})",
    )


def duplicate_record() -> SandboxError:  # [doc] message (create-only upsert)
    return SandboxError(412, "0x80040237", "A record with matching key values already exists.")


def duplicate_key(logical: str, attributes: tuple[str, ...]) -> SandboxError:
    names = ", ".join(attributes)
    return SandboxError(
        412,
        "0x80060892",
        f"A record that has the attribute values {names} already exists. The entity key "
        f"{logical}_key requires that this set of attributes contains unique values.",
    )


def version_mismatch() -> SandboxError:  # [doc] message
    return SandboxError(
        412,
        "0x80060882",
        "The version of the existing record doesn't match the RowVersion property provided.",
    )


def payload_error(set_name: str, detail: str) -> SandboxError:
    return SandboxError(
        400,
        "0x80048d19",
        f"Error identified in Payload provided by the user for Entity :'{set_name}', "
        f"For more information on this error please follow this help link "
        f"https://go.microsoft.com/fwlink/?linkid=2195293 ---->  InnerException : "
        f"Microsoft.OData.ODataException: {detail}",
    )


def id_mismatch(logical: str, url_id: str, body_id: str) -> SandboxError:
    # Dataverse refuses the request; the wording is the sandbox's own.
    return SandboxError(
        400,
        "0x80048d19",
        f"The {logical}id in the request body ({body_id}) does not match the record the URL "
        f"addresses ({url_id}); a record's id cannot be changed.",
    )


def missing_privilege(user_id: str, privilege: str) -> SandboxError:
    # The shape of Dataverse's privilege check failure (SecLib::CheckPrivilege).
    return SandboxError(
        403,
        "0x80040220",
        f"Principal user (Id={user_id}, type=8) is missing {privilege} privilege.",
    )


def user_disabled(user_id: str) -> SandboxError:
    return SandboxError(400, "0x8004a107", f"The user with SystemUserId={user_id} is disabled.")


def validation_error(message: str) -> SandboxError:  # code [doc]
    return SandboxError(400, "0x80044331", f"A validation error occurred. {message}")


def invalid_state(message: str) -> SandboxError:
    return SandboxError(400, "0x80040203", message)


def read_only_record(logical: str, state: str) -> SandboxError:
    return SandboxError(
        400,
        "0x80040203",
        f"This {logical} cannot be edited because it is {state}; "
        f"only records in an editable state can be changed.",
    )


def invalid_argument(message: str) -> SandboxError:
    return SandboxError(400, "0x80040203", message)


def unsupported(message: str) -> SandboxError:
    return SandboxError(501, "0x80040800", message)


# --- batch --------------------------------------------------------------------------------
def content_id_missing(reference: str) -> SandboxError:  # [doc]
    return SandboxError(
        400, "0x0", f"Content-ID Reference: '{reference}' does not exist in the batch context."
    )


def too_many_in_batch(limit: int) -> SandboxError:
    return SandboxError(
        400,
        "0x0",
        f"Only batch messages with a maximum number of '{limit}' query operations, including "
        f"changeset operations, are allowed.",
    )


def too_many_in_changeset(limit: int) -> SandboxError:  # [doc] (DynamicsWebApi#71)
    return SandboxError(
        400,
        "0x0",
        f"The current change set contains too many operations. A maximum number of "
        f"'{limit}' operations are allowed in a change set.",
    )


# --- service protection ([doc] codes and messages, api-limits.md) -----------------------
def too_many_requests(limit: int, window_seconds: float, retry_after: int) -> SandboxError:
    return SandboxError(
        429,
        "0x80072322",
        f"Number of requests exceeded the limit of {limit} over time window of "
        f"{window_seconds:g} seconds.",
        headers={"Retry-After": str(retry_after)},
    )


def too_many_concurrent(limit: int, retry_after: int) -> SandboxError:
    return SandboxError(
        429,
        "0x80072326",
        f"Number of concurrent requests exceeded the limit of {limit}.",
        headers={"Retry-After": str(retry_after)},
    )


def unexpected(status: int) -> SandboxError:
    if status == 503:
        return SandboxError(503, "0x80040216", "The service is temporarily unavailable.")
    return SandboxError(status, "0x80040216", "An unexpected error occurred.")


def unauthorized() -> SandboxError:
    return SandboxError(
        401,
        "0x80072560",
        "The user is not authenticated: the bearer token is missing, invalid or expired.",
    )
