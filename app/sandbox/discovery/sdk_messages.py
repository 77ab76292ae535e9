"""The platform's message tables: ``sdkmessages`` and ``sdkmessagefilters``.

Dataverse lists every message (Create, Update, ...) and, per table, a filter row for each
message the table supports; clients read them to learn what a table can do (for example
whether ``CreateMultiple`` exists for it). The sandbox lists the messages it serves, so a
client asking for a message it lacks finds none and does not call it. Ids are fixed
(uuid5), so the rows are the same in every sandbox and can be topped up on start.
"""

from __future__ import annotations

import uuid

from app.sandbox.operations.records import Records
from app.sandbox.schema.entities import BY_SET, ENTITIES, EntityType

_RECORD_MESSAGES = ("Create", "Retrieve", "RetrieveMultiple", "Update", "Delete")
_MESSAGES = (*_RECORD_MESSAGES, "Associate", "Disassociate", "WhoAmI", "WinOpportunity",
             "LoseOpportunity")  # fmt: skip


def _message_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox/sdkmessage/{name}"))


def _filter_id(message: str, logical: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox/sdkmessagefilter/{message}/{logical}"))


def _messages_for(entity: EntityType) -> tuple[str, ...]:
    names = [m for m in _RECORD_MESSAGES if m != "Update" or entity.is_updatable]
    if entity.set_name == "opportunities":
        names += ["WinOpportunity", "LoseOpportunity"]
    return tuple(names)


def seed_messages(records: Records) -> None:
    """Create the message and filter rows that are missing."""
    store = records.store
    for name in _MESSAGES:
        if store.get("sdkmessages", _message_id(name)) is None:
            records.create(
                BY_SET["sdkmessages"],
                {"sdkmessageid": _message_id(name), "name": name, "isprivate": False,
                 "isreadonly": name in ("Retrieve", "RetrieveMultiple", "WhoAmI")},
            )  # fmt: skip
    for entity in ENTITIES:
        if entity.is_system:
            continue
        for message in _messages_for(entity):
            filter_id = _filter_id(message, entity.logical)
            if store.get("sdkmessagefilters", filter_id) is not None:
                continue
            body = {
                "sdkmessagefilterid": filter_id,
                "sdkmessageid@odata.bind": f"sdkmessages({_message_id(message)})",
                "primaryobjecttypecode": entity.logical,
                "secondaryobjecttypecode": "none",
                "iscustomprocessingstepallowed": True,
                "isvisible": True,
                "availability": 0,
            }
            records.create(BY_SET["sdkmessagefilters"], body)
