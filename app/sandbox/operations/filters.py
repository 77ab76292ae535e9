"""OData ``$filter`` -> SQL over the JSON documents, the subset Dataverse clients use.

Supported: ``eq ne gt ge lt le``, ``and or not``, parentheses, ``contains/startswith/
endswith``, ``Microsoft.Dynamics.CRM.In``; literals: strings (``''`` escape), numbers,
``true/false/null``, GUIDs and datetimes unquoted; a column on the right-hand side
(``firstname eq lastname``); parameter aliases (``@p1``, their values given as query
parameters, Microsoft's documented way to pass values with apostrophes); one-level lookup
paths over single-valued navigation properties (``primarycontactid/fullname eq 'x'``).
String comparison is case-insensitive, as in Dataverse. Lambda operators and the other
Dataverse query functions are refused clearly (501); a name that is no function at all is
refused as Dataverse's OData parser does (400).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.sandbox.errors import SandboxError, bad_syntax, unknown_property
from app.sandbox.store import column

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TOKEN = re.compile(
    r"""\s*(?:
    (?P<string>'(?:[^']|'')*')
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?![\w-])
  | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)[mMdDfFlL]?
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<alias>@[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[(),=\[\]/:])
  | (?P<dquote>"(?:[^"\\]|\\.)*")
    )""",
    re.VERBOSE,
)
_COMPARE = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_TEXT_FUNCS = {"contains": "%{}%", "startswith": "{}%", "endswith": "%{}"}
_DATAVERSE_PREFIX = "Microsoft.Dynamics.CRM."
# Dataverse's query functions (Web API "Query Functions" reference) the sandbox lacks: a
# client using one gets a clear 501, not the 400 of a function that does not exist.
_DATAVERSE_FUNCTIONS = frozenset(
    """Above AboveOrEqual Between Contains ContainValues DoesNotContainValues EqualBusinessId
    EqualUserId EqualUserLanguage EqualUserOrUserHierarchy EqualUserOrUserHierarchyAndTeams
    EqualUserOrUserTeams EqualUserTeams InFiscalPeriod InFiscalPeriodAndYear InFiscalYear
    InOrAfterFiscalPeriodAndYear InOrBeforeFiscalPeriodAndYear Last7Days LastFiscalPeriod
    LastFiscalYear LastMonth LastWeek LastXDays LastXFiscalPeriods LastXFiscalYears
    LastXHours LastXMonths LastXWeeks LastXYears LastYear Next7Days NextFiscalPeriod
    NextFiscalYear NextMonth NextWeek NextXDays NextXFiscalPeriods NextXFiscalYears
    NextXHours NextXMonths NextXWeeks NextXYears NextYear NotBetween NotEqualBusinessId
    NotEqualUserId NotIn NotUnder OlderThanXDays OlderThanXHours OlderThanXMinutes
    OlderThanXMonths OlderThanXWeeks OlderThanXYears On OnOrAfter OnOrBefore ThisFiscalPeriod
    ThisFiscalYear ThisMonth ThisWeek ThisYear Today Tomorrow Under UnderOrEqual
    Yesterday""".split()
)


@dataclass(frozen=True)
class PathTarget:
    """Where a lookup path leads: the target's table, key and declared attributes."""

    table: str
    pk: str
    known: frozenset[str]
    source_column: str  # "_<lookup>_value" on the filtered table
    source_table: str


Navigate = Callable[[str], PathTarget | None]


@dataclass
class Token:
    kind: str
    text: str


@dataclass
class Literal:
    value: Any
    is_text: bool  # compare case-insensitively


def normalize_datetime(text: str) -> str:
    """ISO text -> ``YYYY-MM-DDTHH:MM:SSZ`` in UTC (date-only values stay as they are)."""
    if "T" not in text:
        return text
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            msg = f"Syntax error at position {position} in '{text}'."
            raise bad_syntax(msg)
        kind = match.lastgroup or ""
        tokens.append(Token(kind, match.group(kind)))
        position = match.end()
    return tokens


def attribute_sql(name: str, pk: str) -> str:
    if name == pk:
        return "id"
    if name == "versionnumber":
        return "version"
    return column(name)


