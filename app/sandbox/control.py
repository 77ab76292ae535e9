"""The control API under ``/_sandbox/`` (no bearer: it is the test harness's side door).

GET/PUT ``limits`` and ``faults`` (PUT takes a partial JSON object), GET ``counters``,
GET/PATCH ``webhooks`` (delivery counters, ``pending``, retry settings and delivery faults),
POST ``reset`` (``?data=true`` also wipes and reseeds the rows), GET ``/_sandbox`` for a
summary with row counts, GET/POST ``users`` to list system users and create ordinary
(licensed, interactive) ones, the people a test or demo impersonates, GET/POST
``certificates`` (the app's registered certificates).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.sandbox.client_assertion import load_certificate, thumbprints
from app.sandbox.config import FAULT_FIELDS, LIMIT_FIELDS
from app.sandbox.errors import SandboxError
from app.sandbox.schema.entities import BY_SET, ENTITIES
from app.sandbox.state import Sandbox
from app.sandbox.webapi import CallContext

_USER_FIELDS = ("systemuserid", "fullname", "firstname", "lastname", "internalemailaddress",
                "domainname", "azureactivedirectoryobjectid", "applicationid", "accessmode",
                "isdisabled")  # fmt: skip


def _sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


async def summary(request: Request) -> Response:
    sandbox = _sandbox(request)
    return JSONResponse(
        {
            "api_version": sandbox.config.api_version,
            "tenant_id": sandbox.config.tenant_id,
            "client_id": sandbox.config.client_id,
            "persistent": sandbox.config.db_path is not None,
            "user_id": sandbox.identity.user_id,
            "business_unit_id": sandbox.identity.business_unit_id,
            "organization_id": sandbox.identity.organization_id,
            "rows": {entity.set_name: sandbox.count(entity.set_name) for entity in ENTITIES},
        }
    )


async def _update(request: Request, allowed: tuple[str, ...]) -> dict[str, Any] | Response:
    try:
        values = orjson.loads(await request.body() or b"{}")
        if not isinstance(values, dict):
            raise TypeError("expected a JSON object")  # noqa: EM101
        _sandbox(request).config.update(values, allowed=allowed)
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return values


async def limits(request: Request) -> Response:
    sandbox = _sandbox(request)
    if request.method == "PUT":
        result = await _update(request, LIMIT_FIELDS)
        if isinstance(result, Response):
            return result
        sandbox.protection.reset()
    return JSONResponse(sandbox.config.limits())


async def faults(request: Request) -> Response:
    sandbox = _sandbox(request)
    if request.method == "PUT":
        result = await _update(request, FAULT_FIELDS)
        if isinstance(result, Response):
            return result
        if "seed" in result:
            sandbox.faults.reseed()
    return JSONResponse(sandbox.config.faults())


async def webhooks(request: Request) -> Response:
    """Webhook deliveries: GET counters (``pending`` is 0 once every queued delivery has
    finished) and settings; PATCH (or PUT) a partial object of settings and faults."""
    dispatcher = _sandbox(request).webhooks.dispatcher
    if request.method in ("PATCH", "PUT"):
        try:
            values = orjson.loads(await request.body() or b"{}")
            if not isinstance(values, dict):
                raise TypeError("expected a JSON object")  # noqa: EM101
            dispatcher.configure(values)
        except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(dispatcher.snapshot())


async def counters(request: Request) -> Response:
    return JSONResponse(_sandbox(request).counters.snapshot())


async def certificates(request: Request) -> Response:
    """Certificates registered on the app (as uploaded in Entra): GET lists, POST adds one."""
    config = _sandbox(request).config
    if request.method == "POST":
        try:
            body = orjson.loads(await request.body() or b"{}")
            pem = body.get("certificate") if isinstance(body, dict) else None
            if not isinstance(pem, str):
                raise TypeError('expected {"certificate": "<PEM>"}')  # noqa: EM101
            load_certificate(pem)
        except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        config.client_certificates = (*config.client_certificates, pem)
    listed = [
        {"x5t": thumbprints(cert)[0], "subject": cert.subject.rfc4514_string()}
        for cert in (load_certificate(pem) for pem in config.client_certificates)
    ]
    return JSONResponse(listed, status_code=201 if request.method == "POST" else 200)


async def reset(request: Request) -> Response:
    sandbox = _sandbox(request)
    wipe = request.query_params.get("data", "false").lower() in ("1", "true", "yes")
    sandbox.reset(data=wipe)
    return JSONResponse({"reset": True, "data": wipe})


def _user_summary(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row.get(name) for name in _USER_FIELDS}


async def users(request: Request) -> Response:
    """GET: every system user; POST: a new ordinary user (``lastname`` required; an Entra
    object id is made up unless given)."""
    sandbox = _sandbox(request)
    if request.method == "GET":
        return JSONResponse([_user_summary(row) for row in sandbox.rows("systemusers")])
    try:
        body = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError as exc:
        return JSONResponse({"error": f"not JSON: {exc}"}, status_code=400)
    if not isinstance(body, dict) or not isinstance(body.get("lastname"), str):
        return JSONResponse({"error": "a user needs a 'lastname' (string)"}, status_code=400)
    email = body.get("internalemailaddress") or f"{uuid.uuid4().hex[:12]}@sandbox.example"
    values = {"azureactivedirectoryobjectid": str(uuid.uuid4()), "internalemailaddress": email,
              "domainname": email, "accessmode": 0, "isdisabled": False, "islicensed": True,
              **body}  # fmt: skip
    records = sandbox.webapi.records(CallContext(str(request.base_url)))
    try:
        with sandbox.store.transaction():
            row = records.create(BY_SET["systemusers"], values)
    except SandboxError as error:
        return JSONResponse({"error": error.message}, status_code=error.status)
    return JSONResponse(_user_summary(row), status_code=201)


def control_routes() -> list[Route]:
    return [
        Route("/_sandbox", summary, methods=["GET"]),
        Route("/_sandbox/", summary, methods=["GET"]),
        Route("/_sandbox/limits", limits, methods=["GET", "PUT"]),
        Route("/_sandbox/faults", faults, methods=["GET", "PUT"]),
        Route("/_sandbox/counters", counters, methods=["GET"]),
        Route("/_sandbox/webhooks", webhooks, methods=["GET", "PATCH", "PUT"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/users", users, methods=["GET", "POST"]),
        Route("/_sandbox/certificates", certificates, methods=["GET", "POST"]),
    ]
