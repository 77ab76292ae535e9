"""What the nudge listener accepts as a message; anything else is logged and ignored."""

from __future__ import annotations

import pytest

from workers.nudge_listener import MAX_NAMES, parse


def test_a_nudge_names_erp_tables_and_crm_entities() -> None:
    body = b'{"erp_tables": ["item", "customer"], "crm_entities": ["account"]}'
    assert parse(body) == (["item", "customer"], ["account"])
    assert parse('{"crm_entities": ["contact"]}') == ([], ["contact"])
    assert parse(b"{}") == ([], [])


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'"item"',
        b'{"erp_tables": "item"}',
        b'{"erp_tables": [7]}',
        b'{"crm_entities": [""]}',
        b'{"crm_entities": ["' + b"x" * 101 + b'"]}',
        b'{"erp_tables": ' + str(["t"] * (MAX_NAMES + 1)).replace("'", '"').encode() + b"}",
        None,
    ],
)
def test_anything_else_is_not_a_nudge(data: bytes | None) -> None:
    assert parse(data) is None
