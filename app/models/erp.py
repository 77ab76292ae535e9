"""ERP tables: master data, ledgers, sales documents and posted invoices (spec data-model.md).

Codes (``code``, ``no``) are the natural keys users see and are unique per table. References
between tables go by code and are real foreign keys, so a missing reference is refused by
the database too, not only by the API.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field

from app.models.base import TableBase, money

CODE = 20
NAME = 100
TEXT = 250


class Blockable(TableBase):
    blocked: bool = Field(default=False)


class Currency(TableBase, table=True):
    __tablename__ = "currency"
    code: str = Field(max_length=10, unique=True)
    description: str = Field(default="", max_length=NAME)
    symbol: str = Field(default="", max_length=10)
    exchange_rate: Decimal = money(Decimal(1))


class UnitOfMeasure(TableBase, table=True):
    __tablename__ = "unit_of_measure"
    code: str = Field(max_length=10, unique=True)
    description: str = Field(default="", max_length=NAME)


class Location(TableBase, table=True):
    __tablename__ = "location"
    code: str = Field(max_length=10, unique=True)
    name: str = Field(default="", max_length=NAME)


class Item(Blockable, table=True):
    __tablename__ = "item"
    no: str = Field(max_length=CODE, unique=True)
    description: str = Field(default="", max_length=NAME)
    base_unit_of_measure: str | None = Field(
        default=None, max_length=10, foreign_key="unit_of_measure.code"
    )
    unit_price: Decimal = money()
    unit_cost: Decimal = money()
    unit_volume: Decimal = money()
    gross_weight: Decimal = money()
    vendor_no: str = Field(default="", max_length=CODE)
    vendor_item_no: str = Field(default="", max_length=50)


class ItemLedgerEntryType(StrEnum):
    purchase = "purchase"
    sale = "sale"
    positive_adjmt = "positive_adjmt"
    negative_adjmt = "negative_adjmt"
    transfer = "transfer"


class ItemLedgerEntry(TableBase, table=True):
    """Append-only: quantities are signed (a sale is negative)."""

    __tablename__ = "item_ledger_entry"
    __table_args__ = (sa.Index("ix_item_ledger_entry_item_location", "item_no", "location_code"),)
    entry_no: int = Field(unique=True)
    item_no: str = Field(max_length=CODE, foreign_key="item.no")
    location_code: str = Field(default="", max_length=10)
    posting_date: date
    entry_type: ItemLedgerEntryType = Field(sa_type=sa.String(20))
    quantity: Decimal = money()
    document_no: str = Field(default="", max_length=CODE)


class Resource(Blockable, table=True):
    __tablename__ = "resource"
    no: str = Field(max_length=CODE, unique=True)
    name: str = Field(default="", max_length=NAME)
    base_unit_of_measure: str | None = Field(
        default=None, max_length=10, foreign_key="unit_of_measure.code"
    )
    unit_price: Decimal = money()
    unit_cost: Decimal = money()
    capacity: Decimal = money()
    vendor_no: str = Field(default="", max_length=CODE)


class CustomerPriceGroup(TableBase, table=True):
    __tablename__ = "customer_price_group"
    code: str = Field(max_length=10, unique=True)
    description: str = Field(default="", max_length=NAME)


class SalesType(StrEnum):
    customer = "customer"
    customer_price_group = "customer_price_group"
    all_customers = "all_customers"
    campaign = "campaign"


class SalesPrice(TableBase, table=True):
    __tablename__ = "sales_price"
    __table_args__ = (
        sa.UniqueConstraint(
            "item_no",
            "sales_type",
            "sales_code",
            "currency_code",
            "starting_date",
            "unit_of_measure_code",
            "minimum_quantity",
            name="uq_sales_price_key",
        ),
    )
    item_no: str = Field(max_length=CODE, foreign_key="item.no", index=True)
    sales_type: SalesType = Field(sa_type=sa.String(30))
    sales_code: str = Field(default="", max_length=CODE)
    currency_code: str = Field(default="", max_length=10)
    starting_date: date | None = None
    ending_date: date | None = None
    unit_of_measure_code: str = Field(default="", max_length=10)
    minimum_quantity: Decimal = money()
    unit_price: Decimal = money()


class Salesperson(TableBase, table=True):
    __tablename__ = "salesperson"
    code: str = Field(max_length=CODE, unique=True)
    name: str = Field(default="", max_length=NAME)
    email: str = Field(default="", max_length=NAME)
    phone: str = Field(default="", max_length=30)


class AddressFields(TableBase):
    address: str = Field(default="", max_length=NAME)
    address_2: str = Field(default="", max_length=50)
    city: str = Field(default="", max_length=30)
    post_code: str = Field(default="", max_length=20)
    county: str = Field(default="", max_length=30)
    country_code: str = Field(default="", max_length=10)


class Customer(AddressFields, table=True):
    __tablename__ = "customer"
    no: str = Field(max_length=CODE, unique=True)
    name: str = Field(default="", max_length=NAME)
    phone: str = Field(default="", max_length=30)
    email: str = Field(default="", max_length=80)
    home_page: str = Field(default="", max_length=80)
    contact: str = Field(default="", max_length=NAME)
    primary_contact_no: str = Field(default="", max_length=CODE)
    salesperson_code: str | None = Field(
        default=None, max_length=CODE, foreign_key="salesperson.code"
    )
    currency_code: str | None = Field(default=None, max_length=10, foreign_key="currency.code")
    payment_terms_code: str = Field(default="", max_length=10)
    shipment_method_code: str = Field(default="", max_length=10)
    shipping_agent_code: str = Field(default="", max_length=10)
    credit_limit_lcy: Decimal = money()
    customer_price_group: str | None = Field(
        default=None, max_length=10, foreign_key="customer_price_group.code"
    )
    blocked: bool = Field(default=False)


class CustLedgerDocumentType(StrEnum):
    invoice = "invoice"
    payment = "payment"
    credit_memo = "credit_memo"


class CustLedgerEntry(TableBase, table=True):
    __tablename__ = "cust_ledger_entry"
    entry_no: int = Field(unique=True)
    customer_no: str = Field(max_length=CODE, foreign_key="customer.no", index=True)
    posting_date: date
    document_type: CustLedgerDocumentType = Field(sa_type=sa.String(20))
    document_no: str = Field(default="", max_length=CODE)
    amount_lcy: Decimal = money()
    remaining_amount_lcy: Decimal = money()
    due_date: date | None = None
    open: bool = Field(default=True)


class ContactType(StrEnum):
    person = "person"
    company = "company"


class Contact(AddressFields, table=True):
    __tablename__ = "contact"
    no: str = Field(max_length=CODE, unique=True)
    type: ContactType = Field(default=ContactType.person, sa_type=sa.String(10))
    company_no: str = Field(default="", max_length=CODE)
    first_name: str = Field(default="", max_length=30)
    middle_name: str = Field(default="", max_length=30)
    surname: str = Field(default="", max_length=30)
    email: str = Field(default="", max_length=80)
    phone: str = Field(default="", max_length=30)
    mobile_phone: str = Field(default="", max_length=30)
    salesperson_code: str | None = Field(
        default=None, max_length=CODE, foreign_key="salesperson.code"
    )
    currency_code: str | None = Field(default=None, max_length=10, foreign_key="currency.code")


class OpportunityStatus(StrEnum):
    not_started = "not_started"
    in_progress = "in_progress"
    won = "won"
    lost = "lost"


class Opportunity(TableBase, table=True):
    __tablename__ = "opportunity"
    no: str = Field(max_length=CODE, unique=True)
    description: str = Field(default="", max_length=NAME)
    contact_no: str | None = Field(default=None, max_length=CODE, foreign_key="contact.no")
    contact_company_no: str = Field(default="", max_length=CODE)
    salesperson_code: str | None = Field(
        default=None, max_length=CODE, foreign_key="salesperson.code"
    )
    status: OpportunityStatus = Field(default=OpportunityStatus.not_started, sa_type=sa.String(20))
    estimated_value_lcy: Decimal = money()
    estimated_closing_date: date | None = None


class SalesDocumentType(StrEnum):
    quote = "quote"
    order = "order"


class SalesDocumentStatus(StrEnum):
    open = "open"
    released = "released"


class PartyFields(TableBase):
    """Bill-to and ship-to blocks shared by sales headers and posted invoices."""

    bill_to_customer_no: str = Field(default="", max_length=CODE)
    bill_to_name: str = Field(default="", max_length=NAME)
    bill_to_address: str = Field(default="", max_length=NAME)
    bill_to_address_2: str = Field(default="", max_length=50)
    bill_to_city: str = Field(default="", max_length=30)
    bill_to_post_code: str = Field(default="", max_length=20)
    bill_to_county: str = Field(default="", max_length=30)
    bill_to_country_code: str = Field(default="", max_length=10)
    ship_to_name: str = Field(default="", max_length=NAME)
    ship_to_address: str = Field(default="", max_length=NAME)
    ship_to_address_2: str = Field(default="", max_length=50)
    ship_to_city: str = Field(default="", max_length=30)
    ship_to_post_code: str = Field(default="", max_length=20)
    ship_to_county: str = Field(default="", max_length=30)
    ship_to_country_code: str = Field(default="", max_length=10)
    currency_code: str = Field(default="", max_length=10)
    salesperson_code: str = Field(default="", max_length=CODE)
    payment_terms_code: str = Field(default="", max_length=10)
    shipping_agent_code: str = Field(default="", max_length=10)
    work_description: str = Field(default="", max_length=2048)


class SalesHeader(PartyFields, table=True):
    __tablename__ = "sales_header"
    __table_args__ = (sa.UniqueConstraint("document_type", "no", name="uq_sales_header_no"),)
    document_type: SalesDocumentType = Field(sa_type=sa.String(10))
    no: str = Field(max_length=CODE)
    sell_to_customer_no: str = Field(max_length=CODE, foreign_key="customer.no", index=True)
    status: SalesDocumentStatus = Field(default=SalesDocumentStatus.open, sa_type=sa.String(10))
    your_reference: str = Field(default="", max_length=NAME)
    external_document_no: str = Field(default="", max_length=50)
    quote_no: str = Field(default="", max_length=CODE)
    requested_delivery_date: date | None = None
    shipment_method_code: str = Field(default="", max_length=10)
    payment_discount_pct: Decimal = money()
    invoice_discount_amount: Decimal = money()
    last_shipment_date: date | None = None


class SalesLineType(StrEnum):
    item = "item"
    resource = "resource"


class SalesLine(TableBase, table=True):
    __tablename__ = "sales_line"
    __table_args__ = (
        sa.UniqueConstraint("document_type", "document_no", "line_no", name="uq_sales_line_no"),
        sa.ForeignKeyConstraint(
            ["document_type", "document_no"],
            ["sales_header.document_type", "sales_header.no"],
            ondelete="CASCADE",
            name="fk_sales_line_header",
        ),
        sa.Index("ix_sales_line_type_no", "type", "no"),
    )
    document_type: SalesDocumentType = Field(sa_type=sa.String(10))
    document_no: str = Field(max_length=CODE)
    line_no: int
    type: SalesLineType = Field(default=SalesLineType.item, sa_type=sa.String(10))
    no: str = Field(max_length=CODE)
    description: str = Field(default="", max_length=NAME)
    location_code: str = Field(default="", max_length=10)
    quantity: Decimal = money()
    quantity_shipped: Decimal = money()
    quantity_invoiced: Decimal = money()
    unit_of_measure_code: str = Field(default="", max_length=10)
    unit_price: Decimal = money()
    line_discount_amount: Decimal = money()
    amount: Decimal = money()
    amount_including_vat: Decimal = money()
    requested_delivery_date: date | None = None


class PurchaseLine(TableBase, table=True):
    """Scheduled receipts; only what item availability needs."""

    __tablename__ = "purchase_line"
    __table_args__ = (
        sa.UniqueConstraint("document_no", "line_no", name="uq_purchase_line_no"),
        sa.Index("ix_purchase_line_item_location", "item_no", "location_code"),
    )
    document_no: str = Field(max_length=CODE)
    line_no: int
    item_no: str = Field(max_length=CODE, foreign_key="item.no")
    location_code: str = Field(default="", max_length=10)
    outstanding_quantity: Decimal = money()
    expected_receipt_date: date | None = None


class SalesInvoiceHeader(PartyFields, table=True):
    __tablename__ = "sales_invoice_header"
    no: str = Field(max_length=CODE, unique=True)
    order_no: str = Field(default="", max_length=CODE, index=True)
    your_reference: str = Field(default="", max_length=NAME)
    sell_to_customer_no: str = Field(max_length=CODE, foreign_key="customer.no", index=True)
    posting_date: date
    due_date: date | None = None
    shipment_date: date | None = None
    amount: Decimal = money()
    amount_including_vat: Decimal = money()
    invoice_discount_amount: Decimal = money()


class SalesInvoiceLine(TableBase, table=True):
    __tablename__ = "sales_invoice_line"
    __table_args__ = (
        sa.UniqueConstraint("document_no", "line_no", name="uq_sales_invoice_line_no"),
    )
    document_no: str = Field(
        max_length=CODE, foreign_key="sales_invoice_header.no", ondelete="CASCADE"
    )
    line_no: int
    type: SalesLineType = Field(default=SalesLineType.item, sa_type=sa.String(10))
    no: str = Field(max_length=CODE)
    description: str = Field(default="", max_length=NAME)
    location_code: str = Field(default="", max_length=10)
    quantity: Decimal = money()
    unit_of_measure_code: str = Field(default="", max_length=10)
    unit_price: Decimal = money()
    line_discount_amount: Decimal = money()
    amount: Decimal = money()
    amount_including_vat: Decimal = money()


class Note(TableBase, table=True):
    """A note (BC record link) on a record, by table name and system_id."""

    __tablename__ = "note"
    __table_args__ = (sa.Index("ix_note_record", "record_table", "record_id"),)
    record_table: str = Field(max_length=50)
    record_id: uuid.UUID
    description: str = Field(default="", max_length=TEXT)
    text: str = Field(default="", max_length=8000)
