"""The shortcut for common ``$filter`` forms builds exactly the parser's AST, or nothing;
filters of one template answer for their own literal."""

from __future__ import annotations

import uuid

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.odata.errors import InvalidInputError
from app.odata.filtering import syntax as filter_syntax
from app.odata.filtering.shortcuts import simple_tree
from tests.odata.conftest import CRM_1000

_blanks = st.sampled_from(["", " ", "  ", "\t", "\n", "\u00a0"])
_names = st.sampled_from(["ItemNo", "Inventory", "CRM_ID", "itemno", "null", "eq", "x1", "_a"])
_literals = st.one_of(
    st.text(max_size=6).map(lambda s: "'" + s.replace("'", "''") + "'"),
    st.integers(-(10**25), 10**25).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
    st.uuids().map(str),
    st.sampled_from(["null", "true", "false", "'it''s'", "'a'b'", "1e5", "01", "-0", "1.", ".5"]),
)
_operators = st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge", "EQ", "has", "in"])


@st.composite
def _texts(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        name, literal = draw(_names), draw(_literals)
        parts = [draw(_blanks), "startswith(", draw(_blanks), name, draw(_blanks), ",",
                 draw(_blanks), literal, draw(_blanks), ")", draw(_blanks)]  # fmt: skip
        return "".join(parts)
    parts = [draw(_blanks), draw(_names), draw(_blanks) or " ", draw(_operators),
             draw(_blanks) or " ", draw(_literals), draw(_blanks)]  # fmt: skip
    return "".join(parts)


def _parsed(text: str) -> object:
    """What the general parser makes of ``text`` (its AST or the error class)."""
    filter_syntax.check_text(text)  # the parser's own steps, without the shortcut
    tokens = filter_syntax._normalise(text, filter_syntax._tokenize(text))  # noqa: SLF001
    return filter_syntax.ODataParser().parse(iter(tokens))


@settings(max_examples=600, deadline=None, derandomize=True)
@given(_texts())
def test_the_shortcut_agrees_with_the_parser(text: str) -> None:
    shortcut = simple_tree(text)
    if shortcut is None:
        return  # the parser decides alone
    assert shortcut == _parsed(text), text


def test_common_forms_take_the_shortcut() -> None:
    for text in ("startswith(ItemNo,'1012')", "CRM_ID eq 0f8fad5b-d9cb-469f-a165-70867728950e",
                 "ProjectedAvailable lt 10", "ItemNo eq 'it''s'", "Blocked eq false"):  # fmt: skip
        assert simple_tree(text) == _parsed(text), text
    for text in (" ItemNo eq 'a'", "ItemNo eq 'a' ", "ItemNo eq 1e5", "null eq 1"):
        assert simple_tree(text) is None, text


def test_refusals_are_unchanged() -> None:
    for text in (" ItemNo eq 'a'", "startswith(ItemNo,'x') "):
        try:
            filter_syntax.parse_filter(text)
        except InvalidInputError as exc:
            assert exc.status_code == 400
        else:
            raise AssertionError(text)


ITEMS = "/odata/v4/ItemAvailability"
PIA = "/odata/v4/ProductItemAvailability"


@pytest.mark.usefixtures("catalogue")
async def test_templates_give_each_literal_its_own_answer(
    client: httpx.AsyncClient, reader: dict[str, str]
) -> None:
    """Texts of one form share a translation; each still gets the rows of its own literal,
    including the literals that change the clause (empty prefix, no upper bound)."""
    numbers = ["1000", "1001", "1002", "1003", "1004", "A%_1"]
    for prefix in ["100", "1000", "A", "A%", "", "1", "10041", "\U0010ffff", "B", "it''s"]:
        expected = [n for n in numbers if n.startswith(prefix.replace("''", "'"))]
        response = await client.get(
            ITEMS, params={"$filter": f"startswith(ItemNo,'{prefix}')", "$select": "ItemNo"},
            headers=reader,
        )  # fmt: skip
        assert response.status_code == 200, (prefix, response.text)
        assert [r["ItemNo"] for r in response.json()["value"]] == expected, prefix
    for crm_id, expected in ((CRM_1000, ["1000"]), (uuid.uuid4(), []), (CRM_1000, ["1000"])):
        response = await client.get(PIA, params={"$filter": f"CRM_ID eq {crm_id}"}, headers=reader)
        assert [r["ItemNo"] for r in response.json()["value"]] == expected
    quoted = await client.get(PIA, params={"$filter": f"CRM_ID eq '{CRM_1000}'"}, headers=reader)
    assert [r["ItemNo"] for r in quoted.json()["value"]] == ["1000"]
    for bad in ("CRM_ID eq 'not-a-guid'", "startswith(ItemNo,'\x00')", "ItemNo eq '\x00'"):
        response = await client.get(PIA, params={"$filter": bad}, headers=reader)
        assert response.status_code == 400, (bad, response.text)
    words_and_numbers = [("Blocked eq true", []), ("Blocked eq null", []),
                         ("Inventory eq 30", ["1003"]), ("Inventory eq 100", ["1001"])]  # fmt: skip
    for text, expected in words_and_numbers:
        response = await client.get(ITEMS, params={"$filter": text}, headers=reader)
        assert [r["ItemNo"] for r in response.json()["value"]] == expected, text
