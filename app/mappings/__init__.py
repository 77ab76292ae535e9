"""Integration table and field mappings: reading and editing them, the field catalog
(what each ERP table and CRM entity offers), and the default mappings as data."""
