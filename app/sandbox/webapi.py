"""The Web API resources: entity sets, records, properties, ``$ref`` links, WhoAmI.

``WebApi.execute`` runs one Operation (from HTTP or from a ``$batch`` part) and returns an
Outcome; errors become Dataverse error bodies here, so both callers render them alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.sandbox.config import SandboxConfig
from app.sandbox.discovery.entity_definitions import EntityDefinitions
from app.sandbox.errors import (
    SandboxError,
    does_not_exist,
    invalid_argument,
    method_not_allowed,
    no_http_resource,
    resource_not_found,
)
from app.sandbox.operations.actions import CLOSE_ACTIONS, close_opportunity
from app.sandbox.operations.keys import RecordRef, parse_key, split_path, split_segment
from app.sandbox.operations.payload import BindContext, reference_to_ref, resolve_ref
from app.sandbox.operations.query import (
    COUNT_LIMIT,
    count_sql,
    encode_skiptoken,
    next_link,
    page_sql,
    parse_options,
    parse_select,
    parse_single,
    sort_values,
)
from app.sandbox.operations.records import Actor, Conditions, Identity, Records, etag
from app.sandbox.operations.render import (
    Operation,
    Outcome,
    Preferences,
    context_url,
    entity_url,
    error_outcome,
    json_outcome,
    key_url,
    parse_prefer,
)
from app.sandbox.operations.rows import RowWriter
from app.sandbox.schema.attributes import schema_for
from app.sandbox.schema.entities import BY_SET, ENTITIES, RELATIONSHIPS, EntityType
from app.sandbox.schema.metadata import metadata_document
from app.sandbox.security import acting_user
from app.sandbox.store import Store


@dataclass
class CallContext:
    api_url: str  # absolute service root, ends with "/"
    content_ids: dict[str, str] = field(default_factory=dict)
    actor: Actor | None = None  # who the operation acts as (set per operation)


class WebApi:
    def __init__(self, store: Store, config: SandboxConfig, identity: Identity) -> None:
        self.store = store
        self.config = config
        self.identity = identity
        self.api_path = f"/api/data/v{config.api_version}/"
        self.schema = schema_for(config)
        self.definitions = EntityDefinitions(self.schema, config)

    def records(self, call: CallContext) -> Records:
        context = BindContext(
            self.store, self.config.alternate_keys, self.api_path, call.content_ids, self.schema
        )
        return Records(self.store, self.identity, context, call.actor)

    def writer(self, op: Operation) -> RowWriter:
        prefs = parse_prefer(op.headers.get("prefer"))
        return RowWriter(self.store, prefs, base_currency_id=self.identity.base_currency_id)

    def execute(self, op: Operation, call: CallContext, *, in_changeset: bool = False) -> Outcome:
        """Run one operation atomically; in a change set, the change set's transaction is
        the unit (its first failure rolls all of it back), so no savepoint of its own."""
        try:
            call.actor = acting_user(self.store, self.identity, op.headers)
            if in_changeset:
                return self._dispatch(op, call)
            with self.store.transaction():
                return self._dispatch(op, call)
        except SandboxError as error:
            return error_outcome(error)

    def _dispatch(self, op: Operation, call: CallContext) -> Outcome:
        path = op.path
        if path.startswith("$") and path.split("/")[0] in call.content_ids:
            head, _, rest = path.partition("/")
            path = call.content_ids[head] + (f"/{rest}" if rest else "")
        segments = split_path(path)
        if not segments:
            return self._service_document(call)
        if segments == ["$metadata"]:
            return Outcome(200, {"Content-Type": "application/xml"}, metadata_document().encode())
        if segments[0] in ("WhoAmI", "WhoAmI()"):
            if op.method != "GET":
                raise no_http_resource(call.api_url + segments[0])
            return self._who_am_i(call)
        if segments[0] in CLOSE_ACTIONS:
            if op.method != "POST":
                raise no_http_resource(call.api_url + segments[0])
            close_opportunity(segments[0], op.json_body(), self.records(call))
            return Outcome(204)
        if segments[0].startswith("EntityDefinitions"):
            return self.definitions.answer(segments, op, call.api_url)
        name, key_text = split_segment(segments[0])
        entity = BY_SET.get(name)
        if entity is None:
            raise resource_not_found(name)
        if key_text is None:
            return self._collection(entity, segments[1:], op, call)
        ref = parse_key(key_text, entity, self.config.alternate_keys)
        return self._record(ref, segments[1:], op, call)

    # --- service root ---------------------------------------------------------------------
    def _service_document(self, call: CallContext) -> Outcome:
        sets = [{"name": e.set_name, "kind": "EntitySet", "url": e.set_name} for e in ENTITIES]
        return json_outcome(200, {"@odata.context": f"{call.api_url}$metadata", "value": sets})

    def _who_am_i(self, call: CallContext) -> Outcome:
        return json_outcome(
            200,
            {
                "@odata.context": f"{call.api_url}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
                "BusinessUnitId": self.identity.business_unit_id,
                "UserId": call.actor.user_id if call.actor else self.identity.user_id,
                "OrganizationId": self.identity.organization_id,
            },
        )

    # --- collections ----------------------------------------------------------------------
    def _collection(
        self, entity: EntityType, rest: list[str], op: Operation, call: CallContext
    ) -> Outcome:
        if rest == ["$count"] and op.method == "GET":
            options = parse_options(
                {k: v for k, v in op.query.items() if k == "$filter"}, entity, self.schema
            )
            sql, params = count_sql(entity, options, COUNT_LIMIT)
            count = int(self.store.scalar(sql, tuple(params)))
            return Outcome(200, {"Content-Type": "text/plain"}, str(count).encode())
        if rest:
            raise resource_not_found(rest[0])
        if op.method == "GET":
            return self._list(entity, op, call)
        if op.method == "POST":
            return self._create(entity, op, call)
        raise method_not_allowed(op.method, entity.set_name)

    def _list(self, entity: EntityType, op: Operation, call: CallContext) -> Outcome:
        options = parse_options(op.query, entity, self.schema)
        prefs = parse_prefer(op.headers.get("prefer"))
        page = self.config.max_page_size
        paged = prefs.max_page_size is not None
        if prefs.max_page_size is not None:
            page = min(prefs.max_page_size, self.config.max_page_size)
        elif options.top is not None:  # $top caps the result and suppresses paging
            page = min(options.top, self.config.max_page_size)
        headers = prefs.applied(page_size=page if paged else None)
        sql, params = page_sql(entity, options, page + 1)
        rows = self.store.select(sql, tuple(params))
        payload: dict[str, Any] = {
            "@odata.context": context_url(call.api_url, entity, options.select, single=False)
        }
        payload.update(self._counts(entity, options, prefs))
        writer = self.writer(op)
        payload["value"] = [
            writer.row(doc, entity, options.select, options.expand) for doc in rows[:page]
        ]
        if len(rows) > page and (paged or options.top is None):
            token = encode_skiptoken(sort_values(rows[page - 1], options), options.page_number + 1)
            payload["@odata.nextLink"] = next_link(
                f"{call.api_url}{entity.set_name}", op.query, token
            )
        return json_outcome(200, payload, headers)

    def _counts(self, entity: EntityType, options: Any, prefs: Preferences) -> dict[str, Any]:
        """``@odata.count`` with ``$count=true``; the total record count annotations when
        asked for, -1 (and not exceeded) without ``$count=true``, as Dataverse sends them."""
        counts: dict[str, Any] = {}
        total = -1
        if options.count:
            sql, params = count_sql(entity, options, None)
            total = int(self.store.scalar(sql, tuple(params)))
            counts["@odata.count"] = min(total, COUNT_LIMIT)
        if prefs.wants_annotation("@Microsoft.Dynamics.CRM.totalrecordcount"):
            counts["@Microsoft.Dynamics.CRM.totalrecordcount"] = total
        if prefs.wants_annotation("@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"):
            counts["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] = total > COUNT_LIMIT
        return counts

    def _create(self, entity: EntityType, op: Operation, call: CallContext) -> Outcome:
        _check_writable(entity, "Create")
        prefs = parse_prefer(op.headers.get("prefer"))
        if prefs.return_representation:  # refuse what the answer can't honour before writing
            parse_single(op.query, entity, self.schema)
        doc = self.records(call).create(entity, op.json_body())
        return self._written(entity, doc, op, call, prefs, status=201, created=True)

    def _written(
        self,
        entity: EntityType,
        doc: dict[str, Any],
        op: Operation,
        call: CallContext,
        prefs: Preferences,
        *,
        status: int,
        created: bool,
        key: dict[str, Any] | None = None,
    ) -> Outcome:
        """The answer to a write; a record addressed by alternate key is named by that key
        in ``OData-EntityId``, as Dataverse does (a Content-ID still refers to its id)."""
        url = entity_url(entity, doc)
        named = call.api_url + (key_url(entity, key) if key else url)
        if prefs.return_representation:
            select, expansions = parse_single(op.query, entity, self.schema)
            body = {
                "@odata.context": context_url(call.api_url, entity, select, single=True),
                **self.writer(op).row(doc, entity, select, expansions),
            }
            headers = {"Preference-Applied": "return=representation", "ETag": etag(doc)}
            if not created or op.method == "PATCH":
                headers["OData-EntityId"] = named
            outcome = json_outcome(status, body, headers)
        else:
            outcome = Outcome(204, {"OData-EntityId": named})
        outcome.entity_url = url
        return outcome

    # --- records --------------------------------------------------------------------------
    def _record(self, ref: RecordRef, rest: list[str], op: Operation, call: CallContext) -> Outcome:
        if not rest:
            if op.method == "GET":
                return self._retrieve(ref, op, call)
            if op.method == "PATCH":
                return self._upsert(ref, op, call)
            if op.method == "DELETE":
                _check_writable(ref.entity, "Delete")
                self.records(call).delete(ref, _conditions(op))
                return Outcome(204)
            raise method_not_allowed(op.method, ref.entity.set_name)
        if len(rest) == 2 and rest[1] == "$ref":
            return self._link(ref, rest[0], op, call)
        if len(rest) == 1 and rest[0] in RELATIONSHIPS and op.method == "GET":
            return self._related(ref, rest[0], op, call)
        if len(rest) == 1:
            return self._property(ref, rest[0], op, call)
        raise resource_not_found(rest[-1])

    def _existing(self, ref: RecordRef) -> dict[str, Any]:
        doc = resolve_ref(ref, self.store)
        if doc is None:
            raise does_not_exist(ref.entity.logical, ref.describe())
        return doc

    def _retrieve(self, ref: RecordRef, op: Operation, call: CallContext) -> Outcome:
        doc = self._existing(ref)
        select, expansions = parse_single(op.query, ref.entity, self.schema)
        prefs = parse_prefer(op.headers.get("prefer"))
        wanted = op.headers.get("if-none-match")
        # Dataverse never answers 304 to a read that expands or asks for annotations.
        conditional = not expansions and not prefs.annotations
        if conditional and wanted and wanted.strip() not in ("null", "*") and etag(doc) in wanted:
            return Outcome(304, {"ETag": etag(doc)})
        body = {
            "@odata.context": context_url(call.api_url, ref.entity, select, single=True),
            **self.writer(op).row(doc, ref.entity, select, expansions),
        }
        return json_outcome(200, body, {"ETag": etag(doc), **prefs.applied()})

    def _upsert(self, ref: RecordRef, op: Operation, call: CallContext) -> Outcome:
        prefs = parse_prefer(op.headers.get("prefer"))
        if prefs.return_representation:
            parse_single(op.query, ref.entity, self.schema)
        _check_writable(ref.entity, "Update")
        doc, created = self.records(call).upsert(ref, op.json_body(), _conditions(op))
        status = 201 if created else 200
        return self._written(
            ref.entity, doc, op, call, prefs, status=status, created=created, key=ref.key
        )

    def _property(self, ref: RecordRef, name: str, op: Operation, call: CallContext) -> Outcome:
        doc = self._existing(ref)
        if not self.schema.declares(ref.entity, name):
            raise resource_not_found(name)  # an unknown path segment, as OData answers
        if op.method == "GET":
            context = f"{call.api_url}$metadata#{ref.entity.set_name}({doc[ref.entity.pk]})/{name}"
            return json_outcome(200, {"@odata.context": context, "value": doc.get(name)})
        if op.method == "PUT":
            body = {name: op.json_body().get("value")}
        elif op.method == "DELETE":
            body = {name: None}
        else:
            raise method_not_allowed(op.method, name)
        self.records(call).update(ref.entity, doc, body)
        return Outcome(204)

    def _related(
        self, ref: RecordRef, relationship: str, op: Operation, call: CallContext
    ) -> Outcome:
        doc = self._existing(ref)
        left, right = RELATIONSHIPS[relationship]
        from_left = ref.entity.set_name == left
        other = BY_SET[right if from_left else left]
        ids = self.store.associated(relationship, str(doc[ref.entity.pk]), from_left=from_left)
        select = parse_select(op.query.get("$select"), other, self.schema)
        rows = [row for row in (self.store.get(other.set_name, i) for i in ids) if row is not None]
        writer = self.writer(op)
        payload = {
            "@odata.context": context_url(call.api_url, other, select, single=False),
            "value": [writer.row(row, other, select) for row in rows],
        }
        return json_outcome(200, payload)

    def _link(self, ref: RecordRef, nav: str, op: Operation, call: CallContext) -> Outcome:
        """``$ref``: associate/disassociate many-to-many, or set/clear a single lookup."""
        doc = self._existing(ref)
        relationship, _, key_text = nav.partition("(")
        records = self.records(call)
        if relationship in RELATIONSHIPS:
            return self._many_to_many(ref, doc, relationship, key_text.rstrip(")"), op, call)
        if op.method == "PUT":
            target = _odata_id(op)
            records.update(ref.entity, doc, {f"{nav}@odata.bind": target})
        elif op.method == "DELETE":
            records.update(ref.entity, doc, {f"{nav}@odata.bind": None})
        else:
            raise method_not_allowed(op.method, f"{nav}/$ref")
        return Outcome(204)

    def _many_to_many(
        self,
        ref: RecordRef,
        doc: dict[str, Any],
        relationship: str,
        key_text: str,
        op: Operation,
        call: CallContext,
    ) -> Outcome:
        left, _ = RELATIONSHIPS[relationship]
        context = self.records(call).context
        if op.method == "POST":
            other_ref = reference_to_ref(_odata_id(op), context)
        elif op.method == "DELETE" and (key_text or "$id" in op.query):
            text = op.query.get("$id") or f"{self._other_set(ref, relationship)}({key_text})"
            other_ref = reference_to_ref(text, context)
        else:
            raise method_not_allowed(op.method, f"{relationship}/$ref")
        other = self._existing(other_ref)
        ids = (str(doc[ref.entity.pk]), str(other[other_ref.entity.pk]))
        left_id, right_id = ids if ref.entity.set_name == left else ids[::-1]
        if op.method == "POST":
            if not self.store.associate(relationship, left_id, right_id):
                raise SandboxError(412, "0x80040237", "Cannot insert duplicate key.")
        elif not self.store.disassociate(relationship, left_id, right_id):
            raise does_not_exist(other_ref.entity.logical, other_ref.describe())
        return Outcome(204)

    def _other_set(self, ref: RecordRef, relationship: str) -> str:
        left, right = RELATIONSHIPS[relationship]
        return right if ref.entity.set_name == left else left


def _check_writable(entity: EntityType, message: str) -> None:
    if entity.is_system:
        msg = f"The '{message}' method does not support entities of type '{entity.logical}'."
        raise invalid_argument(msg)


def _conditions(op: Operation) -> Conditions:
    return Conditions(op.headers.get("if-match"), op.headers.get("if-none-match"))


def _odata_id(op: Operation) -> str:
    body = op.json_body()
    target = body.get("@odata.id")
    if not isinstance(target, str):
        raise SandboxError(400, "0x80048d19", "The body of a $ref request needs '@odata.id'.")
    return target
