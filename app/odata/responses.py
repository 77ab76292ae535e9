"""HTTP details of the OData boundary: content negotiation, preferences, error bodies."""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.responses import Response

from app.errors import SalesbridgeError
from app.odata.errors import ODataBadRequestError, ODataNotAcceptableError, odata_code_for
from app.odata.serialize import FULL, MINIMAL, NONE

ODATA_VERSION = "4.0"
JSON_TYPE = "application/json"
_LEVEL = re.compile(r"(?:odata\.)?metadata\s*=\s*([a-z]+)", re.IGNORECASE)
_MAXPAGESIZE = re.compile(r"(?:^|[,;\s])(?:odata\.)?maxpagesize\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


def error_response(exc: SalesbridgeError) -> Response:
    error: dict[str, Any] = {"code": odata_code_for(exc), "message": exc.detail}
    if exc.errors:
        error["details"] = exc.errors
    body = {"error": error}
    response = Response(
        orjson.dumps(body), status_code=exc.status_code, media_type="application/json"
    )
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


def internal_error_response() -> Response:
    body = {"error": {"code": "Internal_ServerError", "message": "Something went wrong."}}
    return Response(orjson.dumps(body), status_code=500, media_type="application/json")


def metadata_level(format_option: str | None, accept: str | None) -> str:
    """minimal/full/none from ``$format`` (which wins) or ``Accept``; 406 for non-JSON."""
    if format_option is not None:
        lowered = format_option.strip().lower()
        if lowered != "json" and not lowered.startswith(JSON_TYPE):
            msg = f"The format '{format_option[:40]}' is not available; use json."
            raise ODataNotAcceptableError(msg)
        return _level_from(lowered)
    if not accept:
        return MINIMAL
    for media_range in accept.split(","):
        lowered = media_range.strip().lower()
        if lowered.startswith((JSON_TYPE, "*/*", "application/*")) or lowered == "":
            return _level_from(lowered)
    msg = "This service answers with application/json only."
    raise ODataNotAcceptableError(msg)


def _level_from(media: str) -> str:
    match = _LEVEL.search(media)
    if match is None:
        return MINIMAL
    level = match.group(1).lower()
    if level not in (MINIMAL, FULL, NONE):
        msg = f"Unknown metadata level '{level}'; use minimal, full or none."
        raise ODataNotAcceptableError(msg)
    return level


def json_content_type(level: str) -> str:
    return f"{JSON_TYPE};odata.metadata={level};odata.streaming=true;charset=utf-8"


def wants_json_metadata(format_option: str | None, accept: str | None) -> bool:
    if format_option is not None:
        lowered = format_option.strip().lower()
        if lowered in ("xml", "application/xml"):
            return False
        if lowered == "json" or lowered.startswith(JSON_TYPE):
            return True
        msg = f"$metadata is available as xml or json, not '{format_option[:40]}'."
        raise ODataNotAcceptableError(msg)
    if not accept:
        return False
    lowered = accept.lower()
    return JSON_TYPE in lowered and "xml" not in lowered


def requested_page_size(prefer: str | None, maximum: int) -> tuple[int, bool]:
    """(page size, whether a maxpagesize preference was applied)."""
    if not prefer:
        return maximum, False
    match = _MAXPAGESIZE.search(prefer)
    if match is None:
        return maximum, False
    wanted = int(match.group(1)[:9])
    return max(1, min(wanted, maximum)), True


def check_max_version(max_version: str | None) -> None:
    if max_version is None:
        return
    try:
        major = float(max_version.strip())
    except ValueError as exc:
        msg = f"OData-MaxVersion '{max_version[:20]}' is not a version number."
        raise ODataBadRequestError(msg) from exc
    if major < 4.0:
        msg = "This service speaks OData 4.0; OData-MaxVersion is below that."
        raise ODataBadRequestError(msg)
