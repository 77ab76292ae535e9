"""``$filter`` over metadata (``EntityDefinitions``, their attributes, keys and
relationships), evaluated in memory: these collections are small and fixed.

Supported: ``eq ne gt ge lt le``, ``and or not``, parentheses, paths into complex values
(``AttributeTypeName/Value eq 'StringType'``) and enum literals
(``AttributeType eq Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist'``). Query functions
are refused (501); an unknown property answers 400 as Dataverse's OData parser does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.sandbox.errors import SandboxError, bad_syntax, unsupported
from app.sandbox.operations.filters import Token, tokenize

Predicate = Callable[[dict[str, Any]], bool]
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and b is not None and a > b,
    "ge": lambda a, b: a is not None and b is not None and a >= b,
    "lt": lambda a, b: a is not None and b is not None and a < b,
    "le": lambda a, b: a is not None and b is not None and a <= b,
}


def unknown_metadata_property(name: str, type_name: str) -> SandboxError:
    return SandboxError(
        400,
        "0x0",
        f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{type_name}'.",
    )


class MetadataFilter:
    def __init__(self, text: str, *, known: frozenset[str], type_name: str) -> None:
        self.tokens = tokenize(text)
        self.position = 0
        self.known = known
        self.type_name = type_name

    def compile(self) -> Predicate:
        predicate = self._or()
        if self.position != len(self.tokens):
            msg = f"Unexpected '{self.tokens[self.position].text}'."
            raise bad_syntax(msg)
        return predicate

    def _peek(self) -> Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self, text: str | None = None) -> Token:
        token = self._peek()
        if token is None or (text is not None and token.text != text):
            msg = f"Expected '{text or 'an operand'}' in $filter."
            raise bad_syntax(msg)
        self.position += 1
        return token

    def _word(self, word: str) -> bool:
        token = self._peek()
        return token is not None and token.kind == "name" and token.text == word

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._word("or"):
            self._take()
            parts.append(self._and())
        return lambda row: any(part(row) for part in parts)

    def _and(self) -> Predicate:
        parts = [self._not()]
        while self._word("and"):
            self._take()
            parts.append(self._not())
        return lambda row: all(part(row) for part in parts)

    def _not(self) -> Predicate:
        if self._word("not"):
            self._take()
            inner = self._not()
            return lambda row: not inner(row)
        token = self._peek()
        if token is not None and token.text == "(":
            self._take("(")
            inner = self._or()
            self._take(")")
            return inner
        return self._comparison()

    def _path(self) -> list[str]:
        first = self._take()
        if first.kind != "name":
            msg = f"'{first.text}' is not a property name."
            raise bad_syntax(msg)
        following = self._peek()
        if following is not None and following.text == "(":
            msg = f"The sandbox does not support {first.text}() in metadata queries."
            raise unsupported(msg)
        if first.text not in self.known:
            raise unknown_metadata_property(first.text, self.type_name)
        path = [first.text]
        while (following := self._peek()) is not None and following.text == "/":
            self._take("/")
            path.append(self._take().text)
        return path

    def _literal(self) -> Any:
        token = self._take()
        if token.kind == "string":
            return token.text[1:-1].replace("''", "'")
        if token.kind == "guid":
            return token.text.lower()
        if token.kind == "number":
            number = float(token.text)
            return int(number) if number.is_integer() and "." not in token.text else number
        if token.kind == "name" and token.text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[token.text]
        enum_value = self._peek()
        if token.kind == "name" and enum_value is not None and enum_value.kind == "string":
            self._take()  # Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist'
            return enum_value.text[1:-1]
        msg = f"'{token.text}' is not a literal."
        raise bad_syntax(msg)

    def _comparison(self) -> Predicate:
        path = self._path()
        operator = self._take().text
        if operator not in _COMPARE:
            msg = f"Unknown operator '{operator}' in $filter."
            raise bad_syntax(msg)
        wanted = self._literal()
        compare = _COMPARE[operator]

        def predicate(row: dict[str, Any]) -> bool:
            value: Any = row
            for name in path:
                value = value.get(name) if isinstance(value, dict) else None
            if _is_guid_text(value):
                value = value.lower()
            return compare(value, wanted)

        return predicate


def _is_guid_text(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 36 and value.count("-") == 4


def compile_metadata_filter(text: str, *, known: frozenset[str], type_name: str) -> Predicate:
    return MetadataFilter(text, known=known, type_name=type_name).compile()
