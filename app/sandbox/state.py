"""One running sandbox: configuration, store, identity, limits, faults and counters.

``app.state.sandbox`` is this object, so in-process tests can read rows and counters
directly (``sandbox.rows("products")``, ``sandbox.counters.early_requests``).
"""

from __future__ import annotations

import random
from typing import Any

from app.sandbox.batch import BatchRunner
from app.sandbox.config import SandboxConfig
from app.sandbox.operations.records import Identity
from app.sandbox.protection import Counters, Protection
from app.sandbox.schema.entities import ENTITIES
from app.sandbox.seed import load_or_seed
from app.sandbox.store import Store
from app.sandbox.webapi import WebApi
from app.sandbox.webhooks.notifications import OrgIds, Webhooks


class Faults:
    """Random faults drawn from one seeded generator, so a seeded run repeats."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.random = random.Random(config.seed)  # noqa: S311 - fault injection, not security

    def reseed(self) -> None:
        self.random.seed(self.config.seed)

    def error_status(self) -> int | None:
        if self.config.error_rate > 0 and self.random.random() < self.config.error_rate:
            return self.random.choice(self.config.error_statuses)
        return None

    def should_throttle(self) -> bool:
        return self.config.throttle_rate > 0 and self.random.random() < self.config.throttle_rate

    def should_drop(self) -> bool:
        return self.config.drop_rate > 0 and self.random.random() < self.config.drop_rate


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.store = Store(config.db_path, config.alternate_keys)
        for entity in ENTITIES:
            self.store.ensure_modified_index(entity.set_name)
        self.identity: Identity = load_or_seed(self.store, config)
        self.counters = Counters()
        self.protection = Protection(config, self.counters)
        self.faults = Faults(config)
        self.webapi = WebApi(self.store, config, self.identity)
        self.batch = BatchRunner(self.webapi)
        self.webhooks = Webhooks(self.store, config.webhooks, self._org_ids())
        self.store.on_commit = self.webhooks.on_commit

    def _org_ids(self) -> OrgIds:
        return OrgIds(self.identity.organization_id, self.identity.business_unit_id)

    # --- Python handle for tests ----------------------------------------------------------
    def rows(self, entity_set: str) -> list[dict[str, Any]]:
        return self.store.rows(entity_set)

    def get(self, entity_set: str, record_id: str) -> dict[str, Any] | None:
        return self.store.get(entity_set, record_id.lower())

    def count(self, entity_set: str) -> int:
        return self.store.count(entity_set)

    def associated(self, relationship: str, record_id: str, *, from_left: bool = True) -> list[str]:
        return self.store.associated(relationship, record_id, from_left=from_left)

    @property
    def user_id(self) -> str:
        return self.identity.user_id

    # --- control --------------------------------------------------------------------------
    def reset(self, *, data: bool = False) -> None:
        """Zero the counters and throttling state, forget queued webhook deliveries and
        restore their settings; with ``data`` also wipe and reseed rows."""
        self.counters.reset()
        self.protection.reset()
        self.faults.reseed()
        self.webhooks.reset()
        if data:
            self.store.on_commit = None  # a reseed announces nothing
            self.store.wipe()
            self.identity = load_or_seed(self.store, self.config)
            self.webapi = WebApi(self.store, self.config, self.identity)
            self.batch = BatchRunner(self.webapi)
            self.webhooks.org = self._org_ids()
            self.webhooks.reset()  # the registrations went with the rows
            self.store.on_commit = self.webhooks.on_commit

    def close(self) -> None:
        self.store.close()
