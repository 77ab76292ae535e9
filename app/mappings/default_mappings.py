"""The default table and field mappings, as data.

BC's field names are translated to our columns; BC fields our ERP does not keep (fax,
pager, sales header totals) are left out. Option-set attributes (payment terms, shipment
method, shipping agent) carry ERP codes translated by the option mappings
(``app.mappings.option_sets``), as BC's "CRM Option Mapping" does.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.models.integration import DeletionConflictResolution, Direction

TO, FROM, BI = Direction.to_crm, Direction.from_crm, Direction.bidirectional


@dataclass(frozen=True)
class FieldDefault:
    field: str  # ERP field; "" when a constant is written to the CRM attribute
    integration_field: str  # CRM attribute; "" when a constant is written to the ERP field
    direction: Direction
    constant_value: str = ""
    validate_field: bool = True
    not_null: bool = False
    clear_value_on_failed_sync: bool = False
    is_enabled: bool = True
    use_for_match: bool = False


@dataclass(frozen=True)
class JobDefault:
    minutes_between_runs: int
    inactivity_timeout_minutes: int
    category: str = ""


@dataclass(frozen=True)
class MappingDefault:
    name: str
    table_name: str
    integration_table: str
    direction: Direction
    fields: tuple[FieldDefault, ...]
    table_filter: str = ""
    integration_table_filter: str = ""
    dependency_filter: str = ""
    synch_only_coupled_records: bool = True
    job: JobDefault | None = None
    deletion_conflict_resolution: DeletionConflictResolution = DeletionConflictResolution.none
    create_new_in_case_of_no_match: bool = False
    synch_after_bulk_coupling: bool = False


def f(
    erp: str,
    crm: str,
    direction: Direction,
    *,
    validate_field: bool = True,
    not_null: bool = False,
    clear_value_on_failed_sync: bool = False,
    use_for_match: bool = False,
) -> FieldDefault:
    return FieldDefault(
        erp,
        crm,
        direction,
        validate_field=validate_field,
        not_null=not_null,
        clear_value_on_failed_sync=clear_value_on_failed_sync,
        use_for_match=use_for_match,
    )


def const_to(value: str, crm: str) -> FieldDefault:
    return FieldDefault("", crm, TO, constant_value=value)


def const_from(value: str, erp: str) -> FieldDefault:
    return FieldDefault(erp, "", FROM, constant_value=value)


def option(erp: str, crm: str, direction: Direction) -> FieldDefault:
    """An ERP code <-> a CRM option set value, through the option mappings."""
    return FieldDefault(erp, crm, direction)


OWNER = (const_to("systemuser", "owneridtype"), f("salesperson_code", "ownerid", TO, not_null=True))


def address(
    direction: Direction, *, prefix: str, erp_prefix: str = "", name: bool = True
) -> tuple[FieldDefault, ...]:
    pairs = [
        ("address", "line1"), ("address_2", "line2"), ("city", "city"),
        ("country_code", "country"), ("post_code", "postalcode"), ("county", "stateorprovince"),
    ]  # fmt: skip
    if name:
        pairs.insert(0, ("name", "name"))
    return tuple(f(f"{erp_prefix}{erp}", f"{prefix}{crm}", direction) for erp, crm in pairs)


SALESPEOPLE = MappingDefault(
    "SALESPEOPLE", "salesperson", "systemuser", FROM,
    (
        f("email", "internalemailaddress", FROM, use_for_match=True),
        f("name", "fullname", FROM),
        f("phone", "mobilephone", FROM),
    ),
    integration_table_filter="isdisabled eq false",
    job=JobDefault(30, 1440),
)  # fmt: skip

CURRENCY = MappingDefault(
    "CURRENCY", "currency", "transactioncurrency", TO,
    (
        f("code", "isocurrencycode", TO, use_for_match=True),
        f("symbol", "currencysymbol", TO),
        f("description", "currencyname", TO),
    ),
    job=JobDefault(30, 720),
    create_new_in_case_of_no_match=True,
    synch_after_bulk_coupling=True,
)  # fmt: skip

CUSTOMER = MappingDefault(
    "CUSTOMER", "customer", "account", BI,
    (
        *OWNER,
        f("name", "name", BI, use_for_match=True),
        f("contact", "address1_primarycontactname", BI, validate_field=False),
        f("address", "address1_line1", BI),
        f("address_2", "address1_line2", BI),
        f("post_code", "address1_postalcode", BI),
        f("city", "address1_city", BI),
        f("country_code", "address1_country", BI, validate_field=False),
        f("county", "address1_stateorprovince", BI),
        f("currency_code", "transactioncurrencyid", BI),
        f("email", "emailaddress1", BI),
        f("home_page", "websiteurl", BI),
        f("phone", "telephone1", BI),
        option("shipment_method_code", "address1_freighttermscode", BI),
        option("shipping_agent_code", "address1_shippingmethodcode", BI),
        option("payment_terms_code", "paymenttermscode", BI),
        f("credit_limit_lcy", "creditlimit", TO),
        f("primary_contact_no", "primarycontactid", BI, clear_value_on_failed_sync=True),
    ),
    table_filter="blocked eq false",
    integration_table_filter="statecode eq 0 and customertypecode eq 3",
    dependency_filter="SALESPEOPLE|CURRENCY",
    job=JobDefault(30, 720, "BCI CUST"),
)  # fmt: skip

CONTACT = MappingDefault(
    "CONTACT", "contact", "contact", BI,
    (
        *OWNER,
        f("currency_code", "transactioncurrencyid", BI),
        f("address", "address1_line1", BI),
        f("address_2", "address1_line2", BI),
        f("post_code", "address1_postalcode", BI),
        f("city", "address1_city", BI),
        f("country_code", "address1_country", BI, validate_field=False),
        f("county", "address1_stateorprovince", BI),
        f("email", "emailaddress1", BI, use_for_match=True),
        f("first_name", "firstname", BI),
        f("middle_name", "middlename", BI),
        f("surname", "lastname", BI),
        f("mobile_phone", "mobilephone", BI),
        f("phone", "telephone1", BI),
        const_from("person", "type"),
        const_to("account", "parentcustomeridtype"),
        # BC resolves the parent in a subscriber; here a field mapping that
        # app.sync.contact_rules resolves (the company contact of customer X is contact X).
        f("company_no", "parentcustomerid", BI),
    ),
    table_filter="type eq 'person' and company_no ne ''",
    integration_table_filter="_parentcustomerid_value ne null and statecode eq 0",
    dependency_filter="CUSTOMER",
    job=JobDefault(30, 720, "BCI CUST"),
)  # fmt: skip

UNIT_OF_MEASURE = MappingDefault(
    "UNIT OF MEASURE", "unit_of_measure", "uomschedule", TO,
    (f("code", "name", TO, use_for_match=True), f("code", "baseuomname", TO)),
    job=JobDefault(30, 720),
    create_new_in_case_of_no_match=True,
    synch_after_bulk_coupling=True,
)  # fmt: skip

ITEM_PRODUCT = MappingDefault(
    "ITEM-PRODUCT", "item", "product", BI,
    (
        f("no", "productnumber", TO, use_for_match=True),
        f("description", "name", BI),
        f("unit_price", "price", TO),
        f("unit_cost", "standardcost", TO),
        f("unit_cost", "currentcost", TO),
        f("unit_volume", "stockvolume", TO),
        f("gross_weight", "stockweight", TO),
        f("vendor_no", "vendorid", TO),
        f("vendor_item_no", "vendorpartnumber", TO),
        f("inventory", "quantityonhand", TO),
        f("base_unit_of_measure", "defaultuomscheduleid", BI),
    ),
    table_filter="blocked eq false",
    integration_table_filter="producttypecode eq 1 and statecode eq 0",
    dependency_filter="UNIT OF MEASURE",
    job=JobDefault(30, 1440),
)  # fmt: skip

RESOURCE_PRODUCT = MappingDefault(
    "RESOURCE-PRODUCT", "resource", "product", BI,
    (
        f("no", "productnumber", TO, use_for_match=True),
        f("name", "name", BI),
        f("unit_price", "price", TO),
        f("unit_cost", "standardcost", TO),
        f("unit_cost", "currentcost", TO),
        f("vendor_no", "vendorid", TO),
        f("capacity", "quantityonhand", TO),
        f("base_unit_of_measure", "defaultuomscheduleid", TO),
    ),
    table_filter="blocked eq false",
    integration_table_filter="producttypecode eq 3 and statecode eq 0",
    dependency_filter="UNIT OF MEASURE",
    job=JobDefault(30, 720),
)  # fmt: skip

CUSTPRCGRP_PRICE = MappingDefault(
    "CUSTPRCGRP-PRICE", "customer_price_group", "pricelevel", TO,
    (f("code", "name", TO, use_for_match=True),),
    dependency_filter="CURRENCY|ITEM-PRODUCT",
    job=JobDefault(30, 1440),
)  # fmt: skip

SALESPRC_PRODPRICE = MappingDefault(
    "SALESPRC-PRODPRICE", "sales_price", "productpricelevel", TO,
    (
        f("sales_code", "pricelevelid", TO),
        f("item_no", "productid", TO),
        f("item_no", "productnumber", TO),
        f("currency_code", "transactioncurrencyid", TO),
        const_to("1", "pricingmethodcode"),  # 1 = Currency Amount
        f("unit_price", "amount", TO),
    ),
    table_filter="sales_type eq 'customer_price_group' and sales_code ne ''",
    dependency_filter="CUSTPRCGRP-PRICE|ITEM-PRODUCT",
    synch_only_coupled_records=False,
    job=JobDefault(30, 1440),
)  # fmt: skip

OPPORTUNITY = MappingDefault(
    "OPPORTUNITY", "opportunity", "opportunity", BI,
    (
        f("description", "name", BI),
        f("contact_no", "parentcontactid", TO),
        f("contact_company_no", "parentaccountid", TO),
        *OWNER,
        f("estimated_value_lcy", "estimatedvalue", TO),
        f("estimated_closing_date", "estimatedclosedate", TO),
    ),
    table_filter="status eq 'not_started' or status eq 'in_progress'",
    dependency_filter="CONTACT",
    synch_only_coupled_records=False,
)  # fmt: skip

POSTEDSALESINV_INV = MappingDefault(
    "POSTEDSALESINV-INV", "sales_invoice_header", "invoice", TO,
    (
        f("no", "invoicenumber", TO, use_for_match=True),
        *OWNER,
        f("currency_code", "transactioncurrencyid", TO),
        f("due_date", "duedate", TO),
        *address(TO, prefix="shipto_", erp_prefix="ship_to_"),
        f("shipment_date", "datedelivered", TO),
        *address(TO, prefix="billto_", erp_prefix="bill_to_"),
        f("amount", "totalamountlessfreight", TO),
        f("amount_including_vat", "totalamount", TO),
        f("invoice_discount_amount", "discountamount", TO),
        option("shipping_agent_code", "shippingmethodcode", TO),
        option("payment_terms_code", "paymenttermscode", TO),
        f("work_description", "description", TO, validate_field=False),
    ),
    dependency_filter="ITEM-PRODUCT|RESOURCE-PRODUCT|OPPORTUNITY",
    # BC says only coupled; then no posted invoice would ever reach the CRM by this job,
    # so this job creates them too (a missing dependency is a per-record error, retried).
    synch_only_coupled_records=False,
    job=JobDefault(30, 1440),
)  # fmt: skip

POSTEDSALESLINE_INV = MappingDefault(
    "POSTEDSALESLINE-INV", "sales_invoice_line", "invoicedetail", TO,
    (
        f("quantity", "quantity", TO),
        f("line_discount_amount", "manualdiscountamount", TO),
        f("unit_price", "priceperunit", TO),
        const_to("true", "ispriceoverridden"),
        f("amount", "baseamount", TO),
        f("amount_including_vat", "extendedamount", TO),
    ),
    dependency_filter="POSTEDSALESINV-INV",
    synch_only_coupled_records=False,
)  # fmt: skip

SALES_ORDER_DEPENDENCIES = "CUSTOMER|ITEM-PRODUCT|RESOURCE-PRODUCT|OPPORTUNITY"
SALES_ORDER_FILTER = "document_type eq 'order' and status eq 'released'"

SALESORDER_ORDER_LEGACY = MappingDefault(
    "SALESORDER-ORDER", "sales_header", "salesorder", TO,
    (
        f("no", "ordernumber", TO),
        *OWNER,
        f("currency_code", "transactioncurrencyid", TO),
        *address(TO, prefix="shipto_", erp_prefix="ship_to_"),
        f("last_shipment_date", "datefulfilled", TO),
        *address(TO, prefix="billto_", erp_prefix="bill_to_"),
        f("invoice_discount_amount", "discountamount", TO),
        option("shipping_agent_code", "shippingmethodcode", TO),
        option("payment_terms_code", "paymenttermscode", TO),
        f("requested_delivery_date", "requestdeliveryby", TO),
    ),
    table_filter=SALES_ORDER_FILTER,
    dependency_filter=SALES_ORDER_DEPENDENCIES,
    job=JobDefault(30, 720),
)  # fmt: skip

SALESORDER_ORDER_BIDIRECTIONAL = MappingDefault(
    "SALESORDER-ORDER", "sales_header", "salesorder", BI,
    (
        *OWNER,
        const_from("order", "document_type"),
        f("no", "bcbi_businesscentralordernumber", TO),
        f("your_reference", "ordernumber", FROM),
        const_to("account", "customeridtype"),
        f("sell_to_customer_no", "customerid", BI),
        f("currency_code", "transactioncurrencyid", BI),
        *address(BI, prefix="shipto_", erp_prefix="ship_to_"),
        f("last_shipment_date", "datefulfilled", TO),
        *address(BI, prefix="billto_", erp_prefix="bill_to_", name=False),
        f("invoice_discount_amount", "discountamount", TO),
        option("shipping_agent_code", "shippingmethodcode", BI),
        option("payment_terms_code", "paymenttermscode", BI),
        option("shipment_method_code", "freighttermscode", BI),
        f("requested_delivery_date", "requestdeliveryby", BI),
        f("payment_discount_pct", "discountpercentage", BI),
        f("work_description", "description", BI, validate_field=False),
    ),
    table_filter=SALES_ORDER_FILTER,
    integration_table_filter="statecode eq 1",
    dependency_filter=SALES_ORDER_DEPENDENCIES,
    job=JobDefault(30, 720),
)  # fmt: skip

SOLINE_ORDERDETAIL = MappingDefault(
    "SOLINE-ORDERDETAIL", "sales_line", "salesorderdetail", BI,
    (
        const_from("order", "document_type"),
        const_to("1", "producttypecode"),  # 1 = Product
        f("no", "productid", BI),
        f("line_no", "bcbi_businesscentrallinenumber", BI),
        f("quantity", "quantity", BI),
        f("quantity_shipped", "quantityshipped", BI),
        const_to("true", "ispriceoverridden"),
        f("unit_price", "priceperunit", BI),
        f("amount", "baseamount", BI),
        f("amount_including_vat", "extendedamount", BI),
        f("requested_delivery_date", "requestdeliveryby", BI),
    ),
    table_filter="(type eq 'item' or type eq 'resource') and document_type eq 'order'",
    dependency_filter="SALESORDER-ORDER",
    synch_only_coupled_records=False,
    deletion_conflict_resolution=DeletionConflictResolution.remove_coupling,
)  # fmt: skip

BASE_MAPPINGS: tuple[MappingDefault, ...] = (
    SALESPEOPLE, CURRENCY, CUSTOMER, CONTACT, UNIT_OF_MEASURE, ITEM_PRODUCT, RESOURCE_PRODUCT,
    CUSTPRCGRP_PRICE, SALESPRC_PRODPRICE, OPPORTUNITY, POSTEDSALESINV_INV, POSTEDSALESLINE_INV,
)  # fmt: skip


def default_mappings(
    *, legacy_sales_orders: bool, bidirectional_sales_orders: bool
) -> tuple[MappingDefault, ...]:
    """The defaults for a setup: the base set plus the sales order mappings it enables."""
    if bidirectional_sales_orders:
        return (*BASE_MAPPINGS, SALESORDER_ORDER_BIDIRECTIONAL, SOLINE_ORDERDETAIL)
    if legacy_sales_orders:
        return (*BASE_MAPPINGS, SALESORDER_ORDER_LEGACY)
    return BASE_MAPPINGS


ALL_DEFAULT_NAMES = frozenset(
    m.name for m in (*BASE_MAPPINGS, SALESORDER_ORDER_BIDIRECTIONAL, SOLINE_ORDERDETAIL)
)
