"""Fingerprints and the per-field merge, pure: digests, layouts, which fields a pass writes."""

from __future__ import annotations

import uuid
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from app.mappings.default_mappings import CUSTOMER, ITEM_PRODUCT, MappingDefault
from app.models.integration import Direction, IntegrationRecord
from app.sync import coupling_state, field_merge, fingerprints, transfer
from app.sync.fingerprints import ONE_WAY, compare
from app.sync.work import FromCrmWork, Settlement, ToCrmWork

BI, TO, FROM = Direction.bidirectional, Direction.to_crm, Direction.from_crm


def _rules(*fields: tuple[str, str, Direction]) -> list[transfer.FieldRule]:
    return [transfer.FieldRule(erp, crm, direction) for erp, crm, direction in fields]


RULES = _rules(
    ("name", "name", BI), ("phone", "telephone1", BI), ("credit_limit_lcy", "creditlimit", TO),
    ("your_reference", "ordernumber", FROM), ("", "customertypecode", TO),
)  # fmt: skip
LAYOUT = fingerprints.layout_of(RULES)


@given(st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**9),
                   max_value=10**9))  # fmt: skip
def test_equal_numbers_digest_alike_in_any_form(value: Decimal) -> None:
    forms = [value, Decimal(f"{value}00"), float(value)]
    assert len({fingerprints.value_digest(v) for v in forms}) == 1


def test_empty_is_empty_and_types_do_not_collide() -> None:
    assert fingerprints.value_digest(None) == fingerprints.value_digest("")
    assert fingerprints.value_digest("1") != fingerprints.value_digest(1)
    assert fingerprints.value_digest(True) != fingerprints.value_digest("True")
    some = uuid.uuid4()
    assert fingerprints.value_digest(some) != fingerprints.value_digest(uuid.uuid4())


def test_the_layout_splits_pairs_from_one_way_fields() -> None:
    assert dict(LAYOUT.erp_pairs) == {"name": "name", "phone": "telephone1"}
    assert dict(LAYOUT.crm_pairs) == {"name": "name", "telephone1": "phone"}
    assert LAYOUT.erp_one_way == ("credit_limit_lcy",)
    assert LAYOUT.crm_one_way == ("ordernumber",)
    product = fingerprints.layout_of(_default_rules(ITEM_PRODUCT), extra_erp=("blocked",))
    assert "blocked" in product.erp_one_way and "inventory" in product.erp_one_way
    assert set(product.erp_pairs) == {"description", "base_unit_of_measure"}


def _default_rules(default: MappingDefault) -> list[transfer.FieldRule]:
    return [
        transfer.FieldRule(d.field, d.integration_field, d.direction, d.constant_value)
        for d in default.fields
        if d.is_enabled
    ]


def test_a_fingerprint_covers_each_pair_and_the_one_way_fields_together() -> None:
    erp = fingerprints.erp_fingerprint(LAYOUT, {"name": "A", "phone": "1", "credit_limit_lcy": 5})
    assert set(erp) == {"name", "phone", ONE_WAY}
    record = {"name": "A", "telephone1": "1", "ordernumber": "SO1", "creditlimit": 99}
    crm = fingerprints.crm_fingerprint(LAYOUT, record, entity="account")
    assert set(crm) == {"name", "telephone1", ONE_WAY}
    other = fingerprints.crm_fingerprint(LAYOUT, {**record, "creditlimit": 1}, entity="account")
    assert other == crm  # a one-way ERP -> CRM field is not the CRM side's to change
    renumbered = fingerprints.crm_fingerprint(
        LAYOUT, {**record, "ordernumber": "SO2"}, entity="account"
    )
    assert renumbered[ONE_WAY] != crm[ONE_WAY] and renumbered["name"] == crm["name"]


def test_compare_knows_changed_new_and_unknown() -> None:
    stored = {"name": "a", "telephone1": "b"}
    changes = compare({"name": "a", "telephone1": "c", ONE_WAY: "d"}, stored)
    assert changes.known and changes.changed == {"telephone1", ONE_WAY}
    assert changes.new == {ONE_WAY}
    assert changes.as_source(ONE_WAY) and not changes.as_source("name")
    assert not changes.as_destination(ONE_WAY, unknown=True)  # a field mapping added since
    assert changes.as_destination("telephone1", unknown=False)
    unknown = compare({"name": "a"}, None)
    assert not unknown.known and unknown.any and unknown.as_source("name")
    assert unknown.as_destination("name", unknown=True)
    assert not unknown.as_destination("name", unknown=False)
    assert not compare(stored, stored).any


def test_plan_writes_source_changes_leaves_destination_changes_and_finds_conflicts() -> None:
    source = compare({"name": "n2", "phone": "p1", "city": "c2"}, {"name": "n1", "phone": "p1",
                                                                   "city": "c1"})  # fmt: skip
    destination = compare(
        {"name": "n1", "telephone1": "t2", "address1_city": "x2", "fax": "f"},
        {"name": "n1", "telephone1": "t1", "address1_city": "x1"},
    )
    diff = {"name": "N", "telephone1": "P", "address1_city": "C", "creditlimit": 7, "fax": "F"}
    pairs = {"name": "name", "telephone1": "phone", "address1_city": "city"}
    plan = field_merge.plan_fields(
        diff, pairs=pairs, source=source, destination=destination,
        destination_changed_if_unknown=True, to_crm=True,
    )  # fmt: skip
    # name: only the ERP changed it; phone: only the CRM (left for the CRM -> ERP pass);
    # city: both (a conflict); credit limit and fax: one way, the ERP owns them.
    assert plan.send == {"name": "N", "creditlimit": 7, "fax": "F"}
    assert plan.conflicting == [("city", "address1_city")]
    assert field_merge.written_fields(plan, won=True)["address1_city"] == "C"
    assert "address1_city" not in field_merge.written_fields(plan, won=False)


