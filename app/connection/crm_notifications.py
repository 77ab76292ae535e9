"""CRM change notifications: what a delivery must hold, what is stored, what is counted.

Dataverse posts a step's ``RemoteExecutionContext`` as JSON to the webhook we registered
(``app.connection.webhook_key``): ``MessageName``, ``PrimaryEntityName``,
``PrimaryEntityId``, ``InitiatingUserId`` / ``UserId``, ``OperationId`` / ``RequestId``,
``OperationCreatedOn`` as ``/Date(ms)/``, the ``Target`` and the images. Only the first
ones matter here: the row stored says which record of which table changed and how; the
run of the mapping reads the record itself (``app.sync.notified_changes``), so nothing
from the body reaches the ERP and a forged body can at most make a run read a record.

Every delivery is counted on the ``crm_webhook`` row: accepted (and ignored) ones as
received, refused ones as refused with a short reason (never the key or the body).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import orjson
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import as_utc
from app.db import SessionMaker, session_scope
from app.logs import get_logger
from app.models.integration import ConnectionSetup, CrmWebhook, DataverseEntityChange
from app.sync import notified_changes

log = get_logger("salesbridge.crm_notifications")

MAX_NOTIFICATION_BYTES = 256 * 1024  # a context with images is a few KiB
MAX_AGE = timedelta(
    days=7
)  # older: a replay, or a queue stuck for a week; the periodic pass has it
MAX_AHEAD = timedelta(minutes=5)  # clocks differ a little, never by more
MESSAGES = ("Create", "Update", "Delete")
ENTITY_HEADER = "x-ms-dynamics-entity-name"
MESSAGE_HEADER = "x-ms-dynamics-request-name"
_ENTITY = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
_DATE = re.compile(r"^/Date\((-?\d{1,15})([+-]\d{4})?\)/$")


class NotificationRefused(Exception):
    """A delivery we do not take; ``reason`` is short and safe to store and log."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


def _refuse(reason: str, detail: str, status: int = 400) -> NoReturn:
    raise NotificationRefused(status, reason, detail)


@dataclass(frozen=True)
class Notification:
    message: str
    entity: str
    record_id: uuid.UUID
    delivery_key: str
    acting_users: frozenset[uuid.UUID]
    created_on: datetime | None


def _guid(value: Any, name: str) -> uuid.UUID:
    if not isinstance(value, str):
        _refuse(f"{name} missing", f"{name} must be a GUID string.")
    try:
        return uuid.UUID(value)
    except ValueError:
        _refuse(f"{name} invalid", f"{name} is not a GUID: {value[:60]!r}.")


def _optional_guid(body: Mapping[str, Any], name: str) -> uuid.UUID | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    return _guid(value, name)


def parse_date(value: Any) -> datetime | None:
    """``/Date(1495572722000)/`` (milliseconds since 1970, UTC; an offset may follow)."""
    if value is None:
        return None
    match = _DATE.match(value) if isinstance(value, str) else None
    if match is None:
        text = str(value)[:60]
        _refuse("OperationCreatedOn invalid", f"OperationCreatedOn is not /Date(ms)/: {text!r}.")
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(match.group(1)))


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def parse_notification(
    body: bytes, *, content_type: str, headers: Mapping[str, str], now: datetime
) -> Notification:
    """The notification a body holds, or ``NotificationRefused`` saying what is wrong."""
    if not _is_json(content_type):
        _refuse("not JSON", "The body must be JSON (Content-Type: application/json).")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        _refuse("malformed JSON", f"The body is not valid JSON: {exc.msg}.")
    if not isinstance(data, dict):
        _refuse("not an object", "The body must be a RemoteExecutionContext JSON object.")
    message = data.get("MessageName")
    if not isinstance(message, str) or not message:
        _refuse("MessageName missing", "MessageName is missing.")
    if message not in MESSAGES:
        _refuse(
            "unknown message", f"MessageName {message[:40]!r} is not one of {', '.join(MESSAGES)}."
        )
    entity = data.get("PrimaryEntityName")
    if not isinstance(entity, str) or not _ENTITY.match(entity):
        _refuse("PrimaryEntityName invalid", "PrimaryEntityName must be a table's logical name.")
    header_entity = headers.get(ENTITY_HEADER)
    if header_entity and header_entity != entity:
        _refuse("entity mismatch", f"{ENTITY_HEADER} does not match PrimaryEntityName.")
    header_message = headers.get(MESSAGE_HEADER)
    if header_message and header_message != message:
        _refuse("message mismatch", f"{MESSAGE_HEADER} does not match MessageName.")
    record_id = _guid(data.get("PrimaryEntityId"), "PrimaryEntityId")
    delivery = _optional_guid(data, "OperationId") or _optional_guid(data, "RequestId")
    if delivery is None:
        _refuse(
            "no delivery id", "The body needs OperationId (or RequestId) to recognise a replay."
        )
    created_on = parse_date(data.get("OperationCreatedOn"))
    if created_on is not None and created_on > now + MAX_AHEAD:
        _refuse("from the future", "OperationCreatedOn is in the future; check the clocks.")
    if created_on is not None and created_on < now - MAX_AGE:
        _refuse(
            "too old",
            f"OperationCreatedOn is more than {MAX_AGE.days} days old: refused as a replay "
            "(the periodic synchronization reads that change anyway).",
            status=409,
        )
    # UserId is whom the change was made for; InitiatingUserId who sent it. They differ when
    # an application acts on a person's behalf (MSCRMCallerID): that is the person's change,
    # even when the application is the integration's own (`salesbridge crm-edit`).
    acting = _optional_guid(data, "UserId") or _optional_guid(data, "InitiatingUserId")
    users = {acting}
    return Notification(
        message=message,
        entity=entity,
        record_id=record_id,
        delivery_key=str(delivery),
        acting_users=frozenset(u for u in users if u is not None),
        created_on=created_on,
    )


