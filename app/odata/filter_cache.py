"""Compiled ``$filter`` clauses, cached by text and, for the common forms, by template.

A clause is compiled once per text (LRU). A new text costs the parse and the translation
into SQLAlchemy elements, about half a millisecond, and clients send new texts all the
time (a CRM asks ``CRM_ID eq <guid>`` for each product; a search box sends each prefix).
So for the common forms (``app.odata.filtering.shortcuts``) the first text of a form also
records how each bound value derives from its literal (the literal itself, its UUID, the
``startswith`` upper bound); another text of the same form, property and operator then
reuses that clause with values derived from its own literal, without parsing or
translating. The template key also holds what changes the clause's structure for a
literal (an empty prefix; a prefix with no upper bound). A value that does not derive, or
a literal whose derivation fails (not a GUID), takes the general path, which says why.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.sql.elements import BindParameter

from app.odata.entity_sets import EntitySet
from app.odata.filtering.functions import successor
from app.odata.filtering.shortcuts import CommonForm, common_form
from app.odata.filtering.syntax import check_text
from app.odata.filters import compile_filter

CACHE_SIZE = 2048
Derivation = Callable[[str], Any]
_DERIVATIONS: tuple[Derivation, ...] = (lambda s: s, successor, uuid.UUID)
_UNTEMPLATED = object()
TEMPLATE_KINDS = frozenset({"string", "guid"})


@dataclass(frozen=True)
class CompiledFilter:
    clause: Any
    shape: Hashable  # the clause's structure: equal for filters differing only in literals
    literals: tuple[BindParameter[Any], ...]  # its binds, in cache-key order
    values: tuple[Any, ...]  # their values


@dataclass(frozen=True)
class _Template:
    compiled: CompiledFilter
    derivations: tuple[Derivation, ...]  # per bound value, from the literal

    def apply(self, literal: str) -> CompiledFilter:
        values = tuple(derive(literal) for derive in self.derivations)
        found = self.compiled
        return CompiledFilter(found.clause, found.shape, found.literals, values)


_by_text: OrderedDict[tuple[str, str], CompiledFilter] = OrderedDict()
_by_template: OrderedDict[Hashable, Any] = OrderedDict()


def filter_clause(entity_set: EntitySet, text: str) -> CompiledFilter:
    """The compiled ``$filter`` (aliases already substituted); raises as compile_filter."""
    key = (entity_set.name, text)
    found = _by_text.get(key)
    if found is not None:
        _by_text.move_to_end(key)
        return found
    check_text(text)  # the caps and refusals of the parser apply to a template's text too
    form = common_form(text)
    if form is not None and form.kind not in TEMPLATE_KINDS:
        form = None  # a number or word literal can change the clause's structure
    found = _from_template(entity_set, form) if form is not None else None
    if found is None:
        found = _compiled(entity_set, text)
        if form is not None:
            _remember_template(entity_set, form, found)
    _put(_by_text, key, found)
    return found


def _compiled(entity_set: EntitySet, text: str) -> CompiledFilter:
    clause = compile_filter(text, entity_set.filter_fields)
    key = clause._generate_cache_key()  # noqa: SLF001 - what SQLAlchemy's own cache uses
    if key is None:  # an element without a cache key: the text is the shape
        return CompiledFilter(clause, ("text", text), (), ())
    binds = tuple(key.bindparams)
    return CompiledFilter(
        clause, ("clause", key.key), binds, tuple(b.effective_value for b in binds)
    )


def _template_key(entity_set: EntitySet, form: CommonForm) -> Hashable:
    structure: tuple[bool, ...] = ()
    if form.kind == "string":  # what makes startswith another clause: see _prefix_range
        structure = (form.literal == "", successor(form.literal) is None)
    return (entity_set.name, form.operator, form.name, form.kind, structure)


def _from_template(entity_set: EntitySet, form: CommonForm) -> CompiledFilter | None:
    key = _template_key(entity_set, form)
    template = _by_template.get(key)
    if not isinstance(template, _Template):
        return None
    _by_template.move_to_end(key)
    try:
        return template.apply(form.literal)
    except ValueError:  # e.g. not a GUID: the general path gives the client's error
        return None


def _remember_template(entity_set: EntitySet, form: CommonForm, found: CompiledFilter) -> None:
    derivations = []
    for value in found.values:
        derive = next((d for d in _DERIVATIONS if _derives(d, form.literal, value)), None)
        if derive is None:
            _put(_by_template, _template_key(entity_set, form), _UNTEMPLATED)
            return
        derivations.append(derive)
    template = _Template(found, tuple(derivations))
    _put(_by_template, _template_key(entity_set, form), template)


def _derives(derive: Derivation, literal: str, value: Any) -> bool:
    try:
        derived = derive(literal)
    except ValueError:
        return False
    return type(derived) is type(value) and bool(derived == value)


def _put(cache: OrderedDict[Any, Any], key: Hashable, value: Any) -> None:
    cache[key] = value
    if len(cache) > CACHE_SIZE:
        cache.popitem(last=False)
