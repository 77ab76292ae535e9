"""Create, update, upsert and delete with Dataverse's rules.

The server sets ``createdon``, ``modifiedon``, ``_createdby_value``, ``_modifiedby_value``,
owner columns and ``versionnumber`` (one counter for the whole store, like a SQL Server
rowversion); state rules come from the entity's StateModel; lines may only change while
their header is editable, and only active products can go on a line.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from app.clock import utc_now
from app.exact_json import number
from app.sandbox.errors import (
    SandboxError,
    does_not_exist,
    duplicate_key,
    duplicate_record,
    id_mismatch,
    invalid_argument,
    invalid_state,
    key_does_not_exist,
    read_only_record,
    version_mismatch,
)
from app.sandbox.operations.keys import RecordRef
from app.sandbox.operations.payload import (
    LOGICAL_ANNOTATION,
    BindContext,
    Changes,
    computed_columns,
    read_changes,
    resolve_ref,
)
from app.sandbox.schema.entities import BY_SET, CASCADES, EntityType, StateModel
from app.sandbox.store import DuplicateIdError, DuplicateKeyError, Store
from app.sandbox.webhooks.changes import Change

_LINE_HEADERS = {"quoteid": "quotes", "salesorderid": "salesorders", "invoiceid": "invoices"}


@dataclass(frozen=True)
class Identity:
    """Who the sandbox is and who calls it (the application user)."""

    organization_id: str
    business_unit_id: str
    user_id: str
    base_currency_id: str


@dataclass(frozen=True)
class Actor:
    """Who a write is stamped with: the caller, or the user it impersonates (then
    ``on_behalf_of`` is the caller, stamped in the ``...onbehalfby`` columns)."""

    user_id: str
    on_behalf_of: str | None = None


def timestamp() -> str:
    return utc_now().strftime("%Y-%m-%dT%H:%M:%SZ")


def etag(doc: dict[str, Any]) -> str:
    return f'W/"{doc["versionnumber"]}"'


@dataclass(frozen=True)
class Conditions:
    if_match: str | None = None
    if_none_match: str | None = None


class Records:
    def __init__(
        self, store: Store, identity: Identity, context: BindContext, actor: Actor | None = None
    ) -> None:
        self.store = store
        self.identity = identity
        self.context = context
        self.actor = actor or Actor(identity.user_id)

    def _stamp(self, doc: dict[str, Any], *, created: bool) -> None:
        doc["modifiedon"] = timestamp()
        doc["_modifiedby_value"] = self.actor.user_id
        doc["_modifiedonbehalfby_value"] = self.actor.on_behalf_of
        if created:
            doc["createdon"] = doc["modifiedon"]
            doc["_createdby_value"] = self.actor.user_id
            doc["_createdonbehalfby_value"] = self.actor.on_behalf_of
        doc["versionnumber"] = self.store.next_version()

    # --- create ---------------------------------------------------------------------------
    def create(
        self, entity: EntityType, body: dict[str, Any], *, record_id: str | None = None
    ) -> dict[str, Any]:
        changes = read_changes(entity, body, self.context, record_id=None)
        new_id = str(changes.columns.pop(entity.pk, None) or record_id or uuid.uuid4())
        doc: dict[str, Any] = {entity.pk: new_id}
        doc.update(changes.columns)
        self._initial_state(entity, doc, changes)
        self._owner_columns(entity, doc)
        self._stamp(doc, created=True)
        computed_columns(entity, doc)
        self._check_line(entity, doc)
        self._insert(entity, doc)
        self._after_write(entity, doc, changes)
        self._journal("Create", entity, doc, dict(doc))
        if entity.set_name == "uomschedules":
            self._create_base_unit(doc, str(body.get("baseuomname") or "Primary Unit"))
        return doc

    def _insert(self, entity: EntityType, doc: dict[str, Any]) -> None:
        try:
            self.store.insert(entity.set_name, doc[entity.pk], doc)
        except DuplicateIdError as exc:
            raise duplicate_record() from exc
        except DuplicateKeyError as exc:
            raise duplicate_key(entity.logical, exc.attributes) from exc

    def _initial_state(self, entity: EntityType, doc: dict[str, Any], changes: Changes) -> None:
        model = entity.state
        if model is None:
            return
        state, default_status = model.initial
        if changes.state is not None and changes.state != state:
            msg = (
                f"A new {entity.logical} starts in state {model.labels[state]}; change its "
                f"state with an update after creating it."
            )
            raise invalid_state(msg)
        status = changes.status if changes.status is not None else default_status
        _check_status(entity, model, state, status, doc.get(entity.pk))
        doc["statecode"], doc["statuscode"] = state, status

    def _owner_columns(self, entity: EntityType, doc: dict[str, Any]) -> None:
        if entity.ownership == "user":
            if not doc.get("_ownerid_value"):
                doc["_ownerid_value"] = self.actor.user_id
                doc["_ownerid_value" + LOGICAL_ANNOTATION] = "systemuser"
            doc["_owninguser_value"] = doc["_ownerid_value"]
            doc["_owningbusinessunit_value"] = self.identity.business_unit_id
        elif entity.ownership == "organization":
            doc["_organizationid_value"] = self.identity.organization_id
        elif entity.ownership == "businessunit":
            doc.setdefault("_businessunitid_value", self.identity.business_unit_id)
        if entity.has_money and not doc.get("_transactioncurrencyid_value"):
            doc["_transactioncurrencyid_value"] = self.identity.base_currency_id
            doc["_transactioncurrencyid_value" + LOGICAL_ANNOTATION] = "transactioncurrency"

    def _create_base_unit(self, schedule: dict[str, Any], name: str) -> None:
        """Creating a unit group also creates its base unit (baseuomname is insert-only)."""
        unit = BY_SET["uoms"]
        schedule_url = f"uomschedules({schedule['uomscheduleid']})"
        body = {"name": name, "quantity": 1, "isschedulebaseuom": True}
        self.create(unit, {**body, "uomscheduleid@odata.bind": schedule_url})

    # --- update ---------------------------------------------------------------------------
    def update(
        self, entity: EntityType, current: dict[str, Any], body: dict[str, Any]
    ) -> dict[str, Any]:
        record_id = str(current[entity.pk])
        if not entity.is_updatable or entity.is_system:
            msg = f"The 'Update' method does not support entities of type '{entity.logical}'."
            raise invalid_argument(msg)
        changes = read_changes(entity, body, self.context, record_id=record_id)
        changes.columns.pop(entity.pk, None)
        doc = dict(current)
        self._apply_state(entity, doc, changes)
        doc.update(changes.columns)
        self._stamp(doc, created=False)
        computed_columns(entity, doc)
        self._check_line(entity, doc)
        try:
            self.store.replace(entity.set_name, record_id, doc)
        except DuplicateKeyError as exc:
            raise duplicate_key(entity.logical, exc.attributes) from exc
        self._after_write(entity, doc, changes)
        sent = set(changes.columns)
        if changes.state is not None or changes.status is not None:
            sent.update(("statecode", "statuscode"))
        self._journal_update(entity, current, doc, sent)
        return doc

    def _journal_update(
        self, entity: EntityType, before: dict[str, Any], after: dict[str, Any], sent: set[str]
    ) -> None:
        """An Update's Target: the columns the request set (changed or not) and those the
        server changed with them (``modifiedon``, ``modifiedby``, full names, amounts)."""
        names = sent | {name for name, value in after.items() if before.get(name) != value}
        names.update(("modifiedon", "_modifiedby_value", "_modifiedonbehalfby_value"))
        names.discard("versionnumber")
        target = {name: after.get(name) for name in sorted(names)}
        self._journal("Update", entity, after, {entity.pk: after[entity.pk], **target})

    def _journal(
        self, message: str, entity: EntityType, doc: dict[str, Any], attributes: dict[str, Any]
    ) -> None:
        self.store.journal(
            Change(
                message,
                entity,
                str(doc[entity.pk]),
                attributes,
                user_id=self.actor.user_id,
                initiating_user_id=self.actor.on_behalf_of or self.actor.user_id,
                row_version=doc.get("versionnumber"),
                primary_name=doc.get(entity.primary_name) if entity.primary_name else None,
            )
        )

    def _apply_state(self, entity: EntityType, doc: dict[str, Any], changes: Changes) -> None:
        model = entity.state
        current_state = doc.get("statecode")
        if model is None or (changes.state is None and changes.status is None):
            if model is not None and changes.has_columns and current_state not in model.editable:
                raise read_only_record(entity.logical, model.labels.get(current_state or 0, "?"))
            return
        state = changes.state if changes.state is not None else int(current_state or 0)
        if state not in model.statuses:
            msg = f"{state} is not a valid state code on {entity.logical}."
            raise invalid_state(msg)
        if entity.set_name == "opportunities" and state in (1, 2) and current_state != state:
            message = "WinOpportunity" if state == 1 else "LoseOpportunity"
            msg = (
                f"This message can not be used to set the state of opportunity to "
                f"{model.labels[state]}. In order to set state of opportunity to "
                f"{model.labels[state]} use the {message} message instead."
            )
            raise invalid_state(msg)
        if changes.status is not None:
            status = changes.status
        elif state == current_state:
            status = int(doc.get("statuscode") or model.statuses[state][0])
        else:
            status = model.statuses[state][0]
        _check_status(entity, model, state, status, doc.get(entity.pk))
        if (
            changes.has_columns
            and current_state not in model.editable
            and state not in model.editable
        ):
            raise read_only_record(entity.logical, model.labels.get(current_state or 0, "?"))
        doc["statecode"], doc["statuscode"] = state, status

    def close(self, entity: EntityType, doc: dict[str, Any], state: int, status: int) -> None:
        """Move ``doc`` to a closing state by a message (not by PATCH), announced as an
        Update of the state columns."""
        closed = dict(doc, statecode=state, statuscode=status)
        self._stamp(closed, created=False)
        self.store.replace(entity.set_name, str(doc[entity.pk]), closed)
        self._journal_update(entity, doc, closed, {"statecode", "statuscode"})

    # --- upsert ---------------------------------------------------------------------------
    def upsert(
        self, ref: RecordRef, body: dict[str, Any], conditions: Conditions
    ) -> tuple[dict[str, Any], bool]:
        """PATCH on a record URL: update if it exists, else create; returns (doc, created)."""
        entity = ref.entity
        body_id = body.get(entity.pk)
        moved = isinstance(body_id, str) and body_id.lower() != ref.record_id
        if ref.record_id is not None and moved:
            raise id_mismatch(entity.logical, ref.record_id, str(body_id))
        current = resolve_ref(ref, self.store)
        check_conditions(entity, ref, current, conditions)
        if current is not None:
            if ref.key is not None:  # keys in the body can't change the record they address
                body = {name: value for name, value in body.items() if name not in ref.key}
            return self.update(entity, current, body), False
        if ref.key is not None:
            body = {**ref.key, **body}
        return self.create(entity, body, record_id=ref.record_id), True

    # --- delete ---------------------------------------------------------------------------
    def delete(self, ref: RecordRef, conditions: Conditions) -> None:
        entity = ref.entity
        current = resolve_ref(ref, self.store)
        if current is None:
            raise _missing(ref)
        check_conditions(entity, ref, current, conditions)
        self._check_line(entity, current)
        self._delete_tree(entity, str(current[entity.pk]))
        self._rollup(entity, current)

    def _delete_tree(self, entity: EntityType, record_id: str) -> None:
        for child_set, lookup in CASCADES.get(entity.set_name, ()):
            for child_id in self.store.child_ids(child_set, f"_{lookup}_value", record_id):
                self._delete_tree(BY_SET[child_set], child_id)
        if self.store.delete(entity.set_name, record_id):
            self._journal("Delete", entity, {entity.pk: record_id}, {})

    # --- lines and headers ----------------------------------------------------------------
    def _check_line(self, entity: EntityType, doc: dict[str, Any]) -> None:
        header_set = _LINE_HEADERS.get(entity.parent or "")
        if header_set is None:
            return
        header_entity = BY_SET[header_set]
        header_id = doc.get(f"_{entity.parent}_value")
        header = self.store.get(header_set, str(header_id)) if header_id else None
        model = header_entity.state
        if (
            header is not None
            and model is not None
            and header.get("statecode") not in model.editable
        ):
            raise read_only_record(
                header_entity.logical, model.labels.get(header["statecode"], "?")
            )
        product_id = doc.get("_productid_value")
        product = self.store.get("products", str(product_id)) if product_id else None
        if product is not None and product.get("statecode") != 0:
            msg = (
                f"The product '{product.get('name')}' is not active; only active products can "
                f"be added to a {entity.logical}. Publish (activate) the product first."
            )
            raise invalid_argument(msg)

    def _after_write(self, entity: EntityType, doc: dict[str, Any], changes: Changes) -> None:
        for relationship, other_id in changes.associations:
            self.store.associate(relationship, str(doc[entity.pk]), other_id)
        self._rollup(entity, doc)

    def _rollup(self, entity: EntityType, line: dict[str, Any]) -> None:
        """Recalculate header totals from the lines, as Dataverse's price engine does."""
        header_set = _LINE_HEADERS.get(entity.parent or "")
        header_id = line.get(f"_{entity.parent}_value")
        if header_set is None or not header_id:
            return
        header = self.store.get(header_set, str(header_id))
        if header is None:
            return
        lines_total, tax = self.store.select_totals(
            entity.set_name, f"_{entity.parent}_value", str(header_id)
        )
        discount = (
            number(header.get("discountamount"))
            + lines_total * number(header.get("discountpercentage")) / 100
        )
        totals = {
            "totallineitemamount": round(lines_total, 2),
            "totaldiscountamount": round(discount, 2),
            "totalamountlessfreight": round(lines_total - discount, 2),
            "totaltax": round(tax, 2),
            "totalamount": round(
                lines_total - discount + number(header.get("freightamount")) + tax, 2
            ),
        }
        if all(header.get(name) == value for name, value in totals.items()):
            return
        header.update(totals)
        header["modifiedon"] = timestamp()
        header["versionnumber"] = self.store.next_version()
        self.store.replace(header_set, str(header_id), header)


