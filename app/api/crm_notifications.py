"""CRM change notifications over HTTP: the receiver the CRM posts to, and its status.

The receiver is registered at ``settings.webhook_path`` (``install_receiver``, called when
the REST API loads), outside user sign-in: the CRM authenticates with the webhook key in
``x-salesbridge-webhook-key``, compared in constant time. Every answer is a clear 2xx or
4xx (503 when the database is away, so the CRM retries); the key is never logged or
echoed. After the commit a nudge tells the workers which table changed.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import ClientDisconnect

from app.api.deps import IntegrationUser, SessionDep
from app.api.schemas.crm_notifications import NotificationAccepted, NotificationStatusRead
from app.auth.encryption import SecretDecryptionError
from app.clock import utc_now
from app.connection import crm_notifications
from app.connection.crm_notifications import MAX_NOTIFICATION_BYTES, NotificationRefused
from app.connection.webhook_key import WEBHOOK_KEY_HEADER, get_crm_webhook, is_webhook_key
from app.db import SessionMaker
from app.exception_handlers import ERROR_RESPONSES, ErrorBody, error_body
from app.logs import get_logger
from app.settings import Settings
from workers.queue import nudge

log = get_logger("salesbridge.crm_notifications")

router = APIRouter(prefix="/crm", tags=["crm notifications"])

_KINDS = {400: "InvalidInput", 401: "Unauthorized", 409: "Conflict", 413: "PayloadTooLarge"}


def _refusal(exc: NotificationRefused) -> JSONResponse:
    kind = _KINDS.get(exc.status, "InvalidInput")
    return JSONResponse(error_body(kind, exc.detail), status_code=exc.status)


async def _body(request: Request) -> bytes:
    """The body, read as it arrives and refused past the cap without reading the rest."""
    declared = request.headers.get("content-length", "")
    too_large = NotificationRefused(
        413, "too large", f"The body is larger than the limit of {MAX_NOTIFICATION_BYTES} bytes."
    )
    if declared.isdigit() and int(declared) > MAX_NOTIFICATION_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_NOTIFICATION_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _authenticate(sessionmaker: SessionMaker, settings: Settings, presented: str) -> None:
    async with sessionmaker() as session:
        row = await get_crm_webhook(session)
    if row is None or not row.secret_encrypted:
        raise NotificationRefused(
            401, "no webhook key", "No webhook is set up in Salesbridge: nothing is accepted."
        )
    try:
        is_ours = is_webhook_key(settings, row, presented)
    except SecretDecryptionError as exc:
        raise NotificationRefused(
            401,
            "key unreadable",
            "The stored webhook key cannot be read; register the webhook again.",
        ) from exc
    if not is_ours:
        reason = "missing key" if not presented else "wrong key"
        detail = f"Missing or wrong {WEBHOOK_KEY_HEADER} header."
        raise NotificationRefused(401, reason, detail)


async def receive_notification(request: Request) -> JSONResponse:
    """A change notification from the CRM (a Dataverse ``RemoteExecutionContext``)."""
    settings: Settings = request.app.state.settings
    sessionmaker: SessionMaker = request.app.state.sessionmaker
    now = utc_now()
    try:
        try:
            if not settings.webhooks_enabled:
                raise NotificationRefused(
                    409, "turned off", "Change notifications are turned off in Salesbridge."
                )
            await _authenticate(sessionmaker, settings, request.headers.get(WEBHOOK_KEY_HEADER, ""))
            body = await _body(request)
            headers = {k.lower(): v for k, v in request.headers.items()}
            notification = crm_notifications.parse_notification(
                body, content_type=headers.get("content-type", ""), headers=headers, now=now
            )
            async with sessionmaker() as session:
                ignored = await crm_notifications.accept(session, notification, now=now)
                await session.commit()
        except NotificationRefused as exc:
            # A copy of a stored delivery is the CRM retrying, not a refusal worth counting.
            if exc.reason not in ("no webhook key", "already received"):
                await crm_notifications.record_refusal(sessionmaker, reason=exc.reason, now=now)
            return _refusal(exc)
    except ClientDisconnect:  # gone before its body arrived: nobody reads the answer
        return JSONResponse(error_body("InvalidInput", "The body did not arrive."), status_code=400)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("crm_notification_not_stored", error=type(exc).__name__)
        detail = "The database did not answer; the notification was not stored. Retry later."
        return JSONResponse(
            error_body("Unavailable", detail), status_code=503, headers={"Retry-After": "5"}
        )
    answer = NotificationAccepted(
        status="ignored" if ignored else "accepted",
        entity=notification.entity,
        message=notification.message,
        record_id=notification.record_id,
        reason=ignored,
    )
    if ignored:
        return JSONResponse(answer.model_dump(mode="json"), status_code=status.HTTP_200_OK)
    await nudge(request.app.state.queue, crm_entities={notification.entity})
    return JSONResponse(answer.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)


_OPENAPI: dict[str, Any] = {
    "parameters": [
        {"name": WEBHOOK_KEY_HEADER, "in": "header", "required": True, "schema": {"type": "string"}}
    ],
    "requestBody": {
        "required": True,
        "content": {"application/json": {
            "schema": {"type": "object", "description": (
                "The Dataverse RemoteExecutionContext: MessageName (Create, Update, Delete), "
                "PrimaryEntityName, PrimaryEntityId, OperationId or RequestId, "
                "OperationCreatedOn (/Date(ms)/), InitiatingUserId, UserId, ..."
            )},
            "example": {
                "MessageName": "Update", "PrimaryEntityName": "account",
                "PrimaryEntityId": "7c5e3a0e-2b1f-4f64-9d0e-1b9c2f0a4e11",
                "OperationId": "0f8fad5b-d9cb-469f-a165-70867728950e",
                "RequestId": "7a3c1d2e-5b4f-4e6a-8c9d-0e1f2a3b4c5d",
                "OperationCreatedOn": "/Date(1764979200000)/",
                "InitiatingUserId": "3e0b5c1a-9f2d-4b7e-8a6c-5d4e3f2a1b0c",
                "UserId": "3e0b5c1a-9f2d-4b7e-8a6c-5d4e3f2a1b0c", "Depth": 1, "Stage": 40,
                "Mode": 1, "InputParameters": [], "PreEntityImages": [], "PostEntityImages": [],
            },
        }},
    },
}  # fmt: skip


def install_receiver(app: FastAPI, settings: Settings) -> None:
    """The receiver at ``settings.webhook_path``: the path follows the setting."""
    app.add_api_route(
        settings.webhook_path,
        receive_notification,
        methods=["POST"],
        tags=["crm notifications"],
        summary="Receive a CRM change notification (the CRM's webhook)",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=NotificationAccepted,
        openapi_extra=_OPENAPI,
        responses={
            **ERROR_RESPONSES,
            200: {"model": NotificationAccepted, "description": "Ignored (see the reason)."},
            503: {"model": ErrorBody, "description": "The database did not answer; retry."},
        },
    )


@router.get("/notifications/status", response_model=NotificationStatusRead)
async def notifications_status(
    session: SessionDep, _user: IntegrationUser
) -> NotificationStatusRead:
    """Whether CRM change notifications arrive: registration, counts, pending changes."""
    found = await crm_notifications.notification_status(session)
    return NotificationStatusRead.model_validate(found)
