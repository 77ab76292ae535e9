"""An OData V3 ``$filter`` -> the same condition in V4 syntax, which ``app.odata.filters``
compiles (one allow-list, one set of type rules, one SQL translation for both versions).

What differs in V3 is spelling, rewritten token by token: typed literals
(``guid'…'``, ``datetime'…'``, ``datetimeoffset'…'``), number suffixes (``1.5M``,
``10L``, ``2.5d``, ``1f``), and ``substringof(needle, haystack)`` for V4's
``contains(haystack, needle)``. A ``datetime`` literal has no offset in V3; it is read as
UTC. What V3 does not have is refused with 400 (V4-only functions, ``in``, ``has``,
parameter aliases); what V3 has and this service does not (``time``/``binary`` literals,
``replace``, ``isof``, ``cast``) is 501.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

from app.odata.errors import ODataFilterError, ODataFilterUnsupportedError
from app.odata.filtering.syntax import MAX_FILTER_LENGTH

_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<typed>(?:guid|datetimeoffset|datetime|time|binary|X)'(?:[^']|'')*')
    |(?P<string>'(?:[^']|'')*')
    |(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMlLdDfF]?(?![A-Za-z0-9_]))
    |(?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    |(?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)
V3_FUNCTIONS = frozenset(
    "substringof endswith startswith length indexof substring tolower toupper trim concat "
    "day hour minute month second year round floor ceiling".split()
)
_UNSUPPORTED_FUNCTIONS = frozenset({"replace", "isof", "cast"})
_NOT_V3_OPERATORS = frozenset({"in", "has"})
_NUMBER_SUFFIXES = "mMlLdDfF"

Token = tuple[str, str]  # (kind, text)


def v4_filter(text: str) -> str:
    """The V4 spelling of V3 ``$filter`` ``text``; ODataFilterError for what is not V3."""
    if len(text) > MAX_FILTER_LENGTH:
        msg = f"The $filter expression is longer than {MAX_FILTER_LENGTH} characters."
        raise ODataFilterError(msg)
    tokens = [(match.lastgroup or "other", match.group()) for match in _TOKEN.finditer(text)]
    return "".join(_translate(tokens))


def _translate(tokens: list[Token]) -> list[str]:
    out: list[str] = []
    position = 0
    while position < len(tokens):
        kind, text = tokens[position]
        if kind == "name" and _is_call(tokens, position):
            position = _call(tokens, position, out)
            continue
        out.append(_token(kind, text))
        position += 1
    return out


def _token(kind: str, text: str) -> str:
    if kind == "typed":
        return _typed_literal(text)
    if kind == "number":
        return text.rstrip(_NUMBER_SUFFIXES) if text[-1] in _NUMBER_SUFFIXES else text
    if kind == "name" and text in _NOT_V3_OPERATORS:
        msg = f"'{text}' is not an operator of OData V3 $filter."
        raise ODataFilterError(msg)
    if kind == "other" and text == "@":
        msg = "Parameter aliases (@name) are not part of OData V3."
        raise ODataFilterError(msg)
    return text


def _typed_literal(text: str) -> str:
    prefix, _, quoted = text.partition("'")
    value = quoted[:-1].replace("''", "'")
    if prefix == "guid":
        try:
            return str(uuid.UUID(value))
        except ValueError as exc:
            msg = f"'{value[:40]}' is not a valid GUID."
            raise ODataFilterError(msg) from exc
    if prefix in ("datetime", "datetimeoffset"):
        return _timestamp(prefix, value)
    msg = f"{prefix} literals are not supported by this service."
    raise ODataFilterUnsupportedError(msg)


def _timestamp(prefix: str, value: str) -> str:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        msg = f"'{value[:40]}' is not a valid {prefix} value."
        raise ODataFilterError(msg) from exc
    if prefix == "datetimeoffset" and parsed.tzinfo is None:
        msg = f"The datetimeoffset '{value[:40]}' has no offset (Z or +hh:mm)."
        raise ODataFilterError(msg)
    if parsed.tzinfo is None:  # V3 Edm.DateTime carries no offset: UTC, as stored
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.isoformat().replace("+00:00", "Z")


def _is_call(tokens: list[Token], position: int) -> bool:
    """A name followed by ``(`` that is not a lambda (``Tags/any(...)``)."""
    after = _skip_space(tokens, position + 1)
    if after >= len(tokens) or tokens[after][1] != "(":
        return False
    before = position - 1
    while before >= 0 and tokens[before][0] == "space":
        before -= 1
    return not (before >= 0 and tokens[before][1] == "/")


def _skip_space(tokens: list[Token], position: int) -> int:
    while position < len(tokens) and tokens[position][0] == "space":
        position += 1
    return position


def _call(tokens: list[Token], position: int, out: list[str]) -> int:
    name = tokens[position][1]
    if name in _UNSUPPORTED_FUNCTIONS:
        msg = f"The function '{name}' is not supported in $filter."
        raise ODataFilterUnsupportedError(msg)
    if name not in V3_FUNCTIONS:
        msg = f"'{name}' is not a function of OData V3 $filter."
        raise ODataFilterError(msg)
    opening = _skip_space(tokens, position + 1)
    arguments, closing = _arguments(tokens, opening)
    translated = ["".join(_translate(argument)) for argument in arguments]
    if name == "substringof":
        if len(translated) != 2:
            msg = "substringof() takes two arguments: substringof('text', Property)."
            raise ODataFilterError(msg)
        out.append(f"contains({translated[1]},{translated[0]})")
    else:
        out.append(f"{name}({','.join(translated)})")
    return closing + 1


def _arguments(tokens: list[Token], opening: int) -> tuple[list[list[Token]], int]:
    """The comma-separated arguments after ``tokens[opening]`` (``(``), and where ``)`` is."""
    arguments: list[list[Token]] = [[]]
    depth = 0
    for index in range(opening + 1, len(tokens)):
        text = tokens[index][1]
        if text == "(":
            depth += 1
        elif text == ")":
            if depth == 0:
                return ([] if arguments == [[]] else arguments), index
            depth -= 1
        elif text == "," and depth == 0:
            arguments.append([])
            continue
        arguments[-1].append(tokens[index])
    msg = "A function call in $filter is missing its closing parenthesis."
    raise ODataFilterError(msg)
