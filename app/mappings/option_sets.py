"""The option sets the ERP's codes map to, and a loaded table of one set, as plain data.

Payment terms, shipment methods and shipping agents are codes in the ERP and choice
columns (option sets) in the CRM: ``paymenttermscode``, ``freighttermscode`` and
``shippingmethodcode`` on orders, quotes and invoices, and their ``address1_``
counterparts on accounts, as BC maps them. Each option set has one table of
ERP code <-> option value pairs, used by every attribute of that set, both ways.

The defaults are a stock Dynamics 365 Sales org's options, with codes in the style of
BC's own (``NET30`` for "Net 30").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class OptionDefault:
    erp_code: str
    option_value: int
    caption: str


@dataclass(frozen=True)
class OptionSet:
    name: str
    title: str
    crm_attributes: tuple[str, ...]
    defaults: tuple[OptionDefault, ...]


OPTION_SETS: dict[str, OptionSet] = {
    option_set.name: option_set
    for option_set in (
        OptionSet(
            "payment_terms",
            "payment terms",
            ("paymenttermscode",),
            (
                OptionDefault("NET30", 1, "Net 30"),
                OptionDefault("2%10NET30", 2, "2% 10, Net 30"),
                OptionDefault("NET45", 3, "Net 45"),
                OptionDefault("NET60", 4, "Net 60"),
            ),
        ),
        OptionSet(
            "shipment_method",
            "shipment method",
            ("freighttermscode", "address1_freighttermscode", "address2_freighttermscode"),
            (OptionDefault("FOB", 1, "FOB"), OptionDefault("NOCHARGE", 2, "No Charge")),
        ),
        OptionSet(
            "shipping_agent",
            "shipping agent",
            ("shippingmethodcode", "address1_shippingmethodcode", "address2_shippingmethodcode"),
            (
                OptionDefault("AIRBORNE", 1, "Airborne"),
                OptionDefault("DHL", 2, "DHL"),
                OptionDefault("FEDEX", 3, "FedEx"),
                OptionDefault("UPS", 4, "UPS"),
                OptionDefault("POSTALMAIL", 5, "Postal Mail"),
                OptionDefault("FULLLOAD", 6, "Full Load"),
                OptionDefault("WILLCALL", 7, "Will Call"),
            ),
        ),
    )
}
_BY_ATTRIBUTE = {name: s for s in OPTION_SETS.values() for name in s.crm_attributes}
HOW_TO_MAP = "add the pair in the option mappings (POST /api/v1/option-mappings)"


def option_set_for(crm_attribute: str) -> OptionSet | None:
    """The option set a CRM choice attribute takes its values from, if ERP codes map to it."""
    return _BY_ATTRIBUTE.get(crm_attribute)


@dataclass(frozen=True)
class UnmappedOption:
    """A value with no pair in its option set's table; the record that needs it fails."""

    message: str


@dataclass(frozen=True)
class OptionTable:
    """One option set's pairs, loaded once per run."""

    option_set: OptionSet
    to_crm: Mapping[str, int] = field(default_factory=dict)
    from_crm: Mapping[int, str] = field(default_factory=dict)

    def crm_value(self, code: object) -> int | None | UnmappedOption:
        """An ERP code's option value; no code clears the CRM choice."""
        text = str(code or "").strip()
        if not text:
            return None
        if text in self.to_crm:
            return self.to_crm[text]
        what = self.option_set.title
        return UnmappedOption(f"The {what} code {text!r} has no CRM option value: {HOW_TO_MAP}.")

    def erp_code(self, value: object, *, attribute: str) -> str | UnmappedOption:
        """A CRM option value's ERP code; no value clears the ERP code."""
        if value is None or value == "":
            return ""
        if isinstance(value, int) and not isinstance(value, bool) and value in self.from_crm:
            return self.from_crm[value]
        what = self.option_set.title
        return UnmappedOption(
            f"The CRM {attribute} value {value!r} has no {what} code in the ERP: {HOW_TO_MAP}."
        )
