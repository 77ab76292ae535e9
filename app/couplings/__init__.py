"""Couplings (``integration_record``): couple, uncouple, restore skipped, stale couplings,
match-based coupling, and "synchronize now" / "create in CRM" / "create in ERP" for chosen
records."""
