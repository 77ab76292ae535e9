"""``$filter`` text -> odata-query AST, with the OData 4.01 rules the library misses.

odata-query's lexer is case-insensitive for operators but its parser looks function names
up case-sensitively, wants ``('x',)`` for a one-item ``in`` list, lexes ``not(`` as a
function call and splits identifiers that start with a keyword (``nullable`` ->
``null`` + ``able``). We fix all four on the token stream, so the library's grammar stays
untouched. Caps on length, nesting and size come first, so hostile input costs little.
"""

from __future__ import annotations

from typing import Any

from odata_query import ast
from odata_query import exceptions as odata_exceptions
from odata_query.grammar import ODATA_FUNCTIONS, ODataLexer, ODataParser
from sly.lex import Token  # type: ignore[import-untyped]

from app.odata.errors import ODataFilterError, ODataFilterUnsupportedError
from app.odata.filtering.shortcuts import simple_tree

MAX_FILTER_LENGTH = 4096
MAX_PAREN_DEPTH = 32
MAX_NODES = 1000

_CANONICAL_FUNCTIONS = {name.lower(): name for name in ODATA_FUNCTIONS}
_KEYWORD_TOKENS = {"ANY", "ALL", "NULL", "BOOLEAN", "NOT"}


def parse_filter(filter_text: str) -> ast._Node:
    """The AST of a ``$filter``; raises ``ODataFilterError`` for anything unusable."""
    check_text(filter_text)
    common = simple_tree(filter_text)
    if common is not None:
        return common
    tokens = _normalise(filter_text, _tokenize(filter_text))
    _check_depth(tokens)
    try:
        tree: ast._Node | None = ODataParser().parse(iter(tokens))
    except odata_exceptions.UnknownFunctionException as exc:
        msg = f"The function '{exc.function_name}' is not supported in $filter."
        raise ODataFilterUnsupportedError(msg) from exc
    except odata_exceptions.ArgumentCountException as exc:
        msg_0 = f"Invalid $filter: {exc}"
        raise ODataFilterError(msg_0) from exc
    except odata_exceptions.ParsingException as exc:
        raise ODataFilterError(_parse_error_message(filter_text, exc)) from exc
    except (odata_exceptions.ODataException, ValueError, TypeError, IndexError) as exc:
        msg_0 = f"Invalid $filter: {exc}"
        raise ODataFilterError(msg_0) from exc
    if tree is None:
        msg_0 = "The $filter expression is empty."
        raise ODataFilterError(msg_0)
    _check_size(tree)
    return tree


def check_text(filter_text: str) -> None:
    if not filter_text.strip():
        msg = "The $filter expression is empty."
        raise ODataFilterError(msg)
    if len(filter_text) > MAX_FILTER_LENGTH:
        msg = f"The $filter expression is longer than {MAX_FILTER_LENGTH} characters."
        raise ODataFilterError(msg)
    if "\x00" in filter_text:
        msg_0 = "The $filter expression contains a NUL character."
        raise ODataFilterError(msg_0)
    try:
        filter_text.encode("utf-8")
    except UnicodeEncodeError as exc:
        msg_0 = "The $filter expression is not valid Unicode text."
        raise ODataFilterError(msg_0) from exc


def _tokenize(filter_text: str) -> list[Token]:
    try:
        return list(ODataLexer().tokenize(filter_text))
    except odata_exceptions.TokenizingException as exc:
        position = getattr(exc.token, "index", 0)
        snippet = filter_text[position : position + 20]
        msg = f"Invalid $filter: unexpected text at position {position}: {snippet!r}."
        raise ODataFilterError(msg) from exc


def identifier_name(identifier: ast.Identifier) -> str:
    """``ns.name`` of an identifier (the library's ``full_name`` is untyped)."""
    return ".".join((*identifier.namespace, identifier.name))


def _make_token(kind: str, value: Any, index: int) -> Token:
    token = Token()
    token.type = kind
    token.value = value
    token.lineno = 1
    token.index = index
    return token


