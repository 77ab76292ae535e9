"""The commonest ``$filter`` forms, read without the general parser.

``Property op literal`` and ``startswith(Property,'text')`` are most of what clients send
(a CRM asks ``CRM_ID eq <guid>`` per product), and nearly every such text is new to the
filter cache; odata-query's parser takes about as long as the rest of the request. These
forms are matched by one regular expression each and turned into the very AST the parser
would build (``simple_tree``); ``common_form`` also says which form it is, for
``app.odata.filter_cache``. Anything else (other spellings, operators or literals) is None
and goes to the parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from odata_query import ast

_NAME = r"([A-Za-z_][A-Za-z0-9_]*)"
_STRING = r"'((?:[^']|'')*)'"
_LITERAL = (
    r"(?:'(?P<string>(?:[^']|'')*)'"
    r"|(?P<guid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})"
    r"|(?P<float>-?[0-9]+\.[0-9]+)|(?P<integer>-?[0-9]+)|(?P<word>null|true|false))"
)
# Blanks only between tokens, spaces and tabs: what the parser accepts (it refuses a leading
# or trailing one); other whitespace goes to the parser.
_COMPARISON = re.compile(rf"{_NAME}[ \t]+(eq|ne|lt|le|gt|ge)[ \t]+{_LITERAL}")
_STARTSWITH = re.compile(rf"startswith\([ \t]*{_NAME}[ \t]*,[ \t]*{_STRING}[ \t]*\)")
_KEYWORDS = frozenset({"null", "true", "false", "not", "and", "or"})
_OPERATORS: dict[str, type[ast._Comparator]] = {
    "eq": ast.Eq, "ne": ast.NotEq, "lt": ast.Lt, "le": ast.LtE, "gt": ast.Gt, "ge": ast.GtE,
}  # fmt: skip


@dataclass(frozen=True)
class CommonForm:
    operator: str  # startswith, eq, ne, lt, le, gt, ge
    name: str
    kind: str  # string, guid, float, integer, word
    literal: str  # unescaped for strings

    def tree(self) -> ast._Node:
        if self.operator == "startswith":
            return ast.Call(
                ast.Identifier("startswith"), [ast.Identifier(self.name), ast.String(self.literal)]
            )
        right = _LITERAL_NODES[self.kind](self.literal)
        return ast.Compare(_OPERATORS[self.operator](), ast.Identifier(self.name), right)


def _word(text: str) -> ast._Node:
    return ast.Null() if text == "null" else ast.Boolean(text)


_LITERAL_NODES = {
    "string": ast.String, "guid": ast.GUID, "float": ast.Float, "integer": ast.Integer,
    "word": _word,
}  # fmt: skip


def common_form(text: str) -> CommonForm | None:
    found = _STARTSWITH.fullmatch(text)
    if found is not None:
        name, needle = found.group(1), found.group(2).replace("''", "'")
        return None if name in _KEYWORDS else CommonForm("startswith", name, "string", needle)
    found = _COMPARISON.fullmatch(text)
    if found is None or found.group(1) in _KEYWORDS:
        return None
    kind = next(k for k in _LITERAL_NODES if found.group(k) is not None)
    literal = found.group(kind)
    if kind == "string":
        literal = literal.replace("''", "'")
    return CommonForm(found.group(2), found.group(1), kind, literal)


def simple_tree(text: str) -> ast._Node | None:
    """The AST of ``text`` if it is one of the common forms, else None."""
    form = common_form(text)
    return None if form is None else form.tree()
