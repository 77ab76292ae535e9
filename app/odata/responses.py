"""HTTP details of the OData boundary: content negotiation, preferences, error bodies."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.errors import SalesbridgeError
from app.odata.errors import ODataBadRequestError, ODataNotAcceptableError, odata_code_for
from app.odata.serialize import FULL, MINIMAL, NONE

ODATA_VERSION = "4.0"
_ODATA_VERSION_BYTES = ODATA_VERSION.encode()
JSON_TYPE = "application/json"
_LEVEL = re.compile(r"(?:odata\.)?metadata\s*=\s*([a-z]+)", re.IGNORECASE)
_MAXPAGESIZE = re.compile(r"(?:^|[,;\s])(?:odata\.)?maxpagesize\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


@dataclass
class Reply:
    """An OData response before it is sent: no framework object per request."""

    body: bytes = b""
    content_type: str | None = None
    status: int = 200
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    version: tuple[bytes, bytes] = (b"odata-version", _ODATA_VERSION_BYTES)

    def header(self, name: str, value: str) -> None:
        self.headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """Content type and length (none for 1xx/204/304, as Starlette does), then ours."""
        out = [self.version]
        if self.content_type is not None:
            out.append((b"content-type", _content_type_bytes(self.content_type)))
        if self.status >= 200 and self.status not in (204, 304):
            out.append((b"content-length", str(len(self.body)).encode()))
        out.extend(self.headers)
        return out


_content_types: dict[str, bytes] = {}


def _content_type_bytes(content_type: str) -> bytes:
    found = _content_types.get(content_type)
    if found is None:
        text = content_type
        if text.startswith("text/") and "charset" not in text:
            text += "; charset=utf-8"
        found = text.encode("latin-1")
        if len(_content_types) < 64:
            _content_types[content_type] = found
    return found


def error_response(exc: SalesbridgeError) -> Reply:
    error: dict[str, Any] = {"code": odata_code_for(exc), "message": exc.detail}
    if exc.errors:
        error["details"] = exc.errors
    reply = Reply(orjson.dumps({"error": error}), JSON_TYPE, exc.status_code)
    for name, value in (exc.headers or {}).items():
        reply.header(name, value)
    return reply


def internal_error_response() -> Reply:
    body = {"error": {"code": "Internal_ServerError", "message": "Something went wrong."}}
    return Reply(orjson.dumps(body), JSON_TYPE, 500)


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


_PLAIN_RANGES = ("text/plain", "text/*", "*/*", "application/*", JSON_TYPE)


def check_plain_text(format_option: str | None, accept: str | None) -> None:
    """``/$count`` and ``/$value`` answer ``text/plain``: 406 only for an ``Accept`` (or
    ``$format``) that rules it out. JSON is let through: generic clients send
    ``Accept: application/json`` with every request and still read the plain count."""
    if format_option is not None:
        lowered = format_option.strip().lower()
        if lowered not in ("json", "text/plain") and not lowered.startswith(JSON_TYPE):
            msg = f"This resource is text/plain, not '{format_option[:40]}'."
            raise ODataNotAcceptableError(msg)
        return
    if not accept:
        return
    for media_range in accept.split(","):
        media = media_range.split(";", 1)[0].strip().lower()
        if media == "" or media in _PLAIN_RANGES:
            return
    msg = "This resource is text/plain; the Accept header rules that out."
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
    return _JSON_TYPES[level]


_JSON_TYPES = {
    level: f"{JSON_TYPE};odata.metadata={level};odata.streaming=true;charset=utf-8"
    for level in (MINIMAL, FULL, NONE)
}


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