class FilterCompiler:
    def __init__(
        self,
        text: str,
        *,
        pk: str,
        logical: str,
        known: frozenset[str] | None = None,
        aliases: dict[str, str] | None = None,
        navigate: Navigate | None = None,
    ) -> None:
        self.tokens = _substitute(tokenize(text), aliases or {})
        self.position = 0
        self.pk = pk
        self.logical = logical
        self.known = known  # declared attributes; None = any name
        self.navigate = navigate
        self.params: list[Any] = []

    def compile(self) -> tuple[str, list[Any]]:
        sql = self._or()
        if self.position != len(self.tokens):
            msg = f"Unexpected '{self.tokens[self.position].text}'."
            raise bad_syntax(msg)
        return sql, self.params

    # --- grammar --------------------------------------------------------------------------
    def _peek(self, ahead: int = 0) -> Token | None:
        index = self.position + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def _take(self, text: str | None = None) -> Token:
        token = self._peek()
        if token is None or (text is not None and token.text != text):
            msg = f"Expected '{text or 'an operand'}' in $filter."
            raise bad_syntax(msg)
        self.position += 1
        return token

    def _is_word(self, word: str) -> bool:
        token = self._peek()
        return token is not None and token.kind == "name" and token.text == word

    def _or(self) -> str:
        parts = [self._and()]
        while self._is_word("or"):
            self._take()
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def _and(self) -> str:
        parts = [self._not()]
        while self._is_word("and"):
            self._take()
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def _not(self) -> str:
        if self._is_word("not"):
            self._take()
            return f"(NOT {self._not()})"
        return self._primary()

    def _primary(self) -> str:
        token = self._peek()
        if token is not None and token.text == "(":
            self._take("(")
            inner = self._or()
            self._take(")")
            return inner
        following = self._peek(1)
        if token is not None and token.kind == "name" and following and following.text == "(":
            return self._function(token.text)
        return self._comparison()

    def _function(self, name: str) -> str:
        if name in _TEXT_FUNCS:
            return self._text_function()
        if name == _DATAVERSE_PREFIX + "In":
            return self._in_function()
        if name.startswith(_DATAVERSE_PREFIX) and name[len(_DATAVERSE_PREFIX) :] in (
            _DATAVERSE_FUNCTIONS
        ):
            raise SandboxError(501, "0x80040800", f"The sandbox does not support {name}.")
        raise SandboxError(
            400,
            "0x0",
            f"An unknown function with name '{name}' was found. This may also be a function "
            f"import or a key lookup on a navigation property, which is not allowed.",
        )

    def _attribute(self) -> str:
        """A property (or ``lookup/property``) as SQL over the filtered table."""
        token = self._take()
        if token.kind != "name" or not IDENTIFIER.match(token.text):
            msg = f"'{token.text}' is not a property name."
            raise bad_syntax(msg)
        following = self._peek()
        if following is not None and following.text == "/":
            return self._path(token.text)
        return attribute_sql(self._declared(token.text), self.pk)

    def _path(self, navigation: str) -> str:
        self._take("/")
        target = self.navigate(navigation) if self.navigate else None
        name = self._take()
        after = self._peek()
        if target is None or name.text in ("any", "all") or (after and after.text == "/"):
            raise SandboxError(
                501, "0x80040800", "The sandbox supports lookup paths over one single-valued "
                f"navigation property only, not '{navigation}/{name.text}'."
            )  # fmt: skip
        if name.text not in target.known:
            raise unknown_property(name.text, self.logical)
        value = "id" if name.text == target.pk else f"json_extract(x.doc, '$.{name.text}')"
        outer = f"json_extract({target.source_table}.doc, '$.{target.source_column}')"
        return f"(SELECT {value} FROM {target.table} AS x WHERE x.id = {outer})"  # noqa: S608

    def _declared(self, name: str) -> str:
        if self.known is not None and name not in self.known:
            raise unknown_property(name, self.logical)
        return name

    def _literal(self) -> Literal:
        token = self._take()
        if token.kind == "string":
            return Literal(token.text[1:-1].replace("''", "'"), is_text=True)
        if token.kind == "guid":
            return Literal(token.text.lower(), is_text=False)
        if token.kind == "datetime":
            return Literal(normalize_datetime(token.text), is_text=False)
        if token.kind == "number":
            number = float(token.text)
            whole = number.is_integer() and "." not in token.text
            return Literal(int(number) if whole else number, is_text=False)
        if token.kind == "name" and token.text in ("true", "false", "null"):
            return Literal({"true": 1, "false": 0, "null": None}[token.text], is_text=False)
        msg = f"'{token.text}' is not a literal."
        raise bad_syntax(msg)

    def _is_column_next(self) -> bool:
        token = self._peek()
        return (
            token is not None
            and token.kind == "name"
            and token.text not in ("true", "false", "null")
        )

    def _comparison(self) -> str:
        sql = self._attribute()
        operator = self._take()
        if operator.text not in _COMPARE:
            msg = f"Unknown operator '{operator.text}' in $filter."
            raise bad_syntax(msg)
        if self._is_column_next():  # column comparison: firstname eq lastname
            return f"{sql} {_COMPARE[operator.text]} {self._attribute()} COLLATE NOCASE"
        literal = self._literal()
        if literal.value is None:
            if operator.text not in ("eq", "ne"):
                msg = "null can only be compared with eq or ne."
                raise bad_syntax(msg)
            return f"{sql} IS {'NOT ' if operator.text == 'ne' else ''}NULL"
        self.params.append(literal.value)
        collate = " COLLATE NOCASE" if literal.is_text and sql != "id" else ""
        return f"{sql} {_COMPARE[operator.text]} ?{collate}"

    def _text_function(self) -> str:
        function = self._take().text
        self._take("(")
        sql = self._attribute()
        self._take(",")
        literal = self._literal()
        self._take(")")
        if not literal.is_text:
            msg = f"{function} needs a string literal."
            raise bad_syntax(msg)
        escaped = str(literal.value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        self.params.append(_TEXT_FUNCS[function].format(escaped))
        return f"{sql} LIKE ? ESCAPE '\\'"

    def _in_function(self) -> str:
        self._take()
        self._take("(")
        self._take("PropertyName")
        self._take("=")
        name = self._literal()
        self._take(",")
        self._take("PropertyValues")
        self._take("=")
        self._take("[")
        values: list[Any] = []
        while True:
            token = self._take()
            if token.text != ",":
                values.append(_in_value(token))
            if self._peek() is not None and self._peek().text == "]":  # type: ignore[union-attr]
                break
        self._take("]")
        self._take(")")
        if not IDENTIFIER.match(str(name.value)):
            msg = f"'{name.value}' is not a property name."
            raise bad_syntax(msg)
        sql = attribute_sql(self._declared(str(name.value)), self.pk)
        self.params.extend(values)
        marks = ", ".join("?" for _ in values)
        return f"{sql} COLLATE NOCASE IN ({marks})"


def _substitute(tokens: list[Token], aliases: dict[str, str]) -> list[Token]:
    """Replace each ``@alias`` by the tokens of its value (given as a query parameter)."""
    if not any(token.kind == "alias" for token in tokens):
        return tokens
    result: list[Token] = []
    for token in tokens:
        if token.kind != "alias":
            result.append(token)
            continue
        value = aliases.get(token.text)
        if value is None:
            msg = f"The parameter alias '{token.text}' has no value in the request."
            raise bad_syntax(msg)
        replacement = tokenize(value)
        if any(inner.kind == "alias" for inner in replacement):
            msg = f"The value of '{token.text}' refers to another alias."
            raise bad_syntax(msg)
        result.extend(replacement)
    return result


def _in_value(token: Token) -> Any:
    text = token.text[1:-1] if token.kind in ("dquote", "string") else token.text
    if token.kind == "string":
        text = text.replace("''", "'")
    if GUID.match(text):
        return text.lower()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def compile_filter(
    text: str,
    *,
    pk: str,
    logical: str,
    known: frozenset[str] | None = None,
    aliases: dict[str, str] | None = None,
    navigate: Navigate | None = None,
) -> tuple[str, list[Any]]:
    """SQL and parameters for a ``$filter``; names outside ``known`` answer 400 as in
    Dataverse ("Could not find a property named ...")."""
    compiler = FilterCompiler(
        text, pk=pk, logical=logical, known=known, aliases=aliases, navigate=navigate
    )
    return compiler.compile()
