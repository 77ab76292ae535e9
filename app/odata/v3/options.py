"""OData V3 query options: ``$filter $select $orderby $top $skip $skiptoken $inlinecount
$format``, parsed into the ``QueryOptions`` both versions read with.

V3 rules, stricter than 4.01's: system options start with ``$`` and are case-sensitive
(``$FILTER`` is unknown: 400); ``$count`` is V4 (V3 has ``$inlinecount``); ``$expand`` is
valid V3 that this service does not do (501). Names without ``$`` are custom options,
ignored as the protocol says, and repeated in next links.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from app.odata.errors import ODataBadRequestError, ODataNotImplementedError
from app.odata.query import QueryOptions
from app.odata.v3.filter_text import v4_filter

SUPPORTED = frozenset(
    {"$filter", "$select", "$orderby", "$top", "$skip", "$skiptoken", "$inlinecount", "$format"}
)
UNSUPPORTED = frozenset({"$expand"})
INLINECOUNT = ("allpages", "none")


def parse_v3_options(query_string: str) -> QueryOptions:
    options = QueryOptions()
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, strict_parsing=False)
    except ValueError as exc:
        msg = "The query string is not valid."
        raise ODataBadRequestError(msg) from exc
    for name, value in pairs:
        if not name.startswith("$"):
            options.custom.append((name, value))
            continue
        if name in UNSUPPORTED:
            msg = f"The query option '{name}' is not supported by this service."
            raise ODataNotImplementedError(msg)
        if name not in SUPPORTED:
            msg = f"'{name[:40]}' is not an OData V3 system query option."
            raise ODataBadRequestError(msg)
        key = name[1:]
        if key in options.values:
            msg = f"The query option '{name}' is given more than once."
            raise ODataBadRequestError(msg)
        options.values[key] = value
    inlinecount = options.get("inlinecount")
    if inlinecount is not None and inlinecount not in INLINECOUNT:
        msg = f"$inlinecount must be allpages or none, not '{inlinecount[:40]}'."
        raise ODataBadRequestError(msg)
    text = options.get("filter")
    if text is not None:
        options.translated["filter"] = v4_filter(text)
    return options


def wants_inline_count(options: QueryOptions) -> bool:
    return options.get("inlinecount") == "allpages"