def _check_status(
    entity: EntityType, model: StateModel, state: int, status: int, record_id: Any
) -> None:
    if status not in model.statuses.get(state, ()):
        msg = (
            f"{status} is not a valid status code for state code "
            f"{entity.logical}State.{model.labels.get(state, state)} on {entity.logical} "
            f"with Id {record_id}."
        )
        raise invalid_state(msg)


def _missing(ref: RecordRef) -> SandboxError:
    if ref.record_id is not None:
        return does_not_exist(ref.entity.logical, ref.record_id)
    return key_does_not_exist(ref.entity.logical, ref.describe())


def check_conditions(
    entity: EntityType, ref: RecordRef, current: dict[str, Any] | None, conditions: Conditions
) -> None:
    """If-Match / If-None-Match on writes: ``*`` or a weak ETag, 412 when they fail."""
    if conditions.if_match is not None:
        if current is None:
            raise _missing(ref)
        if conditions.if_match.strip() != "*" and not _etag_matches(conditions.if_match, current):
            raise version_mismatch()
    if conditions.if_none_match is not None and current is not None:
        if conditions.if_none_match.strip() == "*" or _etag_matches(
            conditions.if_none_match, current
        ):
            raise duplicate_record()


def _etag_matches(header: str, doc: dict[str, Any]) -> bool:
    wanted = {value.strip() for value in header.split(",")}
    version = str(doc["versionnumber"])
    return etag(doc) in wanted or f'"{version}"' in wanted or version in wanted
