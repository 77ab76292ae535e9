"""Sales integration: submitted CRM orders not yet in the ERP, "create now", and the reason
when creating one fails (the REST routes' own functions)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from app.api import sales_integration as api
from app.api.deps import SessionDep, SessionMakerDep, SettingsDep
from app.errors import SalesbridgeError
from app.web.access import Admin, Caller, page
from app.web.rendering import render
from app.web.routing import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute)
SalesCaller = Annotated[Caller, Depends(page("sales"))]


@router.get("/sales")
async def submitted_orders(
    request: Request, session: SessionDep, settings: SettingsDep, caller: SalesCaller
) -> Response:
    context: dict[str, object] = {"title": "Submitted sales orders", "is_admin": caller.is_admin}
    try:
        context["orders"] = (await api.submitted_orders(session, settings, caller.user)).items
    except SalesbridgeError as exc:  # not enabled, CRM unreachable: say so on the page
        context.update(orders=[], problem=exc.detail)
    return render(request, "sales.html", context)


@router.post("/sales/{crm_id}/create")
async def create_now(
    request: Request, session: SessionDep, sessionmaker: SessionMakerDep, settings: SettingsDep,
    caller: Admin, crm_id: uuid.UUID,
) -> Response:  # fmt: skip
    created = await api.create_erp_order(session, sessionmaker, settings, caller.user, crm_id)
    detail = (
        f"CRM order {created.ordernumber}: ERP order {created.erp_order_no} ({created.outcome})."
    )
    return render(request, "partials/message.html", {"status_code": 200, "detail": detail})