def test_neither_side_changed_is_left_alone() -> None:
    same = compare({"name": "a"}, {"name": "a"})
    plan = field_merge.plan_fields(
        {"name": "b"}, pairs={"name": "name"}, source=same, destination=same,
        destination_changed_if_unknown=False, to_crm=False,
    )  # fmt: skip
    assert plan.send == {} and plan.conflicting == []


def test_without_a_stored_fingerprint_the_old_rule_decides() -> None:
    unknown = compare({"name": "a"}, None)
    for changed_by_others, expected in ((False, {"name": "x"}), (True, {})):
        plan = field_merge.plan_fields(
            {"name": "x"}, pairs={"name": "name"}, source=unknown, destination=unknown,
            destination_changed_if_unknown=changed_by_others, to_crm=False,
        )  # fmt: skip
        assert plan.send == expected
        assert bool(plan.conflicting) is changed_by_others


def test_after_a_pass_only_what_both_sides_hold_alike_moves() -> None:
    stored = {"name": "n0", "telephone1": "t0", ONE_WAY: "o0"}
    before = {"name": "n1", "telephone1": "t1", "address1_city": "c1", ONE_WAY: "o1"}
    after = {"name": "n2", "telephone1": "t2", "address1_city": "c2", ONE_WAY: "o2"}
    new = field_merge.after_pass(
        stored, before=before, after=after, agreed=["address1_city"], written=["name"]
    )
    # written: as returned; agreed: as read before the write; the rest as stored.
    assert new == {"name": "n2", "address1_city": "c1", "telephone1": "t0", ONE_WAY: "o0"}
    agreed = field_merge.agreed_fields(
        {"name": 1, "telephone1": 2}, {"telephone1": 2}, {"name": "name", "telephone1": "phone",
                                                          "address1_city": "city"},
    )  # fmt: skip
    assert agreed == ["name"]  # a field the transfer left out (not-null) is not agreed


def test_default_customer_mapping_has_a_fingerprint_per_bidirectional_field() -> None:
    layout = fingerprints.layout_of(_default_rules(CUSTOMER))
    assert {"name", "phone", "city", "email"} <= set(layout.erp_pairs)
    assert layout.erp_one_way == ("credit_limit_lcy", "salesperson_code")
    assert "owneridtype" not in layout.crm_pairs


def _account(name: str, phone: str, version: int) -> dict[str, object]:
    return {"name": name, "telephone1": phone, "ordernumber": "", "versionnumber": version}


def test_an_edit_between_our_read_and_our_write_keeps_the_crm_row_unsettled() -> None:
    before = fingerprints.crm_fingerprint(LAYOUT, _account("A", "1", 5), entity="account")
    source = fingerprints.erp_fingerprint(LAYOUT, {"name": "B", "phone": "1"})
    for phone_after, settled in (("1", True), ("2", False)):
        coupling = IntegrationRecord(table_name="customer", integration_id=uuid.uuid4(),
                                     crm_table="account", crm_id=uuid.uuid4(),
                                     crm_fingerprint=before, crm_version=5)  # fmt: skip
        settlement = Settlement(
            source,
            compare(source, None),
            destination_before=before,
            destination_version=5,
            agreed=["telephone1"],
            written=["name"],
        )
        work = ToCrmWork(row=None, coupling=coupling, settlement=settlement)
        # Our write of the name returns the row; a person changed the phone in between.
        written = _account("B", phone_after, 7)
        coupling_state.settle_to_crm(coupling, work, layout=LAYOUT, entity="account",
                                     written=written)  # fmt: skip
        assert coupling.crm_version == (7 if settled else 5)
        assert coupling.crm_fingerprint is not None
        assert coupling.crm_fingerprint["telephone1"] == before["telephone1"]  # as read
        assert coupling.crm_fingerprint["name"] == fingerprints.value_digest("B")
        assert coupling.erp_fingerprint == source


def test_an_erp_row_read_again_with_someone_elses_change_is_not_settled() -> None:
    before = fingerprints.erp_pair_fingerprint(LAYOUT, {"name": "A", "phone": "1"})
    stored = fingerprints.erp_fingerprint(
        LAYOUT, {"name": "A", "phone": "1", "credit_limit_lcy": 0}
    )
    record = _account("B", "1", 9)
    source = fingerprints.crm_fingerprint(LAYOUT, record, entity="account")
    for phone_after, settled in (("1", True), ("2", False)):
        coupling = IntegrationRecord(table_name="customer", integration_id=uuid.uuid4(),
                                     crm_table="account", crm_id=uuid.uuid4(),
                                     erp_fingerprint=stored)  # fmt: skip
        settlement = Settlement(source, compare(source, None), destination_before=before,
                                agreed=["phone"], written=["name"])  # fmt: skip
        work = FromCrmWork(record=record, crm_id=coupling.crm_id, coupling=coupling,
                           settlement=settlement)  # fmt: skip
        after = fingerprints.erp_fingerprint(
            LAYOUT, {"name": "B", "phone": phone_after, "credit_limit_lcy": 0}
        )
        assert coupling_state.settle_from_crm(coupling, work, erp_after=after) is settled
        assert coupling.crm_version == 9 and coupling.crm_fingerprint == source
        assert coupling.erp_fingerprint is not None
        assert coupling.erp_fingerprint["phone"] == before["phone"]
