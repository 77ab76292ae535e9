"""Fingerprints, pure: digests of a coupled record's mapped fields on each side.

Loop prevention decides "is this a change to synchronize?" by content, never by who
wrote a row last. For every coupling the sync keeps what it last wrote or read on each
side as a fingerprint: one digest per field of a bidirectional field mapping (so a pass
knows *which* fields each side changed) and one digest, under ``ONE_WAY``, of all the
side's fields that travel one way only. A record's side has changed when its current
fingerprint differs from the stored one, whoever stamped the row.

The ERP side's fingerprint covers the ERP fields sent to the CRM (bidirectional and
ERP -> CRM mappings); the CRM side's covers the CRM fields brought to the ERP
(bidirectional and CRM -> ERP mappings). Each side is digested in its own form (an ERP
code, a CRM lookup's id), so nothing needs translating to compare. Values are
normalised as the transfer compares them (``transfer.normalize``; empty string = null).
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.models.integration import Direction
from app.sync import transfer
from app.sync.transfer import FieldRule

ONE_WAY = "*"  # the key of the digest of a side's one-way fields
DIGEST_BYTES = 8  # 64 bits: a changed value passing for the stored one is out of reach

Fingerprint = dict[str, str]


def _canonical(value: Any) -> str:
    """A text per value that two equal values (``transfer.same_value``) share.

    Numbers go through a float as ``transfer.normalize`` does (JSON numbers are what the
    CRM keeps), written by ``repr``, which is the same text for equal floats (+ 0.0: no
    negative zero); dates as ISO text. Digested for every mapped field of every record
    sent, so the common types come first.
    """
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return f"s{value}"
    if isinstance(value, bool):
        return "b1" if value else "b0"
    if isinstance(value, int | float | Decimal):
        return f"n{float(value) + 0.0!r}"
    if isinstance(value, uuid.UUID):
        return f"u{value}"
    return f"s{transfer.normalize(value)}"


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=DIGEST_BYTES).hexdigest()


def value_digest(value: Any) -> str:
    return _digest(_canonical(value))


@dataclass(frozen=True)
class Layout:
    """Which fields each side's fingerprint covers, from a mapping's field rules."""

    erp_pairs: Mapping[str, str]  # bidirectional: ERP field -> CRM field
    crm_pairs: Mapping[str, str]  # bidirectional: CRM field -> ERP field
    erp_one_way: tuple[str, ...]  # ERP fields sent to the CRM only
    crm_one_way: tuple[str, ...]  # CRM fields brought to the ERP only

    @property
    def erp_fields(self) -> tuple[str, ...]:
        return (*self.erp_pairs, *self.erp_one_way)


@functools.cache
def _layout(rules: tuple[FieldRule, ...], extra_erp: tuple[str, ...]) -> Layout:
    pairs = [
        (r.erp_field, r.crm_field)
        for r in rules
        if r.direction == Direction.bidirectional
        and r.erp_field
        and r.crm_field
        and not r.crm_field.endswith("idtype")
    ]
    erp_pairs = dict(pairs)
    crm_pairs = {crm: erp for erp, crm in pairs}
    to_crm = {r.erp_field for r in rules if r.goes_to_crm and r.erp_field} | set(extra_erp)
    from_crm = {r.crm_field for r in rules if r.comes_from_crm and r.crm_field}
    return Layout(
        erp_pairs, crm_pairs,
        tuple(sorted(to_crm - erp_pairs.keys())), tuple(sorted(from_crm - crm_pairs.keys())),
    )  # fmt: skip


def layout_of(rules: Sequence[FieldRule], *, extra_erp: Sequence[str] = ()) -> Layout:
    """``extra_erp``: ERP fields the engine's own rules send beside the field mappings
    (an item's ``blocked`` decides its product's state)."""
    return _layout(tuple(rules), tuple(extra_erp))


def _fingerprint(singles: Iterable[str], one_way: Sequence[str], value_of: Any) -> Fingerprint:
    found = {name: value_digest(value_of(name)) for name in singles}
    if one_way:
        found[ONE_WAY] = _digest("\x1f".join(f"{n}={_canonical(value_of(n))}" for n in one_way))
    return found


def erp_fingerprint(layout: Layout, values: Mapping[str, Any]) -> Fingerprint:
    """The ERP side's fingerprint from the row's values (computed fields included)."""
    return _fingerprint(layout.erp_pairs, layout.erp_one_way, values.get)


def erp_pair_fingerprint(layout: Layout, values: Mapping[str, Any]) -> Fingerprint:
    """Only the bidirectional fields of the ERP side (what a CRM -> ERP pass compares)."""
    return _fingerprint(layout.erp_pairs, (), values.get)


def crm_fingerprint(layout: Layout, record: Mapping[str, Any], *, entity: str) -> Fingerprint:
    """The CRM side's fingerprint from a record as the Web API returns it."""
    return _fingerprint(
        layout.crm_pairs, layout.crm_one_way,
        lambda name: transfer.read_crm_value(record, entity, name),
    )  # fmt: skip


@dataclass(frozen=True)
class SideChanges:
    """One side of a record against its stored fingerprint.

    ``known`` is False when no fingerprint was stored (a coupling made before this rule, or
    by coupling alone): then which fields changed is not known at all. ``new`` are keys
    the stored fingerprint lacks (a field mapping added since): their change is unknown.
    """

    known: bool
    changed: frozenset[str]  # keys whose digest differs from the stored one (new ones too)
    new: frozenset[str]

    @property
    def any(self) -> bool:
        return not self.known or bool(self.changed)

    def as_source(self, key: str) -> bool:
        """Did this side change the field, as the side being read? (unknown counts)"""
        return not self.known or key in self.changed

    def as_destination(self, key: str, *, unknown: bool) -> bool:
        """Did this side change the field, as the side written to? ``unknown``: the answer
        when no fingerprint was stored; a field mapping added since counts as unchanged."""
        if not self.known:
            return unknown
        return key in self.changed and key not in self.new


def compare(current: Mapping[str, str], stored: Mapping[str, str] | None) -> SideChanges:
    if stored is None:
        return SideChanges(known=False, changed=frozenset(current), new=frozenset(current))
    new = frozenset(key for key in current if key not in stored)
    changed = frozenset(key for key, digest in current.items() if stored.get(key) != digest)
    return SideChanges(known=True, changed=changed, new=new)


def merged(
    stored: Mapping[str, str] | None, current: Mapping[str, str], keys: Iterable[str]
) -> Fingerprint:
    """The stored fingerprint with ``keys`` taken from ``current``. A key of a field
    mapping removed since stays until the side's own pass stores its fingerprint whole."""
    result = dict(stored or {})
    result.update({key: current[key] for key in keys if key in current})
    return result
