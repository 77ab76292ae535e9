"""SQL text compiled once per query shape, then run with bound values only.

Executing a SQLAlchemy ``Select`` costs its cache-key generation on every call (about
0.2 ms for the 11-column availability select, measured), before the database does
anything. The service asks few distinct shapes (a set, a ``$filter`` text, an order, a
keyset flag), so each is compiled once for the engine's dialect and kept as a
``Prepared``: the SQL string, and per positional parameter either a constant already run
through its bind processor (filter literals, the join's constants) or the name of a value
the request supplies (a key, the keyset values, the limit).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

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


def prepare(statement: ClauseElement, dialect: Dialect, variables: frozenset[str]) -> Prepared:
    """Compile ``statement`` for ``dialect``; ``variables`` name the per-request binds."""
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
    slots = []
    for name in names:
        process = processors.get(name)
        if name in variables:
            slots.append(Slot(name, None, process))
            continue
        value = compiled.binds[name].effective_value
        slots.append(Slot(None, process(value) if process is not None else value, None))
    return Prepared(compiled.string, tuple(slots), variable=bool(variables))


def cached(
    key: Hashable, build: Callable[[], tuple[ClauseElement, frozenset[str]]], dialect: Dialect
) -> Prepared:
    """The prepared statement for ``key`` (which must include everything the SQL depends on)."""
    full_key = (dialect.name, dialect.driver, key)
    prepared = _cache.get(full_key)
    if prepared is not None:
        _cache.move_to_end(full_key)
        return prepared
    statement, variables = build()
    prepared = prepare(statement, dialect, variables)
    _cache[full_key] = prepared
    if len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return prepared
