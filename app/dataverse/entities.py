"""Entity sets the integration uses and their primary keys.

The client needs the primary key name to put a client-generated id into a create body.
Sets not listed here take ``primary_key=`` explicitly; the client never guesses a plural.
"""

from __future__ import annotations

PRIMARY_KEYS: dict[str, str] = {
    "uomschedules": "uomscheduleid",
    "uoms": "uomid",
    "products": "productid",
    "pricelevels": "pricelevelid",
    "productpricelevels": "productpricelevelid",
    "opportunities": "opportunityid",
    "quotes": "quoteid",
    "quotedetails": "quotedetailid",
    "salesorders": "salesorderid",
    "salesorderdetails": "salesorderdetailid",
    "invoices": "invoiceid",
    "invoicedetails": "invoicedetailid",
    "accounts": "accountid",
    "contacts": "contactid",
    "systemusers": "systemuserid",
    "transactioncurrencies": "transactioncurrencyid",
    "annotations": "annotationid",
    "posts": "postid",
    "roles": "roleid",
    "solutions": "solutionid",
    "nav_connections": "nav_connectionid",
    "nav_accountstatisticses": "nav_accountstatisticsid",
}


def primary_key_for(entity_set: str, *, primary_key: str | None = None) -> str:
    if primary_key:
        return primary_key
    try:
        return PRIMARY_KEYS[entity_set]
    except KeyError:
        msg = f"unknown entity set {entity_set!r}: pass primary_key= to name its key column"
        raise ValueError(msg) from None
