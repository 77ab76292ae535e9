"""What a pass records on a coupling for loop prevention: fingerprints and the CRM version.

The rule (docs/sync.md, "Loop prevention"): a side's stored fingerprint only ever takes
values that both sides held alike at that moment: the source as read, once all of its
changes went across; the destination's fields as written (read back from the write
itself) or as found equal. The CRM version is stored only when the CRM row, as last seen,
matches its stored fingerprint in full: the next CRM -> ERP pass then knows the row holds
nothing new without digesting it. On the ERP side the same role falls to the coupling's
``last_synch_modified_on``, which ``log.mark_succeeded`` moves only when it is given a
modified-at: a CRM -> ERP pass gives it only when the ERP row, read again after the
write, matches its new fingerprint in full.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.models.integration import IntegrationRecord
from app.sync import field_merge
from app.sync.fingerprints import Fingerprint, Layout, crm_fingerprint
from app.sync.work import FromCrmWork, ToCrmWork


def crm_version(record: Mapping[str, Any] | None) -> int | None:
    value = (record or {}).get("versionnumber")
    return None if value is None or value == "" else int(str(value))


def settle_to_crm(
    coupling: IntegrationRecord,
    work: ToCrmWork,
    *,
    layout: Layout,
    entity: str,
    written: Mapping[str, Any] | None,
) -> None:
    """An ERP -> CRM insert, modify or unchanged: ``written`` is the CRM row as the write
    returned it (None when nothing was written to the row itself)."""
    settlement = work.settlement
    if settlement is None:
        return
    coupling.erp_fingerprint = settlement.source_print  # every ERP change went across
    if settlement.destination_before is None:
        if written is not None:  # a new CRM row: all of it is what we wrote
            coupling.crm_fingerprint = crm_fingerprint(layout, written, entity=entity)
            coupling.crm_version = crm_version(written)
        return
    after = (
        crm_fingerprint(layout, written, entity=entity)
        if written is not None
        else settlement.destination_before
    )
    stored = field_merge.after_pass(
        coupling.crm_fingerprint, before=settlement.destination_before, after=after,
        agreed=settlement.agreed, written=settlement.written,
    )  # fmt: skip
    coupling.crm_fingerprint = stored
    if after == stored:  # nothing in the CRM row is left for the other pass
        version = crm_version(written) if written is not None else settlement.destination_version
        coupling.crm_version = version


def settle_from_crm(
    coupling: IntegrationRecord, work: FromCrmWork, *, erp_after: Fingerprint | None
) -> bool:
    """A CRM -> ERP insert, modify or unchanged; ``erp_after`` is the ERP row's full
    fingerprint read again after the write (None: not written). True when the ERP row
    holds nothing left for the ERP -> CRM pass (its modified-at may be stored)."""
    settlement = work.settlement
    if settlement is None:
        return False
    coupling.crm_fingerprint = settlement.source_print  # every CRM change came across
    coupling.crm_version = crm_version(work.record)
    if settlement.destination_before is None:  # a new ERP row: all of it came from the CRM
        coupling.erp_fingerprint = erp_after
        return erp_after is not None
    before = settlement.destination_before
    stored = field_merge.after_pass(
        coupling.erp_fingerprint, before=before, after=erp_after or before,
        agreed=settlement.agreed, written=settlement.written,
    )  # fmt: skip
    coupling.erp_fingerprint = stored
    return erp_after is not None and erp_after == stored
