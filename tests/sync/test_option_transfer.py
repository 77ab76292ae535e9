"""Option sets in the transfer: ERP codes <-> CRM option values through the option tables."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.mappings.option_sets import OPTION_SETS, OptionTable, UnmappedOption
from app.models.integration import Direction, IntegrationFieldMapping
from app.sync import transfer

TERMS = OptionTable(
    OPTION_SETS["payment_terms"], to_crm={"NET30": 1, "NET45": 3}, from_crm={1: "NET30", 3: "NET45"}
)
AGENTS = OptionTable(OPTION_SETS["shipping_agent"], to_crm={"UPS": 4}, from_crm={4: "UPS"})
TABLES = {"payment_terms": TERMS, "shipping_agent": AGENTS}


def _rules(*, clear: bool = False) -> list[transfer.FieldRule]:
    rows = [
        IntegrationFieldMapping(mapping_name="CUSTOMER", field="payment_terms_code",
                                integration_field="paymenttermscode",
                                direction=Direction.bidirectional,
                                clear_value_on_failed_sync=clear),
        IntegrationFieldMapping(mapping_name="CUSTOMER", field="shipping_agent_code",
                                integration_field="address1_shippingmethodcode",
                                direction=Direction.bidirectional),
        IntegrationFieldMapping(mapping_name="CUSTOMER", field="name", integration_field="name",
                                direction=Direction.bidirectional),
    ]  # fmt: skip
    return transfer.rules_from(rows, TABLES)


def test_codes_become_option_values_and_back() -> None:
    rules = _rules()
    erp = {"payment_terms_code": "NET45", "shipping_agent_code": "UPS", "name": "Shop"}

    values = transfer.to_crm_values(rules, erp, entity="account")

    assert values == {"paymenttermscode": 3, "address1_shippingmethodcode": 4, "name": "Shop"}
    back = transfer.from_crm_values(rules, values, entity="account", table="customer")
    assert back == erp
    assert transfer.unmapped_option(values) is None


def test_no_code_clears_the_choice_and_no_choice_clears_the_code() -> None:
    rules = _rules()
    to_crm = transfer.to_crm_values(rules, {"payment_terms_code": ""}, entity="account")
    assert to_crm["paymenttermscode"] is None
    record = {"paymenttermscode": None, "address1_shippingmethodcode": None, "name": "x"}
    from_crm = transfer.from_crm_values(rules, record, entity="account", table="customer")
    assert from_crm["payment_terms_code"] == "" and from_crm["shipping_agent_code"] == ""


def test_an_unmapped_value_fails_the_record_unless_cleared() -> None:
    values = transfer.to_crm_values(_rules(), {"payment_terms_code": "COD"}, entity="account")
    assert isinstance(values["paymenttermscode"], UnmappedOption)
    message = transfer.unmapped_option(values)
    assert message is not None and "'COD' has no CRM option value" in message
    record = {"paymenttermscode": 9}
    back = transfer.from_crm_values(_rules(), record, entity="account", table="customer")
    assert "paymenttermscode value 9 has no payment terms code" in str(
        transfer.unmapped_option(back)
    )

    cleared = _rules(clear=True)
    assert (
        transfer.to_crm_values(cleared, {"payment_terms_code": "COD"}, entity="account")[
            "paymenttermscode"
        ]
        is None
    )
    assert (
        transfer.from_crm_values(cleared, record, entity="account", table="customer")[
            "payment_terms_code"
        ]
        == ""
    )


def test_without_loaded_tables_nothing_leaks_as_a_raw_code() -> None:
    """A run always loads every table; a rule built without them still refuses raw codes."""
    rules = transfer.rules_from(
        [IntegrationFieldMapping(mapping_name="CUSTOMER", field="payment_terms_code",
                                 integration_field="paymenttermscode", direction=Direction.to_crm)]
    )  # fmt: skip
    values = transfer.to_crm_values(rules, {"payment_terms_code": "NET30"}, entity="account")
    assert isinstance(values["paymenttermscode"], UnmappedOption)


@given(st.dictionaries(st.text(min_size=1, max_size=10).filter(str.strip), st.integers(0, 10**6),
                       max_size=8))  # fmt: skip
def test_a_one_to_one_table_round_trips_every_pair(pairs: dict[str, int]) -> None:
    pairs = {code.strip(): value for code, value in pairs.items()}
    unique = {code: value for code, value in pairs.items()
              if list(pairs.values()).count(value) == 1}  # fmt: skip
    table = OptionTable(OPTION_SETS["shipment_method"], to_crm=unique,
                        from_crm={v: c for c, v in unique.items()})  # fmt: skip
    for code, value in unique.items():
        assert table.crm_value(code) == value
        assert table.erp_code(table.crm_value(code), attribute="freighttermscode") == code
