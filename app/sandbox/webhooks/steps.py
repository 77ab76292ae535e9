"""Which registered steps a committed change triggers.

The sandbox runs asynchronous post-operation steps (``mode`` 1, ``stage`` 40) that are
enabled (``statecode`` 0) and whose event handler is a webhook (a ``serviceendpoints`` row
with ``contract`` 8). A step names its message (``sdkmessageid``) and usually a table
(``sdkmessagefilterid``; without one it applies to every table); an Update step with
``filteringattributes`` runs only when the Target holds one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.sandbox.store import Store, column, table
from app.sandbox.webhooks.changes import Change

WEBHOOK_CONTRACT = 8
ASYNCHRONOUS, POST_OPERATION, ENABLED = 1, 40, 0


@dataclass(frozen=True)
class Endpoint:
    endpoint_id: str
    url: str
    authtype: int | None
    authvalue: str | None


@dataclass(frozen=True)
class Step:
    step_id: str
    name: str | None
    message: str
    table: str | None  # the filter's primaryobjecttypecode; None = every table
    filtering: frozenset[str]
    endpoint: Endpoint

    def applies(self, change: Change) -> bool:
        if change.message != self.message:
            return False
        if self.table is not None and self.table != change.entity.logical:
            return False
        if change.message == "Update" and self.filtering:
            return bool(self.filtering & change.attribute_names)
        return True


_ACTIVE = (
    f"SELECT doc FROM {table('sdkmessageprocessingsteps')} "  # noqa: S608 - fixed names
    f"WHERE {column('statecode')} = {ENABLED} AND {column('mode')} = {ASYNCHRONOUS} "
    f"AND {column('stage')} = {POST_OPERATION} ORDER BY {column('rank')}, id"
)


def active_steps(store: Store) -> list[Step]:
    """The webhook steps that run now (read once per committed transaction)."""
    steps = []
    for row in store.select(_ACTIVE, ()):
        step = _step(store, row)
        if step is not None:
            steps.append(step)
    return steps


def _step(store: Store, row: dict[str, Any]) -> Step | None:
    endpoint = _endpoint(store, row.get("_eventhandler_value"))
    message = _get(store, "sdkmessages", row.get("_sdkmessageid_value"))
    if endpoint is None or message is None or not message.get("name"):
        return None
    table_name = None
    if row.get("_sdkmessagefilterid_value"):
        found = _get(store, "sdkmessagefilters", row["_sdkmessagefilterid_value"])
        if found is None:
            return None
        table_name = found.get("primaryobjecttypecode")
    filtering = frozenset(
        name.strip().lower()
        for name in str(row.get("filteringattributes") or "").split(",")
        if name.strip()
    )
    return Step(
        str(row["sdkmessageprocessingstepid"]),
        row.get("name"),
        str(message["name"]),
        table_name,
        filtering,
        endpoint,
    )


def _endpoint(store: Store, endpoint_id: Any) -> Endpoint | None:
    row = _get(store, "serviceendpoints", endpoint_id)
    if row is None or row.get("contract") != WEBHOOK_CONTRACT:
        return None  # Service Bus, Event Hub ... contracts are not emulated
    url = row.get("url") or row.get("namespaceaddress")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    return Endpoint(str(row["serviceendpointid"]), url, row.get("authtype"), row.get("authvalue"))


def _get(store: Store, entity_set: str, record_id: Any) -> dict[str, Any] | None:
    return store.get(entity_set, str(record_id)) if record_id else None
