"""Connect the demo's service to its sandbox CRM the way an admin would.

The assisted setup (``app.connection.assisted_setup``) with the sandbox's client credentials,
publishing item availability with the OData user ``crm``; then the first of its next
steps: the salespeople coupled to CRM users. A second run reuses an enabled connection
to the same sandbox and only adds what is missing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.connection import connection_setup, one_step_setup
from app.connection.one_step_setup import DEFAULT_ODATA_USER, ConnectAnswers, ensure_odata_user
from app.connection.solution import USER_ROLES
from app.couplings import matching
from app.dataverse import DataverseClient
from app.db import SessionMaker, session_scope
from app.demo.sample_company import SALESPEOPLE
from app.demo.sandbox_thread import RunningSandbox
from app.errors import ConflictError
from app.models.integration import IntegrationRecord
from app.ports import local_url
from app.settings import Settings, product_item_availability_url
from app.sync.crm_client import build_crm_client, crm_errors

ODATA_USER = DEFAULT_ODATA_USER


@dataclass(frozen=True)
class Connected:
    is_reused: bool


def service_url(settings: Settings) -> str:
    """The service's base URL as this machine (and so the sandbox) reaches it: the public
    URL when one is configured, else the listening address (loopback for 0.0.0.0)."""
    if settings.has_public_url:
        return settings.public_url.rstrip("/")
    return local_url(settings.host, settings.port)


def _answers(settings: Settings, sandbox: RunningSandbox) -> ConnectAnswers:
    config = sandbox.config
    odata_url = product_item_availability_url(service_url(settings), settings.company_name)
    return ConnectAnswers(
        server_address=sandbox.base_url, client_id=config.client_id,
        client_secret=config.client_secret, token_url=sandbox.token_url,
        odata_url=odata_url, odata_user_name=ODATA_USER, api_version=config.api_version,
    )  # fmt: skip


async def connect(
    sessionmaker: SessionMaker, settings: Settings, sandbox: RunningSandbox
) -> Connected:
    """Run the assisted setup against the sandbox unless already connected to it."""
    async with session_scope(sessionmaker) as session:
        await ensure_odata_user(session, ODATA_USER)
        setup = await connection_setup.get_connection_setup(session, settings)
        # The same sandbox: same URL and the same org (an in-memory one is new each run).
        same_org = str(setup.integration_user_id) == sandbox.user_id
        if setup.is_enabled and setup.server_address == sandbox.base_url and same_org:
            return Connected(is_reused=True)
        if setup.integration_user_id is not None and not same_org:
            await _refuse_if_coupled_elsewhere(session)
        await one_step_setup.connect(session, settings, answers=_answers(settings, sandbox))
    return Connected(is_reused=False)


async def _refuse_if_coupled_elsewhere(session: AsyncSession) -> None:
    """Couplings to another CRM org would point at rows this sandbox never had."""
    if (await session.exec(select(IntegrationRecord.id).limit(1))).first() is not None:
        msg = (
            "This data dir's records are coupled to another CRM org (an earlier sandbox, in "
            "memory or deleted): run the demo with a fresh SALESBRIDGE_DATA_DIR, or without "
            "--sandbox-memory to keep the sandbox's data in <data dir>/sandbox.db."
        )
        raise ConflictError(msg)


DELEGATE_ROLE = "Delegate"


async def _allow_acting_for_people(crm: DataverseClient) -> None:
    """The Delegate role for the integration user, so ``bin/salesbridge crm-edit`` can show
    a salesperson's change (an administrator grants it in a real org, if wanted at all)."""
    user_id = (await crm.whoami()).user_id
    named = crm.query("roles", select=["roleid"], filter=f"name eq '{DELEGATE_ROLE}'", top=1)
    roles = [row async for row in named]
    if not roles:
        return  # a CRM without the role: the edit command says what is missing
    role_id = uuid.UUID(str(roles[0]["roleid"]))
    path = f"systemusers({user_id})/{USER_ROLES}"
    held = {uuid.UUID(str(row["roleid"])) async for row in crm.query(path, select=["roleid"])}
    if role_id not in held:
        await crm.associate(
            "systemusers", user_id, USER_ROLES, target_set="roles", target_key=role_id
        )


async def _ensure_crm_users(crm: DataverseClient) -> int:
    """A CRM user per sample salesperson (in a real org they exist already)."""
    created = 0
    for person in SALESPEOPLE:
        email = person.email.replace("'", "''")
        found = crm.query("systemusers", select=["systemuserid"],
                          filter=f"internalemailaddress eq '{email}'", top=1)  # fmt: skip
        if [row async for row in found]:
            continue
        first_name, _, last_name = person.name.partition(" ")
        await crm.create("systemusers", {
            "firstname": first_name, "lastname": last_name, "internalemailaddress": person.email,
            "mobilephone": person.phone, "isdisabled": False,
        })  # fmt: skip
        created += 1
    return created


async def couple_salespeople(sessionmaker: SessionMaker, settings: Settings) -> int:
    """Match-based coupling of SALESPEOPLE by e-mail; returns how many were coupled now."""
    async with session_scope(sessionmaker) as session:
        setup = await connection_setup.get_connection_setup(session, settings)
        await matching.prepare(session, mapping_name="SALESPEOPLE")
        async with build_crm_client(settings, setup) as crm:
            with crm_errors("create the sample salespeople's CRM users"):
                await _ensure_crm_users(crm)
                await _allow_acting_for_people(crm)
            with crm_errors("couple the salespeople"):
                report = await matching.match_and_couple(
                    session, mapping_name="SALESPEOPLE", crm=crm
                )
    return report.count(matching.MatchOutcome.coupled)
