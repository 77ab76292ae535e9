"""What must hold between the ERP database and the CRM sandbox, at any instant and at rest.

At any instant (e.g. right after a worker was killed): every confirmed coupling points at
a CRM row, no CRM key is doubled, and no watermark is ahead of committed work (every ERP
row at or before it was written to the CRM and its coupling says so).

At rest (a sync ran to the end): besides that, exactly one CRM row per ERP row, matched
by its natural key, and every coupling resolves both ways to rows with the same key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import SQLModel, col, func, select

from app.clock import as_utc
from app.db import SessionMaker
from app.models import erp
from app.models.integration import (
    Direction,
    IntegrationRecord,
    IntegrationSynchJob,
    IntegrationSynchJobError,
    IntegrationTableMapping,
    SynchResult,
)
from tests.fixtures.sandbox import RunningSandbox

Rows = dict[str, dict[str, Any]]  # CRM id -> row


@dataclass(frozen=True)
class Pair:
    """One ERP table and the CRM entity set its mapping writes, with the natural key."""

    mapping: str
    table: str
    model: type[SQLModel]
    entity_set: str
    erp_key: Callable[[Any], str]
    crm_key: Callable[[dict[str, Any], dict[str, Rows]], str]
    exclusive: bool = True  # every CRM row of the set (but the sandbox's seed) is ours


def _price_of(row: dict[str, Any], crm: dict[str, Rows]) -> str:
    """Price list name / product number: one item has a price in several lists."""
    product = crm["products"].get(str(row.get("_productid_value")))
    price_list = crm["pricelevels"].get(str(row.get("_pricelevelid_value")))
    if product is None or price_list is None:
        return f"(dangling price {row.get('productpricelevelid')})"
    return f"{price_list['name']}/{product['productnumber']}"


PAIRS = (
    Pair("UNIT OF MEASURE", "unit_of_measure", erp.UnitOfMeasure, "uomschedules",
         lambda r: r.code, lambda c, _: str(c["name"])),
    Pair("CURRENCY", "currency", erp.Currency, "transactioncurrencies",
         lambda r: r.code, lambda c, _: str(c["isocurrencycode"])),
    # The company price list the sync creates for item prices is a pricelevel of no ERP row.
    Pair("CUSTPRCGRP-PRICE", "customer_price_group", erp.CustomerPriceGroup, "pricelevels",
         lambda r: r.code, lambda c, _: str(c["name"]), exclusive=False),
    Pair("ITEM-PRODUCT", "item", erp.Item, "products",
         lambda r: r.no, lambda c, _: str(c["productnumber"])),
    Pair("CUSTOMER", "customer", erp.Customer, "accounts",
         lambda r: r.name, lambda c, _: str(c["name"])),
    Pair("CONTACT", "contact", erp.Contact, "contacts",
         lambda r: r.surname, lambda c, _: str(c["lastname"])),
    # Item prices of the company price list are ours too, but of no sales price row.
    Pair("SALESPRC-PRODPRICE", "sales_price", erp.SalesPrice, "productpricelevels",
         lambda r: f"{r.sales_code}/{r.item_no}", _price_of, exclusive=False),
)  # fmt: skip


@dataclass
class Snapshot:
    erp: dict[str, dict[str, Any]]  # table -> system id -> row
    couplings: dict[str, list[IntegrationRecord]]
    crm: dict[str, Rows]
    mappings: dict[str, IntegrationTableMapping]
    crm_signposts: dict[str, datetime]  # mapping -> start of its latest CRM -> ERP run
    errors: dict[str, str]  # source id -> the latest sync error message


def crm_rows(sandbox: RunningSandbox) -> dict[str, Rows]:
    sets = {pair.entity_set for pair in PAIRS}
    return {s: {_pk(s, r): r for r in sandbox.state.rows(s)} for s in sets}


def _pk(entity_set: str, row: dict[str, Any]) -> str:
    singular = {"transactioncurrencies": "transactioncurrency"}.get(
        entity_set, entity_set.removesuffix("s")
    )
    return str(row[f"{singular}id"])


async def snapshot(sessionmaker: SessionMaker, sandbox: RunningSandbox) -> Snapshot:
    async with sessionmaker() as session:
        tables = {
            pair.table: {str(r.system_id): r for r in await session.exec(select(pair.model))}  # type: ignore[attr-defined]
            for pair in PAIRS
        }
        couplings: dict[str, list[IntegrationRecord]] = {}
        for coupling in await session.exec(select(IntegrationRecord)):
            couplings.setdefault(coupling.table_name, []).append(coupling)
        mappings = {m.name: m for m in await session.exec(select(IntegrationTableMapping))}
        latest = (
            select(IntegrationSynchJob.mapping_name, func.max(IntegrationSynchJob.started_at))
            .where(col(IntegrationSynchJob.direction) == Direction.from_crm)
            .group_by(col(IntegrationSynchJob.mapping_name))
        )
        signposts = {name: at for name, at in (await session.exec(latest)).all() if at}
        by_id = select(IntegrationSynchJobError).order_by(col(IntegrationSynchJobError.id))
        errors = {e.source_id: e.message for e in await session.exec(by_id)}
    return Snapshot(tables, couplings, crm_rows(sandbox), mappings, signposts, errors)


def problems_at_any_instant(snap: Snapshot, *, baseline: dict[str, set[str]]) -> list[str]:
    found: list[str] = []
    for pair in PAIRS:
        crm = snap.crm[pair.entity_set]
        ours = [r for i, r in crm.items() if i not in baseline.get(pair.entity_set, set())]
        doubled = [k for k, n in Counter(pair.crm_key(r, snap.crm) for r in ours).items() if n > 1]
        if doubled:
            found.append(f"{pair.entity_set}: keys held twice in the CRM: {doubled[:5]}")
        by_erp: dict[str, IntegrationRecord] = {}
        for coupling in snap.couplings.get(pair.table, []):
            by_erp[str(coupling.integration_id)] = coupling
            confirmed = coupling.last_synch_crm_modified_on is not None
            if confirmed and str(coupling.crm_id) not in crm:
                found.append(f"{pair.table}: coupling {coupling.id} points at no CRM row")
        found += _watermark_problems(pair, snap, by_erp)
    return found


def _watermark_problems(
    pair: Pair, snap: Snapshot, by_erp: dict[str, IntegrationRecord]
) -> list[str]:
    """Every ERP row at or before the ERP watermark reached the CRM, and its coupling says so."""
    mapping = snap.mappings[pair.mapping]
    if mapping.erp_modified_watermark is None:
        return []
    mark = as_utc(mapping.erp_modified_watermark)
    crm = snap.crm[pair.entity_set]
    behind: list[str] = []
    for system_id, row in snap.erp[pair.table].items():
        if as_utc(row.modified_at) > mark:
            continue
        coupling = by_erp.get(system_id)
        if coupling is None:
            behind.append(f"{pair.erp_key(row)} (not coupled)")
        elif coupling.last_synch_crm_result == SynchResult.failure and not coupling.skipped:
            continue  # recorded as failed: the next run retries it before anything else
        elif coupling.last_synch_crm_result != SynchResult.success:
            behind.append(f"{pair.erp_key(row)} (last result {coupling.last_synch_crm_result})")
        elif _is_stale(coupling, row, crm.get(str(coupling.crm_id))):
            behind.append(f"{pair.erp_key(row)} (synced {coupling.last_synch_modified_on}, "
                          f"modified {row.modified_at})")  # fmt: skip
        elif str(coupling.crm_id) not in crm:
            behind.append(f"{pair.erp_key(row)} (no CRM row)")
    if not behind:
        return []
    return [f"{pair.mapping}: watermark {mark} ahead of uncommitted rows {behind[:5]}"]


def _is_stale(coupling: IntegrationRecord, row: Any, crm_row: dict[str, Any] | None) -> bool:
    """The ERP row changed after the CRM row was last written.

    The coupling's timestamp says when a run last confirmed the row; a run killed after
    its write landed but before its commit leaves that behind, and the redo then finds
    nothing to change (the CRM already holds it). The CRM row's own ``modifiedon`` (whole
    seconds) tells that case apart from a change that never reached the CRM.
    """
    changed = as_utc(row.modified_at)
    synced = coupling.last_synch_modified_on
    if synced is not None and as_utc(synced) >= changed:
        return False
    written = str((crm_row or {}).get("modifiedon") or "")
    return written < changed.strftime("%Y-%m-%dT%H:%M:%SZ")


def problems_at_rest(snap: Snapshot, *, baseline: dict[str, set[str]]) -> list[str]:
    found = problems_at_any_instant(snap, baseline=baseline)
    for pair in PAIRS:
        crm = snap.crm[pair.entity_set]
        erp_rows = snap.erp[pair.table]
        couplings = snap.couplings.get(pair.table, [])
        expected = Counter(pair.erp_key(r) for r in erp_rows.values())
        ours = [r for i, r in crm.items() if i not in baseline.get(pair.entity_set, set())]
        held = Counter(pair.crm_key(r, snap.crm) for r in ours)
        if not pair.exclusive:
            held = Counter({k: n for k, n in held.items() if k in expected})
        if held != expected:
            missing = sorted((expected - held).keys())[:5]
            extra = sorted((held - expected).keys())[:5]
            found.append(f"{pair.entity_set}: not one CRM row per ERP row: "
                         f"missing {missing}, extra {extra}")  # fmt: skip
        if len(couplings) != len(erp_rows):
            found.append(f"{pair.table}: {len(couplings)} couplings for {len(erp_rows)} rows")
        if len({c.crm_id for c in couplings}) != len(couplings):
            found.append(f"{pair.table}: two couplings share a CRM row")
        for coupling in couplings:
            if coupling.last_synch_crm_result == SynchResult.failure:
                error = snap.errors.get(str(coupling.integration_id), "?")
                found.append(f"{pair.table}: record {coupling.integration_id} failed: {error}")
            row = erp_rows.get(str(coupling.integration_id))
            crm_row = crm.get(str(coupling.crm_id))
            if row is None or crm_row is None:
                found.append(f"{pair.table}: coupling {coupling.id} does not resolve both ways")
            elif pair.erp_key(row) != pair.crm_key(crm_row, snap.crm):
                found.append(f"{pair.table}: coupling {coupling.id} joins different records")
        found += _crm_watermark_problems(pair, snap)
    return found


def _crm_watermark_problems(pair: Pair, snap: Snapshot) -> list[str]:
    """A CRM watermark never passes the start (signpost) of the latest run reading the CRM."""
    mapping = snap.mappings[pair.mapping]
    signpost = snap.crm_signposts.get(pair.mapping)
    if mapping.crm_modified_watermark is None:
        return []
    mark = as_utc(mapping.crm_modified_watermark)
    if signpost is None or mark > as_utc(signpost):
        return [f"{pair.mapping}: CRM watermark {mark} past its run's start {signpost}"]
    return []


def baseline_of(sandbox: RunningSandbox) -> dict[str, set[str]]:
    """The rows the sandbox seeds itself (e.g. the base currency): not the sync's."""
    return {name: set(rows) for name, rows in crm_rows(sandbox).items()}
