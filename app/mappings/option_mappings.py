"""Option mappings (ERP code <-> CRM option value) per option set: list, change, defaults.

Each pair is one-to-one within its option set (one code per value, one value per code),
so a value read from the CRM always names exactly one code. Codes are matched exactly as
the ERP stores them. The defaults are created with the default synchronization setup for
an option set that has no pairs yet, and restored on request; an admin's pairs are never
overwritten otherwise.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.mappings.option_sets import OPTION_SETS, OptionSet, OptionTable
from app.models.option_mapping import CrmOptionMapping

MAX_CODE_LENGTH = 10  # the ERP's code columns
MAX_OPTION_VALUE = 2**31 - 1  # Dataverse option values are 32-bit integers


def option_set_or_raise(name: str) -> OptionSet:
    found = OPTION_SETS.get(name)
    if found is None:
        msg = f"Unknown option set {name[:40]!r}: use one of {', '.join(OPTION_SETS)}."
        raise InvalidInputError(msg)
    return found


async def list_option_mappings(
    session: AsyncSession, *, option_set: str | None = None
) -> list[CrmOptionMapping]:
    statement = select(CrmOptionMapping).order_by(
        col(CrmOptionMapping.option_set), col(CrmOptionMapping.option_value)
    )
    if option_set is not None:
        name = option_set_or_raise(option_set).name
        statement = statement.where(CrmOptionMapping.option_set == name)
    return list(await session.exec(statement))


async def get_or_raise(session: AsyncSession, mapping_id: uuid.UUID) -> CrmOptionMapping:
    statement = select(CrmOptionMapping).where(CrmOptionMapping.system_id == mapping_id)
    found = (await session.exec(statement)).first()
    if found is None:
        msg = f"There is no option mapping {mapping_id}."
        raise NotFoundError(msg)
    return found


def _check_code(code: str) -> str:
    text = code.strip()
    if not text or len(text) > MAX_CODE_LENGTH or text != code:
        msg = (
            f"The ERP code must be 1 to {MAX_CODE_LENGTH} characters without leading or "
            f"trailing spaces, not {code[:40]!r}."
        )
        raise InvalidInputError(msg)
    return text


def _check_value(value: int) -> int:
    if not 0 <= value <= MAX_OPTION_VALUE:
        msg = f"The option value must be a whole number from 0 to {MAX_OPTION_VALUE}."
        raise InvalidInputError(msg)
    return value


async def _refuse_duplicates(session: AsyncSession, row: CrmOptionMapping) -> None:
    """One code per value and one value per code within an option set (409 naming the pair)."""
    statement = select(CrmOptionMapping).where(
        CrmOptionMapping.option_set == row.option_set,
        (CrmOptionMapping.erp_code == row.erp_code)
        | (CrmOptionMapping.option_value == row.option_value),
        CrmOptionMapping.system_id != row.system_id,
    )
    clash = (await session.exec(statement)).first()
    if clash is not None:
        msg = (
            f"The {row.option_set} option set already pairs {clash.erp_code!r} with option "
            f"value {clash.option_value}: each code and each value may appear once."
        )
        raise ConflictError(msg)


async def create_option_mapping(
    session: AsyncSession, *, option_set: str, erp_code: str, option_value: int, caption: str = ""
) -> CrmOptionMapping:
    row = CrmOptionMapping(
        option_set=option_set_or_raise(option_set).name,
        erp_code=_check_code(erp_code),
        option_value=_check_value(option_value),
        caption=caption.strip(),
    )
    await _refuse_duplicates(session, row)
    session.add(row)
    await session.flush()
    return row


async def update_option_mapping(
    session: AsyncSession, *, mapping_id: uuid.UUID, changes: Mapping[str, Any]
) -> CrmOptionMapping:
    row = await get_or_raise(session, mapping_id)
    if "erp_code" in changes:
        row.erp_code = _check_code(changes["erp_code"])
    if "option_value" in changes:
        row.option_value = _check_value(changes["option_value"])
    if "caption" in changes:
        row.caption = str(changes["caption"]).strip()
    await _refuse_duplicates(session, row)
    session.add(row)
    await session.flush()
    return row


async def delete_option_mapping(session: AsyncSession, *, mapping_id: uuid.UUID) -> None:
    await session.delete(await get_or_raise(session, mapping_id))
    await session.flush()


def _default_rows(option_set: OptionSet) -> list[CrmOptionMapping]:
    return [
        CrmOptionMapping(
            option_set=option_set.name,
            erp_code=default.erp_code,
            option_value=default.option_value,
            caption=default.caption,
        )
        for default in option_set.defaults
    ]


async def reset_option_mappings(session: AsyncSession, *, option_set: str | None = None) -> int:
    """Replace the pairs of one option set (or of all) by the defaults; returns how many."""
    sets = [option_set_or_raise(option_set)] if option_set else list(OPTION_SETS.values())
    names = [s.name for s in sets]
    await session.exec(delete(CrmOptionMapping).where(col(CrmOptionMapping.option_set).in_(names)))
    await session.flush()
    rows = [row for s in sets for row in _default_rows(s)]
    session.add_all(rows)
    await session.flush()
    return len(rows)


async def ensure_default_option_mappings(session: AsyncSession) -> int:
    """The defaults for each option set that has no pairs yet; returns how many were added."""
    present = set(await session.exec(select(CrmOptionMapping.option_set).distinct()))
    rows = [row for s in OPTION_SETS.values() if s.name not in present for row in _default_rows(s)]
    session.add_all(rows)
    await session.flush()
    return len(rows)


async def load_option_tables(session: AsyncSession) -> dict[str, OptionTable]:
    """Every option set's table (empty ones too: an unmapped code fails, never leaks)."""
    pairs: dict[str, list[CrmOptionMapping]] = {name: [] for name in OPTION_SETS}
    for row in await session.exec(select(CrmOptionMapping)):
        if row.option_set in pairs:
            pairs[row.option_set].append(row)
    return {
        name: OptionTable(
            OPTION_SETS[name],
            to_crm={row.erp_code: row.option_value for row in rows},
            from_crm={row.option_value: row.erp_code for row in rows},
        )
        for name, rows in pairs.items()
    }
