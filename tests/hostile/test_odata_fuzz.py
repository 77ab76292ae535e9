"""Fuzzed OData requests over real HTTP: ``$filter``, key syntax, paths and query options.

The service runs in uvicorn (httptools); cases are drawn first (hypothesis, derandomized,
a fixed number per strategy) and then sent with httpx on one keep-alive connection, percent-
encoded or as raw bytes. Every answer is 200 with a JSON payload, or an OData error body
(``{"error": {"code", "message"}}``) with 400, 404, 406 (``$format``) or 501 (valid OData the
service does not implement, e.g. ``$expand``); never a 5xx, never another shape.

tests/odata/test_bad_filters.py fuzzes ``$filter`` through ASGI with a small grammar; this
one adds real HTTP, raw bytes, keys, paths and the other options.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlmodel.ext.asyncio.session import AsyncSession

from app.settings import Settings
from tests.hostile.live import serve
from tests.odata import factories

T = TypeVar("T")
ROOT = "/odata/v4"
SETS = ["ItemAvailability", "ItemAvailabilityByLocation", "ProductItemAvailability"]
PROPERTIES = ["ItemNo", "LocationCode", "Description", "Inventory", "QtyOnSalesOrder",
              "ProjectedAvailable", "Blocked", "CRMProductId", "LastModified", "BaseUnitOfMeasure",
              "itemno", "INVENTORY", "Nope", "key_digest", "$it", "$root", "@p"]  # fmt: skip
ALLOWED_ERRORS = {400, 404, 406, 501}
EXAMPLES = 150


def draw(strategy: st.SearchStrategy[T], count: int = EXAMPLES) -> list[T]:
    """A fixed, derandomized sample: the same cases on every run and both databases."""
    found: list[T] = []

    @settings(
        max_examples=count, derandomize=True, database=None, deadline=None,
        phases=[Phase.generate], suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(strategy)
    def collect(value: T) -> None:
        found.append(value)

    collect()
    return found


_names = st.sampled_from(PROPERTIES)
_strings = st.text(max_size=12).map(lambda s: "'" + s.replace("'", "''") + "'")
_broken_strings = st.text(max_size=12).map(lambda s: "'" + s)  # unbalanced or undoubled quotes
_literals = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    _strings,
    _broken_strings,
    st.sampled_from(
        [
            "null",
            "true",
            "false",
            "NaN",
            "INF",
            "-INF",
            "2024-02-30",
            "2024-01-01",
            "2024-01-01T25:00:00Z",
            "2024-01-01T10:00:00+01:00",
            "12:00:00",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "0f8fad5b-zzzz",
            "duration'P1D'",
            "binary'AAEC'",
            "geography'POINT(0 0)'",
            "Salesbridge.Color'Red'",
            "1e308",
            "1e-400",
            "-0",
            "0x10",
            "1_000",
            "'''",
            "@p",
            "@missing",
        ]
    ),
)
_operators = st.sampled_from(
    [
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "has",
        "in",
        "add",
        "sub",
        "mul",
        "div",
        "divby",
        "mod",
        "and",
        "or",
        "EQ",
        "==",
        "&&",
    ]
)
_functions = st.sampled_from(
    [
        "contains",
        "startswith",
        "endswith",
        "length",
        "indexof",
        "substring",
        "tolower",
        "toupper",
        "trim",
        "concat",
        "year",
        "month",
        "day",
        "hour",
        "round",
        "floor",
        "ceiling",
        "cast",
        "isof",
        "now",
        "maxdatetime",
        "matchesPattern",
        "fractionalseconds",
        "totaloffsetminutes",
        "geo.length",
        "Startswith",
        "unknownfn",
    ]
)


@st.composite
def _expression(draw_: st.DrawFn, depth: int = 0) -> str:
    choice = draw_(st.integers(0, 8 if depth < 4 else 1))
    if choice == 0:
        return str(draw_(_names))
    if choice == 1:
        return str(draw_(_literals))
    left = draw_(_expression(depth + 1))
    if choice == 2:
        return f"{left} {draw_(_operators)} {draw_(_expression(depth + 1))}"
    if choice == 3:
        args = draw_(st.lists(_expression(depth + 1), max_size=3))
        return f"{draw_(_functions)}({','.join(args)})"
    if choice == 4:
        return f"not ({left})"
    if choice == 5:
        items = draw_(st.lists(_literals, max_size=4))
        return f"{draw_(_names)} in ({','.join(items)})"
    if choice == 6:
        return f"{draw_(_names)}/any(d:d/{left})"
    if choice == 7:
        return f"-{left}"
    return f"({left}) {draw_(st.sampled_from(['and', 'or']))} ({draw_(_expression(depth + 1))})"


_text_props = st.sampled_from(["ItemNo", "Description", "BaseUnitOfMeasure", "itemno"])
_number_props = st.sampled_from(["Inventory", "QtyOnSalesOrder", "ProjectedAvailable"])
_comparisons = st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"])
_numbers = st.one_of(
    st.integers(-(10**9), 10**9).map(str),
    st.decimals(-(10**6), 10**6, places=3, allow_nan=False, allow_infinity=False).map(str),
)


@st.composite
def _typed(draw_: st.DrawFn, depth: int = 0) -> str:
    """Well-typed conditions, so the database paths run too (answers are 200)."""
    choice = draw_(st.integers(0, 7 if depth < 3 else 4))
    text, number = draw_(_text_props), draw_(_number_props)
    if choice == 0:
        return f"{text} {draw_(_comparisons)} {draw_(_strings)}"
    if choice == 1:
        fn = draw_(st.sampled_from(["startswith", "endswith", "contains"]))
        return f"{fn}({draw_(st.sampled_from([text, f'tolower({text})']))},{draw_(_strings)})"
    if choice == 2:
        return f"{number} {draw_(_comparisons)} {draw_(_numbers)}"
    if choice == 3:
        arithmetic = draw_(st.sampled_from(["add", "sub", "mul"]))
        return f"{number} {arithmetic} {draw_(_numbers)} {draw_(_comparisons)} {draw_(_numbers)}"
    if choice == 4:
        values = ",".join(draw_(st.lists(_strings, min_size=1, max_size=4)))
        return draw_(
            st.sampled_from(
                [
                    f"{text} in ({values})",
                    "Blocked",
                    "not Blocked",
                    f"length({text}) gt 3",
                    "LastModified lt 2030-01-01T00:00:00Z",
                ]
            )
        )
    left, right = draw_(_typed(depth + 1)), draw_(_typed(depth + 1))
    if choice == 5:
        return f"({left}) and ({right})"
    if choice == 6:
        return f"({left}) or not ({right})"
    return f"not ({left})"


_filters = st.one_of(
    _typed(), _expression(), st.text(max_size=80), _expression().map(lambda s: s[:-1])
)
_key_values = st.one_of(_literals, st.text(max_size=20), st.just(""))
_keys = st.one_of(
    _key_values,
    st.tuples(_names, _key_values).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.lists(st.tuples(_names, _key_values).map(lambda kv: f"{kv[0]}={kv[1]}"), max_size=4).map(
        ",".join
    ),
    st.sampled_from(["'1000'", "'1000',", "('1000')", "'1000')(", "ItemNo='1000',ItemNo='1001'",
                     "ItemNo='1000',LocationCode='BLUE'", "ItemNo='1000',LocationCode=BLUE",
                     "'A%_1'", "'A%25_1'", "'it''s'", "'it's'", "''''"]),
)  # fmt: skip
_tails = st.sampled_from(["", "/ItemNo", "/ItemNo/$value", "/Inventory/$value", "/$value",
                          "/$count", "/Nope", "/ItemNo/Nope", "/$ref", "/", "//", "/ItemNo/",
                          "/$metadata"])  # fmt: skip


@st.composite
def _key_paths(draw_: st.DrawFn) -> str:
    prefix = draw_(st.sampled_from(["", "Company('CRONUS')/", "Company('Nope')/", "Company(/"]))
    return f"{prefix}{draw_(st.sampled_from(SETS))}({draw_(_keys)}){draw_(_tails)}"


_option_values = st.one_of(
    st.integers(-(10**20), 10**20).map(str), st.text(max_size=20), _names, _filters,
    st.sampled_from(["json", "xml", "application/json;odata.metadata=full", "atom", "true",
                     "false", "ItemNo desc,Inventory asc", "ItemNo,ItemNo", "*", "ItemNo/Nope"]),
)  # fmt: skip
_options = st.dictionaries(
    st.sampled_from(["$filter", "$select", "$orderby", "$top", "$skip", "$count", "$skiptoken",
                     "$format", "$expand", "$search", "$apply", "$compute", "$levels", "$id",
                     "$unknown", "top", "@p", "$FILTER"]),
    _option_values, max_size=4,
)  # fmt: skip


@pytest.fixture
async def reader(session: AsyncSession, settings: Settings) -> dict[str, str]:
    await factories.add_items(session, ["1000", "1001", "A%_1", "it's"])
    await factories.add_ledger(session, [("1000", "BLUE", 10), ("1001", "", 3)])
    await session.commit()
    return await factories.odata_reader(session, settings)


@pytest.fixture
def base_url(settings: Settings) -> Iterator[str]:
    with serve(settings) as port:
        yield f"http://127.0.0.1:{port}"


def _check(response: httpx.Response, case: str) -> str | None:
    """A problem with the answer, or None."""
    status = response.status_code
    if status == 304:
        return None
    try:
        body: Any = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        if status == 200 and response.text.strip().isdigit():
            return None  # /$count and /$value are plain text
        if status == 200 and response.headers.get("content-type", "").startswith(
            ("text/", "application/xml")
        ):
            return None  # /$value of a string, $metadata as XML
        return f"{status}, not JSON: {response.text[:120]!r} <- {case}"
    if status == 200:
        return None
    if status not in ALLOWED_ERRORS:
        return f"{status}: {response.text[:200]} <- {case}"
    error = body.get("error") if isinstance(body, dict) else None
    if not (isinstance(error, dict) and error.get("code") and error.get("message")):
        return f"{status} without an OData error body: {response.text[:200]} <- {case}"
    return None


async def test_fuzzed_requests_over_http_never_fail(base_url: str, reader: dict[str, str]) -> None:
    cases: list[str] = []
    for text in draw(_filters) + draw(_typed()):
        cases.append(f"{ROOT}/ItemAvailability?$filter={quote(text, safe='')}&@p='1000'")
    for path in draw(_key_paths()):
        cases.append(f"{ROOT}/{quote(path, safe='/()=,$')}")
    for options in draw(_options):
        query = "&".join(f"{quote(k, safe='$@')}={quote(v, safe='')}" for k, v in options.items())
        cases.append(f"{ROOT}/{SETS[len(cases) % 3]}?{query}")
    for raw in draw(st.binary(max_size=40).map(lambda b: "".join(f"%{x:02X}" for x in b)), 40):
        cases.append(f"{ROOT}/ItemAvailability?$filter={raw}")
        cases.append(f"{ROOT}/ItemAvailability({raw})")
    problems: list[str] = []
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=base_url, headers=reader, timeout=30) as client:
        for case in cases:
            response = await client.get(httpx.URL(base_url + case))
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            problem = _check(response, case)
            if problem:
                problems.append(problem)
        # the service still answers normally after all of it
        found = await client.get(f"{ROOT}/ItemAvailability('1000')")
    assert found.status_code == 200 and found.json()["Inventory"] == 10
    assert not problems, f"{len(problems)} of {len(cases)}:\n" + "\n".join(problems[:25])
    assert len(cases) > 600
    assert statuses.get(200, 0) > 100 and statuses.get(400, 0) > 200, statuses  # both kinds seen
