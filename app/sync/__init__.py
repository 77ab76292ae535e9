"""The synchronization engine: run one mapping (``runner``), its ERP -> CRM and CRM -> ERP
passes (``to_crm``, ``from_crm``), field transfer, conflict decisions, watermarks, the sync
log and progress, the engine's errors, the CRM-side rules of the standard mappings
(``crm_rules``, ``contact_rules``) and the CRM client built from the stored connection.

Per-mapping rules that live above the engine (sales orders, posted invoices) reach it
through ``sync_pass.MappingHooks``, given by the caller (``app.catalog`` wires them).

More than 15 modules (about 4,000 lines): the two passes and the runner are split from
what they share (the pass state, the work items, transfer, conflicts, watermarks, log,
progress) so that nothing in the engine imports back up the chain; loop prevention by
content is three small modules (``fingerprints``, ``field_merge``, ``coupling_state``);
the rules of individual mappings are modules of their own (``crm_rules``,
``contact_rules``); ``crm_usage`` and ``log_pages`` are what the console reads of the
engine's work.
"""
