"""Security roles, the privileges the sandbox checks, and impersonation.

The sandbox checks one privilege: act on behalf of another user
(``prvActOnBehalfOfAnotherUser``), which Dataverse requires of a caller that sends
``MSCRMCallerID`` (a system user id) or ``CallerObjectId`` (the user's Microsoft Entra
object id). As in Dataverse it comes from a security role assigned directly to the
caller: the seeded Delegate role carries it, System Administrator carries every
privilege. Assign a role with ``POST systemusers(<id>)/systemuserroles_association/$ref``.
Other privileges are not modelled: a caller may otherwise do everything.
"""

from __future__ import annotations

import uuid

from app.sandbox.errors import (
    SandboxError,
    does_not_exist,
    missing_privilege,
    user_disabled,
)
from app.sandbox.operations.filters import GUID
from app.sandbox.operations.records import Actor, Identity
from app.sandbox.store import Store

ACT_ON_BEHALF = "prvActOnBehalfOfAnotherUser"
_USER = "systemuser"
USER_ROLES = "systemuserroles_association"

# The role ids Business Central's integration assigns, and the Delegate role.
SEEDED_ROLES = {
    "System Administrator": "627090ff-40a3-4053-8790-584edc5be201",
    "Integration Administrator": "8c8d4f51-a72b-e511-80d9-3863bb349780",
    "Integration User": "6f960e32-a72b-e511-80d9-3863bb349780",
    "Product Availability User": str(
        uuid.uuid5(uuid.NAMESPACE_URL, "sandbox/product-availability")
    ),
    "Delegate": str(uuid.uuid5(uuid.NAMESPACE_URL, "sandbox/delegate")),
}
_ALL = "*"
ROLE_PRIVILEGES: dict[str, frozenset[str]] = {
    SEEDED_ROLES["System Administrator"]: frozenset({_ALL}),
    SEEDED_ROLES["Delegate"]: frozenset({ACT_ON_BEHALF}),
}


def holds(store: Store, user_id: str, privilege: str) -> bool:
    """Whether a role assigned directly to the user grants ``privilege``."""
    for role_id in store.associated(USER_ROLES, user_id, from_left=True):
        granted = ROLE_PRIVILEGES.get(role_id, frozenset())
        if privilege in granted or _ALL in granted:
            return True
    return False


def acting_user(store: Store, identity: Identity, headers: dict[str, str]) -> Actor:
    """Who a request acts as: the caller, or the user its impersonation header names."""
    by_id = headers.get("mscrmcallerid", "").strip()
    by_object = headers.get("callerobjectid", "").strip()
    if not by_id and not by_object:
        return Actor(identity.user_id)
    if not holds(store, identity.user_id, ACT_ON_BEHALF):
        raise missing_privilege(identity.user_id, ACT_ON_BEHALF)
    found = {
        str(_user(store, value, header)["systemuserid"])
        for header, value in (("MSCRMCallerID", by_id), ("CallerObjectId", by_object))
        if value
    }
    if len(found) > 1:
        msg = "MSCRMCallerID and CallerObjectId name different users; send one of them."
        raise SandboxError(400, "0x80040203", msg)
    user_id = found.pop()
    if user_id == identity.user_id:
        return Actor(identity.user_id)
    return Actor(user_id, on_behalf_of=identity.user_id)


def _user(store: Store, value: str, header: str) -> dict[str, object]:
    if not GUID.match(value):
        msg = f"The value of the {header} header must be a GUID, not '{value}'."
        raise SandboxError(400, "0x80040203", msg)
    value = value.lower()
    if header == "MSCRMCallerID":
        user = store.get("systemusers", value)
    else:
        user = store.find_by_key("systemusers", {"azureactivedirectoryobjectid": value})
    if user is None:
        raise does_not_exist(_USER, value)
    if user.get("isdisabled"):
        raise user_disabled(str(user["systemuserid"]))
    return user