async def record_refusal(sessionmaker: SessionMaker, *, reason: str, now: datetime) -> None:
    """Count a refused delivery, in its own transaction; relative, so racing deliveries
    each count. Without a webhook row there is nothing to count on."""
    async with session_scope(sessionmaker) as session:
        await session.exec(
            update(CrmWebhook)
            .values(
                refused_count=col(CrmWebhook.refused_count) + 1,
                last_refused_at=now,
                last_refusal=reason[:200],
            )
            .execution_options(synchronize_session=False)
        )
    log.warning("crm_notification_refused", reason=reason)


async def _count_received(session: AsyncSession, now: datetime) -> None:
    await session.exec(
        update(CrmWebhook)
        .values(received_count=col(CrmWebhook.received_count) + 1, last_received_at=now)
        .execution_options(synchronize_session=False)
    )


async def _integration_user(session: AsyncSession) -> uuid.UUID | None:
    statement = select(ConnectionSetup.integration_user_id).order_by(col(ConnectionSetup.id))
    return (await session.exec(statement.limit(1))).first()


async def accept(session: AsyncSession, notification: Notification, *, now: datetime) -> str:
    """Store the change (returns ""), or ignore it (returns why): the integration user's
    own write (the sync reads it back anyway, and the loop stops here), or a table no
    scheduled mapping brings to the ERP. Counted as received either way; the caller
    commits.

    A delivery already stored raises ``NotificationRefused`` (409): the unique delivery
    key decides, in this transaction, so two racing copies store one row.
    """
    known = select(DataverseEntityChange.id).where(
        col(DataverseEntityChange.delivery_key) == notification.delivery_key
    )
    if (await session.exec(known)).first() is not None:
        raise NotificationRefused(409, "already received", "This delivery was already received.")
    integration_user = await _integration_user(session)
    reason = ""
    if integration_user is not None and integration_user in notification.acting_users:
        reason = "a change made by the integration user"
    elif not await notified_changes.reading_mappings(session, notification.entity):
        reason = f"no scheduled mapping reads {notification.entity} from the CRM"
    if reason:
        await _count_received(session, now)
        log.info(
            "crm_notification_ignored", entity=notification.entity,
            message=notification.message, reason=reason,
        )  # fmt: skip
        return reason
    session.add(
        DataverseEntityChange(
            entity_name=notification.entity,
            record_id=notification.record_id,
            message=notification.message,
            delivery_key=notification.delivery_key,
            received_at=now,
        )
    )
    try:
        await session.flush()
    except IntegrityError as exc:  # a copy stored between our look and our insert
        await session.rollback()
        raise NotificationRefused(
            409, "already received", "This delivery was already received."
        ) from exc
    await _count_received(session, now)
    log.info(
        "crm_notification_stored", entity=notification.entity, message=notification.message,
        record_id=str(notification.record_id), delivery_key=notification.delivery_key,
    )  # fmt: skip
    return ""


@dataclass(frozen=True)
class NotificationStatus:
    """Whether notifications arrive: for ``sync status``, the console and the API."""

    registered: bool
    registered_at: datetime | None
    url: str
    steps: int
    last_error: str
    received_count: int
    last_received_at: datetime | None
    refused_count: int
    last_refused_at: datetime | None
    last_refusal: str
    pending: int


async def notification_status(session: AsyncSession) -> NotificationStatus:
    row = (await session.exec(select(CrmWebhook).order_by(col(CrmWebhook.id)).limit(1))).first()
    pending = await notified_changes.pending_count(session)
    if row is None:
        return NotificationStatus(
            registered=False, registered_at=None, url="", steps=0, last_error="",
            received_count=0, last_received_at=None, refused_count=0, last_refused_at=None,
            last_refusal="", pending=pending,
        )  # fmt: skip
    return NotificationStatus(
        registered=row.registered_at is not None,
        registered_at=as_utc(row.registered_at) if row.registered_at else None,
        url=row.url,
        steps=len(row.steps or []),
        last_error=row.last_error,
        received_count=row.received_count,
        last_received_at=as_utc(row.last_received_at) if row.last_received_at else None,
        refused_count=row.refused_count,
        last_refused_at=as_utc(row.last_refused_at) if row.last_refused_at else None,
        last_refusal=row.last_refusal,
        pending=pending,
    )
