"""SQL text compiled once per query shape, then run with bound values only.

Executing a SQLAlchemy ``Select`` costs its cache-key generation on every call (about
0.2 ms for the 11-column availability select, measured), before the database does
anything. The service asks few distinct shapes (a set, a ``$filter`` text, an order, a
keyset flag), so each is compiled once for the engine's dialect and kept as a
``Prepared``: the SQL string, and per positional parameter either a constant already run
through its bind processor (the join's constants) or the name of a value the request
supplies (a key, the keyset values, the limit, the ``$filter`` literals). A ``$filter``
enters the shape by its clause's structure (SQLAlchemy's cache key, ~1 µs), not its text,
so ``startswith(ItemNo,'1234')`` and ``startswith(ItemNo,'1235')`` share one statement.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter

_CACHE_SIZE = 4096
_cache: OrderedDict[Hashable, Prepared] = OrderedDict()

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class Slot:
    name: str | None  # a request value by this name, or None for the constant
    constant: Any
    process: Processor


@dataclass(frozen=True)
class Prepared:
    sql: str
    slots: tuple[Slot, ...]
    variable: bool  # any slot takes a request value

    def params(self, values: Mapping[str, Any] | None = None) -> tuple[Any, ...]:
        if not self.variable:
            return tuple(slot.constant for slot in self.slots)
        out = []
        for slot in self.slots:
            if slot.name is None:
                out.append(slot.constant)
                continue
            value = values[slot.name] if values is not None else None
            out.append(slot.process(value) if slot.process is not None else value)
        return tuple(out)


def prepare(
    statement: ClauseElement,
    dialect: Dialect,
    variables: frozenset[str],
    literals: Sequence[BindParameter[Any]] = (),
) -> Prepared:
    """Compile ``statement`` for ``dialect``; ``variables`` name the per-request binds.

    ``literals`` are the binds of a ``$filter`` clause, in its cache key's order: their
    slots become request values ``literal_<i>``, so another filter of the same structure
    (same cache key, other literal values) reuses this SQL with its own values.
    """
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    assert isinstance(compiled, SQLCompiler)  # noqa: S101 - a SELECT compiles to SQL
    names = compiled.positiontup
    if names is None:  # every dialect we run (sqlite, asyncpg) is positional
        msg = f"dialect {dialect.name} is not positional"
        raise RuntimeError(msg)
    processors: Mapping[str, Any] = compiled._bind_processors  # noqa: SLF001 - no public twin
    missing = variables - set(names)
    if missing:  # a variable rendered as a literal would silently be frozen in the SQL
        msg = f"binds {sorted(missing)} are not positional parameters"
        raise RuntimeError(msg)
    literal_index = {id(bind): index for index, bind in enumerate(literals)}
    seen: set[int] = set()
    slots = []
    for name in names:
        process = processors.get(name)
        bind = compiled.binds[name]
        if id(bind) in literal_index:
            seen.add(id(bind))
            slots.append(Slot(f"literal_{literal_index[id(bind)]}", None, process))
            continue
        if name in variables:
            slots.append(Slot(name, None, process))
            continue
        value = compiled.binds[name].effective_value
        slots.append(Slot(None, process(value) if process is not None else value, None))
    if seen != set(literal_index):  # a literal not bound positionally would be frozen in
        msg = "a $filter literal is not a positional parameter"
        raise RuntimeError(msg)
    return Prepared(compiled.string, tuple(slots), variable=bool(variables or literals))


Build = Callable[[], tuple[ClauseElement, frozenset[str], Sequence[BindParameter[Any]]]]


def cached(key: Hashable, build: Build, dialect: Dialect) -> Prepared:
    """The prepared statement for ``key`` (which must include everything the SQL depends on;
    ``build`` returns the statement, its variable names and its filter literals)."""
    full_key = (dialect.name, dialect.driver, key)
    prepared = _cache.get(full_key)
    if prepared is not None:
        _cache.move_to_end(full_key)
        return prepared
    statement, variables, literals = build()
    prepared = prepare(statement, dialect, variables, literals)
    _cache[full_key] = prepared
    if len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return prepared
