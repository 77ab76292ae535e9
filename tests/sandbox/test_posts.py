"""Activity feed posts (PAD post.md): create and read only, choices, polymorphic regarding."""

from __future__ import annotations

import uuid

import httpx

from tests.sandbox.conftest import error_of


async def _order(api: httpx.AsyncClient) -> str:
    account = await api.post("accounts", json={"name": "Cycle shop"})
    account_url = account.headers["OData-EntityId"].rsplit("/", 1)[-1]
    order = await api.post(
        "salesorders", json={"name": "Web order", "customerid_account@odata.bind": account_url}
    )
    return order.headers["OData-EntityId"].rsplit("(", 1)[-1].rstrip(")")


async def test_post_regarding_an_order_reads_back_its_lookup(api: httpx.AsyncClient) -> None:
    order_id = await _order(api)
    post_id = str(uuid.uuid4())
    body = {
        "postid": post_id, "text": "The order status has changed to Released.", "source": 1,
        "type": 7, "regardingobjectid_salesorder@odata.bind": f"/salesorders({order_id})",
    }  # fmt: skip
    created = await api.post("posts", json=body)
    assert created.status_code == 204, created.text
    row = (await api.get(f"posts({post_id})")).json()
    assert row["_regardingobjectid_value"] == order_id
    assert row["regardingobjecttypecode"] == "salesorder"
    assert (row["text"], row["source"], row["type"]) == (body["text"], 1, 7)


async def test_post_choices_are_those_of_dataverse(api: httpx.AsyncClient) -> None:
    order_id = await _order(api)
    regarding = {"regardingobjectid_salesorder@odata.bind": f"/salesorders({order_id})"}
    action_hub = await api.post("posts", json={"text": "x", "source": 3, "type": 1, **regarding})
    assert action_hub.status_code == 204, action_hub.text
    for bad in ({"source": 4, "type": 7}, {"source": 1, "type": 8}):
        refused = await api.post("posts", json={"text": "x", **bad, **regarding})
        assert refused.status_code == 400
        assert "outside the valid range" in error_of(refused)["message"]


async def test_posts_cannot_be_updated(api: httpx.AsyncClient) -> None:
    order_id = await _order(api)
    post_id = str(uuid.uuid4())
    regarding = {"regardingobjectid_salesorder@odata.bind": f"/salesorders({order_id})"}
    await api.post("posts", json={"postid": post_id, "text": "a", "source": 1, "type": 7,
                                  **regarding})  # fmt: skip
    refused = await api.patch(f"posts({post_id})", json={"text": "b"}, headers={"If-Match": "*"})
    assert refused.status_code == 400
    assert "Update" in error_of(refused)["message"]
