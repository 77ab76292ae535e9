"""$batch bodies built and answers parsed, against the wire text in Microsoft's batch doc
(PAD webapi/execute-batch-operations-using-web-api.md; "[Organization Uri]" filled in)."""

from __future__ import annotations

import json
import uuid

import pytest

from app.dataverse import batch, batch_results
from app.dataverse.batch_results import BatchOutcome
from app.dataverse.errors import (
    DataverseProtocolError,
    DuplicateRecordError,
    InvalidRecordError,
)

ORG = "https://contoso.crm.dynamics.com"

# Changeset of three creates, then a GET outside it (the doc's "Change sets" response).
CHANGESET_RESPONSE = f"""--batchresponse_f27ef42d-51b0-4685-bac9-f468f844de2f
Content-Type: multipart/mixed; boundary=changesetresponse_64cc3fff-023a-45b0-b29d-df21583ffa15

--changesetresponse_64cc3fff-023a-45b0-b29d-df21583ffa15
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 1

HTTP/1.1 204 No Content
OData-Version: 4.0
Location: {ORG}/api/data/v9.2/tasks(e73ffc82-e292-ed11-aad1-000d3a9933c9)
OData-EntityId: {ORG}/api/data/v9.2/tasks(e73ffc82-e292-ed11-aad1-000d3a9933c9)


--changesetresponse_64cc3fff-023a-45b0-b29d-df21583ffa15
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 2

HTTP/1.1 204 No Content
OData-Version: 4.0
Location: {ORG}/api/data/v9.2/tasks(e83ffc82-e292-ed11-aad1-000d3a9933c9)
OData-EntityId: {ORG}/api/data/v9.2/tasks(e83ffc82-e292-ed11-aad1-000d3a9933c9)


--changesetresponse_64cc3fff-023a-45b0-b29d-df21583ffa15
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 3

HTTP/1.1 204 No Content
OData-Version: 4.0
Location: {ORG}/api/data/v9.2/tasks(e93ffc82-e292-ed11-aad1-000d3a9933c9)
OData-EntityId: {ORG}/api/data/v9.2/tasks(e93ffc82-e292-ed11-aad1-000d3a9933c9)


--changesetresponse_64cc3fff-023a-45b0-b29d-df21583ffa15--
--batchresponse_f27ef42d-51b0-4685-bac9-f468f844de2f
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 200 OK
Content-Type: application/json; odata.metadata=minimal; odata.streaming=true
OData-Version: 4.0

{{
  "@odata.context": "{ORG}/api/data/v9.2/$metadata#tasks(subject)",
  "value": [
    {{
      "@odata.etag": "W/\\"77181173\\"",
      "subject": "Task 1 in batch",
      "activityid": "e73ffc82-e292-ed11-aad1-000d3a9933c9"
    }}
  ]
}}
--batchresponse_f27ef42d-51b0-4685-bac9-f468f844de2f--
"""
CHANGESET_TYPE = "multipart/mixed; boundary=batchresponse_f27ef42d-51b0-4685-bac9-f468f844de2f"

LENGTH_ERROR = (
    '{"error":{"code":"0x80044331","message":"A validation error occurred.  The length of the '
    "'subject' attribute of the 'task' entity exceeded the maximum allowed length of '200'.\"}}"
)

# Continue-on-error: the first create fails, the other two run (the doc's "Handling errors").
CONTINUE_RESPONSE = f"""--batchresponse_f44bd09d-573f-4a30-bca0-2e500ee7e139
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 400 Bad Request
REQ_ID: de4c5227-4a28-4ebd-8ced-3392ece1697b
Content-Type: application/json; odata.metadata=minimal
OData-Version: 4.0

{LENGTH_ERROR}
--batchresponse_f44bd09d-573f-4a30-bca0-2e500ee7e139
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 204 No Content
OData-Version: 4.0
Location: {ORG}/api/data/v9.2/tasks(aed2ae8b-3c94-ed11-aad1-000d3a9933c9)
OData-EntityId: {ORG}/api/data/v9.2/tasks(aed2ae8b-3c94-ed11-aad1-000d3a9933c9)


--batchresponse_f44bd09d-573f-4a30-bca0-2e500ee7e139
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 204 No Content
OData-Version: 4.0
Location: {ORG}/api/data/v9.2/tasks(b181a991-3c94-ed11-aad1-000d3a9933c9)
OData-EntityId: {ORG}/api/data/v9.2/tasks(b181a991-3c94-ed11-aad1-000d3a9933c9)


--batchresponse_f44bd09d-573f-4a30-bca0-2e500ee7e139--
"""
CONTINUE_TYPE = "multipart/mixed; boundary=batchresponse_f44bd09d-573f-4a30-bca0-2e500ee7e139"


