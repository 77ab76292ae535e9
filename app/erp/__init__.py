"""The ERP service layer: master data, ledgers, sales documents and their actions.

Functions take the session first and keyword arguments after it, work on plain values
(dicts validated by the caller), ``flush`` but never ``commit``: the request or job that
calls them owns the transaction, so a multi-row change is all-or-nothing by construction.
"""
