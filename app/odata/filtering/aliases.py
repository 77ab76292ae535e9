"""Parameter aliases in ``$filter`` (``ItemNo eq @p&@p='1000'``), resolved before parsing.

An alias is replaced by its value in parentheses (so ``@p`` = ``Inventory add 1`` keeps
its precedence); an alias the query does not define is ``null``, as OData specifies.
Aliases inside string literals are left alone; values are not searched for further
aliases (nested aliases are optional in OData and not supported here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_ALIAS = re.compile(r"@([A-Za-z_][A-Za-z0-9_]{0,127})")


def substitute_aliases(filter_text: str, aliases: Mapping[str, str]) -> str:
    """``filter_text`` with every ``@name`` outside string literals replaced by its value."""
    if "@" not in filter_text:
        return filter_text
    out: list[str] = []
    position = 0
    length = len(filter_text)
    while position < length:
        char = filter_text[position]
        if char == "'":
            end = _string_end(filter_text, position)
            out.append(filter_text[position:end])
            position = end
            continue
        match = _ALIAS.match(filter_text, position) if char == "@" else None
        if match is None:
            out.append(char)
            position += 1
            continue
        out.append(_wrapped(aliases.get(match.group(1))))
        position = match.end()
    return "".join(out)


def _string_end(text: str, start: int) -> int:
    """Index just past the string literal opening at ``start`` (``''`` is an escaped quote)."""
    position = start + 1
    while position < len(text):
        if text[position] == "'":
            if position + 1 < len(text) and text[position + 1] == "'":
                position += 2
                continue
            return position + 1
        position += 1
    return len(text)


def _wrapped(value: str | None) -> str:
    if value is None or not value.strip():
        return "null"
    value = value.strip()
    if value.startswith("(") and value.endswith(")"):
        return value
    return f"({value})"