def _crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


def _task(subject: str) -> batch.BatchOperation:
    return batch.create_op("tasks", {"subject": subject}, primary_key="activityid")


@pytest.mark.parametrize("line_break", ["lf", "crlf"])
def test_parse_changeset_then_get(line_break: str) -> None:
    raw = _crlf(CHANGESET_RESPONSE) if line_break == "crlf" else CHANGESET_RESPONSE.encode()
    parts = batch.parse_response(raw, CHANGESET_TYPE)
    assert len(parts) == 2
    changeset, get = parts
    assert isinstance(changeset, batch.ChangeSetPart)
    assert [p.content_id for p in changeset.parts] == ["1", "2", "3"]
    assert {p.status_code for p in changeset.parts} == {204}
    assert isinstance(get, batch.HttpPart) and get.status_code == 200
    assert get.json()["value"][0]["subject"] == "Task 1 in batch"

    items = batch.assign_content_ids(
        [batch.ChangeSet([_task("1"), _task("2"), _task("3")]), batch.get_op("tasks", uuid.uuid4())]
    )
    results = batch_results.match_results(items, parts)
    assert [r.outcome for r in results] == [BatchOutcome.ok] * 4
    assert results[0].entity_id == uuid.UUID("e73ffc82-e292-ed11-aad1-000d3a9933c9")
    assert results[2].entity_id == uuid.UUID("e93ffc82-e292-ed11-aad1-000d3a9933c9")
    assert results[3].body["value"][0]["activityid"] == "e73ffc82-e292-ed11-aad1-000d3a9933c9"


def test_parse_continue_on_error_fails_only_the_bad_record() -> None:
    parts = batch.parse_response(_crlf(CONTINUE_RESPONSE), CONTINUE_TYPE)
    items = [_task("x" * 300), _task("2"), _task("3")]
    results = batch_results.match_results(items, parts)
    assert [r.outcome for r in results] == [BatchOutcome.failed, BatchOutcome.ok, BatchOutcome.ok]
    error = results[0].error
    assert isinstance(error, InvalidRecordError)
    assert error.code == "0x80044331" and error.status_code == 400
    assert "exceeded the maximum allowed length" in error.dataverse_message
    assert error.is_record_level
    assert results[1].entity_id == uuid.UUID("aed2ae8b-3c94-ed11-aad1-000d3a9933c9")


def _stopped_answer(content_id: str | None) -> bytes:
    # Without continue-on-error Dataverse answers 400 with only the failing part.
    echo = f"Content-ID: {content_id}\r\n" if content_id else ""
    return (
        "--batchresponse_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: "
        f"binary\r\n{echo}\r\nHTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
        f"\r\n{LENGTH_ERROR}\r\n--batchresponse_1--\r\n"
    ).encode()


def test_a_stopped_batch_says_what_ran_what_failed_and_what_did_not_run() -> None:
    items = batch.assign_content_ids(
        [_task("1"), _task("x" * 300), _task("3")], include_top_level=True
    )
    assert [item.content_id for item in items] == ["1", "2", "3"]  # type: ignore[union-attr]
    parts = batch.parse_response(_stopped_answer("2"), "multipart/mixed; boundary=batchresponse_1")
    results = batch_results.match_results(items, parts, has_stopped=True)
    assert [r.outcome for r in results] == [
        BatchOutcome.ok,
        BatchOutcome.failed,
        BatchOutcome.not_run,
    ]
    assert results[0].entity_id == items[0].record_id  # type: ignore[union-attr]
    assert isinstance(results[1].error, InvalidRecordError)


def test_a_stopped_batch_without_an_echoed_content_id_is_unknown() -> None:
    items = [_task("1"), _task("2")]
    parts = batch.parse_response(_stopped_answer(None), "multipart/mixed; boundary=batchresponse_1")
    results = batch_results.match_results(items, parts, has_stopped=True)
    assert {r.outcome for r in results} == {BatchOutcome.unknown}


