"""A third-party Dataverse client from PyPI, ``dataverse-api`` (not written here), against
the sandbox over HTTP with a client-credentials token.

It discovers each table at start (entity set name and primary id from
``EntityDefinitions``, alternate keys from ``.../Keys``, relationships, and whether
``CreateMultiple`` exists from ``sdkmessagefilters`` with a lookup path and ``$expand``),
then the scenario runs: create, read with formatted values, update with an ETag, upsert by
alternate key, ``$batch`` and delete. Every call is the client's own request; nothing the
client needs is stubbed.
"""

from __future__ import annotations

import requests
from dataverse_api.dataverse import DataverseClient
from dataverse_api.errors import DataverseAPIError
from dataverse_api.utils.batching import RequestMethod

from tests.fixtures.sandbox import RunningSandbox

FORMATTED = "@OData.Community.Display.V1.FormattedValue"


def _session(sandbox: RunningSandbox) -> requests.Session:
    token = requests.post(
        sandbox.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": sandbox.config.client_id,
            "client_secret": sandbox.config.client_secret,
            "scope": sandbox.scope,
        },
        timeout=10,
    )
    token.raise_for_status()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return session


def test_dataverse_api_client_scenario(sandbox: RunningSandbox) -> None:
    """Discover, create, read with formatted values, update with ETag (412 when stale, as
    Dataverse's optimistic concurrency answers), upsert by alternate key (OData-EntityId
    names the key values), batch create/upsert/delete, delete."""
    with _session(sandbox) as session:
        client = DataverseClient(session=session, environment_url=sandbox.base_url + "/")

        # Discover: what the client reads at start, and a full entity definition.
        accounts = client.entity("account")
        contacts = client.entity("contact")
        assert accounts.entity_set_name == "accounts" and accounts.primary_id_attr == "accountid"
        assert accounts.alternate_keys == {"account_accountnumber": ["accountnumber"]}
        assert accounts.supports_create_multiple is False  # the sandbox lists no such message
        assert "primarycontactid" in accounts.relationships.single_valued
        assert contacts.entity_set_name == "contacts"
        definition = client.get_entity_definition("account")
        assert definition.schema_name == "Account" and definition.has_notes is True

        # Create.
        (made,) = contacts.create([{"firstname": "Ann", "lastname": "Lee"}], return_created=True)
        assert made.status_code == 201
        contact_id = made.json()["contactid"]
        (created,) = accounts.create(
            [{"name": "Contoso", "accountnumber": "C-1", "creditlimit": 1500,
              "primarycontactid@odata.bind": f"/contacts({contact_id})"}]
        )  # fmt: skip
        assert created.status_code == 204

        # Read with formatted values (and an expansion).
        (row,) = accounts.read(
            select=["name", "creditlimit", "statecode", "_primarycontactid_value"],
            filter="accountnumber eq 'C-1'",
            expand="primarycontactid($select=fullname)",
            return_formatted_values=True,
            page_size=10,
        )
        assert row["creditlimit" + FORMATTED] == "$1,500.00"
        assert row["statecode" + FORMATTED] == "Active"
        assert row["_primarycontactid_value" + FORMATTED] == "Ann Lee"
        assert row["primarycontactid"]["fullname"] == "Ann Lee"

        # Update with ETag: the current one succeeds, a stale one is refused with 412.
        account_url = f"accounts({row['accountid']})"
        updated = accounts._api_call(  # the client's own request layer: no method takes If-Match
            RequestMethod.PATCH, account_url, headers={"If-Match": row["@odata.etag"]},
            json={"telephone1": "555-0100"},
        )  # fmt: skip
        assert updated.status_code == 204
        try:
            accounts._api_call(
                RequestMethod.PATCH, account_url, headers={"If-Match": row["@odata.etag"]},
                json={"telephone1": "555-0199"},
            )  # fmt: skip
        except DataverseAPIError as stale:
            assert stale.response.status_code == 412
        else:
            raise AssertionError("a stale ETag was accepted")

        # Upsert by alternate key: one update, one create.
        upserted = accounts.upsert(
            [{"accountnumber": "C-1", "name": "Contoso Ltd"},
             {"accountnumber": "C-2", "name": "Fabrikam"}],
            altkey_name="account_accountnumber",
        )  # fmt: skip
        assert [r.status_code for r in upserted] == [204, 204]
        assert upserted[1].headers["OData-EntityId"].endswith("accounts(accountnumber='C-2')")

        # Batch: create two, upsert one by key, then delete one by id.
        batch = accounts.create(
            [{"name": "Batch A", "accountnumber": "B-1"}, {"name": "Batch B"}], mode="batch"
        )
        assert [r.status_code for r in batch] == [200]
        accounts.upsert([{"accountnumber": "B-1", "name": "Batch A2"}],
                        mode="batch", altkey_name="account_accountnumber")  # fmt: skip
        names = {r["name"] for r in accounts.read(select=["name"])}
        assert names == {"Contoso Ltd", "Fabrikam", "Batch A2", "Batch B"}
        accounts.delete(mode="batch", filter="name eq 'Batch B'")

        # Delete.
        (gone,) = accounts.delete(ids=[row["accountid"]])
        assert gone.status_code == 204
        left = sorted(r["accountnumber"] for r in accounts.read(select=["accountnumber"]))
        assert left == ["B-1", "C-2"]
    assert sandbox.state.count("accounts") == 2