def _normalise(text: str, tokens: list[Token]) -> list[Token]:
    tokens = _merge_split_identifiers(text, tokens)
    out: list[Token] = []
    for position, token in enumerate(tokens):
        following = tokens[position + 1] if position + 1 < len(tokens) else None
        is_call = following is not None and following.type == "("
        if token.type == "ODATA_IDENTIFIER" and is_call:
            token = _canonical_call_name(token)
        out.append(token)
    return _pad_single_item_lists(out)


def _merge_split_identifiers(text: str, tokens: list[Token]) -> list[Token]:
    """``nullable`` lexes as NULL + IDENT(able); glue a keyword to an identifier it touches."""
    out: list[Token] = []
    position = 0
    while position < len(tokens):
        token = tokens[position]
        following = tokens[position + 1] if position + 1 < len(tokens) else None
        if (
            token.type in _KEYWORD_TOKENS
            and following is not None
            and following.type == "ODATA_IDENTIFIER"
            and not text[token.index : following.index].endswith((" ", "\t"))
        ):
            name = text[token.index : following.index] + identifier_name(following.value)
            *namespace, last = name.split(".")
            identifier = ast.Identifier(last, tuple(namespace))
            out.append(_make_token("ODATA_IDENTIFIER", identifier, token.index))
            position += 2
            continue
        out.append(token)
        position += 1
    return out


def _canonical_call_name(token: Token) -> Token:
    identifier: ast.Identifier = token.value
    full = identifier_name(identifier)
    if full.lower() == "not":  # `not(x)`: the lexer wants whitespace after `not`
        return _make_token("NOT", ast.Not(), token.index)
    canonical = _CANONICAL_FUNCTIONS.get(full.lower())
    if canonical is None or canonical == full:
        return token
    *namespace, name = canonical.split(".")
    return _make_token("ODATA_IDENTIFIER", ast.Identifier(name, tuple(namespace)), token.index)


def _pad_single_item_lists(tokens: list[Token]) -> list[Token]:
    """OData's ``in ('x')`` is a one-item list; the library only knows ``('x',)``."""
    out = list(tokens)
    position = 0
    while position < len(out):
        if out[position].type == "IN":
            opening = _next_significant(out, position + 1)
            if opening is not None and out[opening].type == "(":
                closing = _matching_close(out, opening)
                if closing is not None and not _has_top_level_comma(out, opening, closing):
                    out.insert(closing, _make_token(",", ",", out[closing].index))
        position += 1
    return out


def _next_significant(tokens: list[Token], start: int) -> int | None:
    for position in range(start, len(tokens)):
        if tokens[position].type != "WS":
            return position
    return None


def _matching_close(tokens: list[Token], opening: int) -> int | None:
    depth = 0
    for position in range(opening, len(tokens)):
        if tokens[position].type == "(":
            depth += 1
        elif tokens[position].type == ")":
            depth -= 1
            if depth == 0:
                return position
    return None


def _has_top_level_comma(tokens: list[Token], opening: int, closing: int) -> bool:
    depth = 0
    for token in tokens[opening + 1 : closing]:
        if token.type == "(":
            depth += 1
        elif token.type == ")":
            depth -= 1
        elif token.type == "," and depth == 0:
            return True
    return False


def _check_depth(tokens: list[Token]) -> None:
    depth = 0
    for token in tokens:
        if token.type == "(":
            depth += 1
            if depth > MAX_PAREN_DEPTH:
                msg = f"The $filter expression nests deeper than {MAX_PAREN_DEPTH} levels."
                raise ODataFilterError(msg)
        elif token.type == ")":
            depth -= 1


def _check_size(tree: ast._Node) -> None:
    """Count nodes without recursion: a long ``or`` chain is a deep tree."""
    count = 0
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, list | tuple):
            stack.extend(node)
            continue
        if not isinstance(node, ast._Node):
            continue
        count += 1
        if count > MAX_NODES:
            msg = f"The $filter expression has more than {MAX_NODES} terms."
            raise ODataFilterError(msg)
        stack.extend(getattr(node, name) for name in node.__dataclass_fields__)


def _parse_error_message(filter_text: str, exc: odata_exceptions.ParsingException) -> str:
    if exc.eof or exc.token is None:
        return "Invalid $filter: the expression ends too early."
    position = exc.token.index
    snippet = filter_text[position : position + 20]
    return f"Invalid $filter: syntax error at position {position} near {snippet!r}."