def test_failed_changeset_is_rolled_back_as_a_whole() -> None:
    failing = (
        "--batchresponse_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: "
        "binary\r\nContent-ID: 2\r\n\r\nHTTP/1.1 400 Bad Request\r\nContent-Type: "
        'application/json\r\n\r\n{"error":{"code":"0x80044331","message":"bad"}}\r\n'
        "--batchresponse_1--\r\n"
    )
    parts = batch.parse_response(failing.encode(), "multipart/mixed; boundary=batchresponse_1")
    items = batch.assign_content_ids([batch.ChangeSet([_task("a"), _task("b"), _task("c")])])
    results = batch_results.match_results(items, parts)
    assert [r.outcome for r in results] == [
        BatchOutcome.rolled_back,
        BatchOutcome.failed,
        BatchOutcome.rolled_back,
    ]
    assert all(r.error is not None and r.error.code == "0x80044331" for r in results)


def test_build_body_matches_the_documented_layout() -> None:
    account = batch.create_op("accounts", {"name": "A"}, id=uuid.UUID(int=1), content_id="1")
    contact = batch.create_op(
        "contacts",
        {"firstname": "C", "parentcustomerid_account@odata.bind": batch.reference("1")},
        id=uuid.UUID(int=2),
    )
    get = batch.get_op("accounts", uuid.UUID(int=1), select=["name"])
    items = batch.assign_content_ids([batch.ChangeSet([account, contact]), get])
    body = batch.build_body(items, api_path="/api/data/v9.2/", boundary="batch_AAA").decode()
    assert "\r\n" in body and "\n" not in body.replace("\r\n", "")  # CRLF only
    lines = body.split("\r\n")
    assert lines[0] == "--batch_AAA"
    assert lines[1].startswith("Content-Type: multipart/mixed; boundary=changeset_")
    changeset = lines[1].split("boundary=")[1]
    assert lines[2:7] == [
        "",
        f"--{changeset}",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "Content-ID: 1",
    ]
    assert lines[7:10] == [
        "",
        "POST /api/data/v9.2/accounts HTTP/1.1",
        "Content-Type: application/json; type=entry",
    ]
    assert json.loads(lines[11]) == {"name": "A", "accountid": str(uuid.UUID(int=1))}
    assert "Content-ID: 2" in lines  # assigned, not clashing with the given "1"
    contact_body = json.loads(lines[lines.index("POST /api/data/v9.2/contacts HTTP/1.1") + 3])
    assert contact_body["parentcustomerid_account@odata.bind"] == "$1"
    assert f"--{changeset}--" in lines
    get_line = f"GET /api/data/v9.2/accounts({uuid.UUID(int=1)})?$select=name HTTP/1.1"
    assert get_line in lines
    assert lines[-2:] == ["--batch_AAA--", ""]


def test_build_refuses_get_in_a_changeset_and_empty_changesets() -> None:
    with pytest.raises(ValueError, match="GET is not allowed"):
        batch.build_body(
            [batch.ChangeSet([batch.get_op("accounts", uuid.uuid4())])], api_path="/", boundary="b"
        )
    with pytest.raises(ValueError, match="no operations"):
        batch.build_body([batch.ChangeSet([])], api_path="/", boundary="b")


def test_replayed_duplicates_count_as_done() -> None:
    create = _task("a")
    update = batch.update_op("tasks", uuid.uuid4(), {"subject": "b"})
    duplicate = (
        "--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 412 Precondition Failed\r\n"
        'Content-Type: application/json\r\n\r\n{"error":{"code":"0x80040237","message":'
        '"A record with matching key values already exists."}}\r\n--b--\r\n'
    )
    parts = batch.parse_response(duplicate.encode(), "multipart/mixed; boundary=b")
    items = batch.assign_content_ids([batch.ChangeSet([create, update])])
    results = batch_results.match_results(items, parts)
    assert isinstance(results[0].error, DuplicateRecordError)
    accepted = batch_results.accept_replayed_duplicates(items, results)
    assert all(r.is_ok and r.is_replayed_duplicate for r in accepted)
    assert accepted[0].entity_id == create.record_id


def test_garbage_answers_raise_protocol_errors() -> None:
    with pytest.raises(DataverseProtocolError, match="boundary"):
        batch.parse_response(b"x", "multipart/mixed")
    with pytest.raises(DataverseProtocolError, match="status line"):
        batch.parse_response(
            b"--b\r\nContent-Type: application/http\r\n\r\nnot http\r\n--b--",
            "multipart/mixed; boundary=b",
        )
    with pytest.raises(DataverseProtocolError, match="parts for"):
        parts = batch.parse_response(_crlf(CONTINUE_RESPONSE), CONTINUE_TYPE)
        batch_results.match_results([_task("only one")], parts)
