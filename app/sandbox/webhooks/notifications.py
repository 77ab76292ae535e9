"""From committed changes to queued deliveries, held until the request has its answer.

The store calls ``on_commit`` after each outermost commit with what the transaction
changed; matching steps become deliveries. Inside an HTTP request they are held in the
request's scope and released when its response has gone out (``request_scope``), so a
receiver never hears of a change before the client that made it; a change committed
outside any request (a test seeding rows in-process) is released at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from app import exact_json
from app.clock import utc_now
from app.logs import get_logger
from app.sandbox.config import WebhookSettings
from app.sandbox.store import Store
from app.sandbox.webhooks.auth import credentials
from app.sandbox.webhooks.changes import Change
from app.sandbox.webhooks.context import Operation, Org, execution_context, request_headers
from app.sandbox.webhooks.dispatcher import Delivery, Dispatcher
from app.sandbox.webhooks.steps import Step, active_steps

log = get_logger("salesbridge.sandbox.webhooks")
_REGISTRATION = frozenset(
    {"serviceendpoints", "sdkmessageprocessingsteps", "sdkmessages", "sdkmessagefilters"}
)


@dataclass(frozen=True)
class OrgIds:
    organization_id: str
    business_unit_id: str


@dataclass
class _RequestScope:
    owner: Webhooks
    domain: str
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    held: list[Delivery] = field(default_factory=list)


_scope: ContextVar[_RequestScope | None] = ContextVar("sandbox_webhook_scope", default=None)


class Webhooks:
    def __init__(self, store: Store, settings: WebhookSettings, org: OrgIds) -> None:
        self.store = store
        self.org = org
        self.initial = WebhookSettings(**settings.values())  # what a reset goes back to
        self.dispatcher = Dispatcher(settings)
        # The active steps, read again only after a commit that changed a registration
        # table (every write to them goes through the journaled write path).
        self._steps: list[Step] | None = None

    @contextmanager
    def request_scope(self, domain: str) -> Iterator[None]:
        """Hold what one HTTP request commits until its response is sent."""
        scope = _RequestScope(self, domain)
        token = _scope.set(scope)
        try:
            yield
        finally:
            _scope.reset(token)
            self.dispatcher.release(scope.held)

    def reset(self) -> None:
        self.dispatcher.reset(self.initial)
        self._steps = None

    def on_commit(self, changes: list[Any]) -> None:
        """Queue a delivery per change and matching step; never fails the committed write."""
        try:
            self._announce([change for change in changes if isinstance(change, Change)])
        except Exception:  # the write is committed: a notification bug must not fail its answer
            log.exception("webhook_announce_failed")

    def _announce(self, changes: list[Change]) -> None:
        if any(change.entity.set_name in _REGISTRATION for change in changes):
            self._steps = None
        if self._steps is None:
            self._steps = active_steps(self.store)
        steps = self._steps
        if not steps or not changes:
            return
        scope = _scope.get()
        if scope is not None and scope.owner is not self:
            scope = None
        org = self._org(scope.domain if scope else "localhost")
        correlation_id = scope.correlation_id if scope else str(uuid.uuid4())
        created_on = utc_now()
        users: dict[str, str | None] = {}
        deliveries = []
        for change in changes:
            for step in steps:
                if not step.applies(change):
                    continue
                for user_id in (change.user_id, change.initiating_user_id):
                    if user_id not in users:
                        user = self.store.get("systemusers", user_id)
                        users[user_id] = user.get("azureactivedirectoryobjectid") if user else None
                operation = Operation(change, step, str(uuid.uuid4()), correlation_id, created_on)
                auth = credentials(step.endpoint.authtype, step.endpoint.authvalue)
                deliveries.append(
                    Delivery(
                        operation.operation_id,
                        step.step_id,
                        step.endpoint.url,
                        {**request_headers(operation, org), **auth.headers},
                        auth.params,
                        exact_json.encode(execution_context(operation, org, users)),
                    )
                )
        copies = self.dispatcher.prepare(deliveries)
        if scope is not None:
            scope.held.extend(copies)
        else:
            self.dispatcher.release(copies)

    def _org(self, domain: str) -> Org:
        row = self.store.get("organizations", self.org.organization_id) or {}
        name = str(row.get("name") or "Sandbox organization")
        return Org(self.org.organization_id, name, self.org.business_unit_id, domain)
