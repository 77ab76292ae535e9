"""Who may see which console page: the REST API's roles, checked by the REST API's rule.

``PAGES`` is the one table: the navigation shows a page only to a role that may open it,
and the page's route refuses the others with 403 (``app.api.deps.has_any_role``, so
``integration-admin`` may do everything). Actions check the role of the REST route they
mirror (``Admin`` for every change, as in the API) and the CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from app.api.deps import SessionDep, SettingsDep, has_any_role
from app.auth import console_sessions
from app.db import current_actor
from app.errors import ForbiddenError
from app.models.security import Role, User
from app.web import cookies

ADMIN_ONLY: tuple[Role, ...] = ()


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    title: str
    roles: tuple[Role, ...]  # any of these (integration-admin always)


PAGES = (
    Page("overview", "/", "Overview", (Role.integration_user,)),
    Page("setup", "/setup", "Assisted setup", ADMIN_ONLY),
    Page("connection", "/connection", "Connection", (Role.integration_user,)),
    Page("mappings", "/mappings", "Mappings", (Role.integration_user,)),
    Page("couplings", "/couplings", "Couplings", (Role.integration_user,)),
    Page("sync_log", "/sync-log", "Sync log", (Role.integration_user,)),
    Page("jobs", "/jobs", "Job queue", ADMIN_ONLY),
    Page("sales", "/sales", "Sales orders", (Role.integration_user,)),
    Page("availability", "/availability", "Item availability", (Role.product_availability,)),
    Page("users", "/users", "Users and keys", ADMIN_ONLY),
)
PAGE_BY_NAME = {page.name: page for page in PAGES}


class SignInRequiredError(Exception):
    """No valid session: the browser goes to the sign-in page."""


@dataclass(frozen=True)
class Caller:
    user: User
    csrf: str

    @property
    def is_admin(self) -> bool:
        return has_any_role(self.user, ADMIN_ONLY)

    def may_open(self, page: Page) -> bool:
        return has_any_role(self.user, page.roles)

    @property
    def pages(self) -> list[Page]:
        return [page for page in PAGES if self.may_open(page)]

    @property
    def home(self) -> str:
        return self.pages[0].path if self.pages else "/sign-in"


async def current_caller(request: Request, session: SessionDep, settings: SettingsDep) -> Caller:
    token = cookies.session_token(request, settings)
    active = (
        await console_sessions.resume_session(session, settings, token=token) if token else None
    )
    if active is None:
        raise SignInRequiredError
    current_actor.set(active.user.user_name)
    caller = Caller(user=active.user, csrf=cookies.csrf_token(settings, active.token))
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]


def _forbidden(roles: tuple[Role, ...]) -> ForbiddenError:
    names = ", ".join(r.value for r in (Role.integration_admin, *roles))
    return ForbiddenError(f"This needs one of the roles: {names}.")


def page(name: str) -> Callable[[Caller], Coroutine[Any, Any, Caller]]:
    """The dependency of a page's GET routes: signed in, with a role the page admits."""
    target = PAGE_BY_NAME[name]

    async def dependency(caller: CallerDep) -> Caller:
        if not caller.may_open(target):
            raise _forbidden(target.roles)
        return caller

    return dependency


def action(*roles: Role) -> Callable[[Request, Caller, SettingsDep], Coroutine[Any, Any, Caller]]:
    """The dependency of a state-changing route: the REST route's roles and the CSRF token."""

    async def dependency(request: Request, caller: CallerDep, settings: SettingsDep) -> Caller:
        token = cookies.session_token(request, settings) or ""
        form = await request.form()
        sent = request.headers.get(cookies.CSRF_HEADER) or form.get(cookies.CSRF_FIELD)
        if not cookies.is_csrf_valid(settings, token, str(sent) if sent else None):
            msg = "The form's security token is missing or stale: reload the page and try again."
            raise ForbiddenError(msg)
        if not has_any_role(caller.user, roles):
            raise _forbidden(roles)
        return caller

    return dependency


Admin = Annotated[Caller, Depends(action(*ADMIN_ONLY))]
SignedIn = Annotated[Caller, Depends(action(*Role))]  # any role: sign-out
IntegrationAction = Annotated[Caller, Depends(action(Role.integration_user))]
