"""Activities, deal timelines and manual overrides (validation side; the applied override is e2e)."""

from __future__ import annotations

import httpx

from .gateway_support import ACTIVITY_COUNT, Keys, activity_id, bearer


async def _all_pages(client: httpx.AsyncClient, url: str, key: str) -> tuple[list[int], list[str]]:
    sizes: list[int] = []
    ids: list[str] = []
    cursor = ""
    while True:
        response = await client.get(url + cursor, headers=bearer(key))
        assert response.status_code == 200, response.text
        body = response.json()
        sizes.append(len(body["items"]))
        ids += [item["activity_id"] for item in body["items"]]
        if body["next_cursor"] is None:
            return sizes, ids
        cursor = f"&cursor={body['next_cursor']}"


async def test_activities_paginate_newest_first_to_the_end(gateway: httpx.AsyncClient, keys: Keys) -> None:
    sizes, ids = await _all_pages(gateway, "/v1/activities?limit=5", keys.read)
    assert sizes == [5, 5, 2]
    assert ids == [str(activity_id("acme", n)) for n in reversed(range(ACTIVITY_COUNT))]


async def test_activity_filters(gateway: httpx.AsyncClient, keys: Keys) -> None:
    async def count(query: str) -> int:
        response = await gateway.get(f"/v1/activities?{query}", headers=bearer(keys.read))
        assert response.status_code == 200, response.text
        return len(response.json()["items"])

    assert await count("rep_id=rep-1") == 7
    assert await count("rep_id=rep-2&kind=email") == 5
    assert await count("deal_id=deal-1") == 7
    assert await count("account_id=acc-1") == 7
    assert await count("team_id=team-a") == 12
    assert await count("status=unmatched") == 5
    # A status that is none of the six is a 422 naming it, not an empty list.
    assert (await gateway.get("/v1/activities?status=rep_only", headers=bearer(keys.read))).status_code == 422
    assert await count("kind=meeting") == 0
    assert await count("from=2026-11-03&to=2026-11-30") == 0
    assert await count("from=2026-11-02&to=2026-11-02") == 12
    assert await count("rep_id=rep-9") == 0
    first = (await gateway.get("/v1/activities?limit=1&deal_id=deal-1", headers=bearer(keys.read))).json()
    assert first["items"][0]["activity_id"] == str(activity_id("acme", 6))
    assert first["items"][0]["rule_path"] == "contact.single_open_deal"
    assert first["items"][0]["runners_up"] == [{"deal_id": "deal-2", "score": 0.4}]
    bad = await gateway.get("/v1/activities?from=2026-11-03&to=2026-11-01", headers=bearer(keys.read))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "to"


async def test_entity_filters_paginate_newest_first_with_dates_and_other_filters(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    """A rep's, deal's or account's list is walked from that entity's index in the attribution's
    time, and pages, dates and the other filters combine with it exactly as on the whole list."""
    newest_first = [str(activity_id("acme", n)) for n in reversed(range(ACTIVITY_COUNT))]
    sizes, ids = await _all_pages(gateway, "/v1/activities?limit=3&rep_id=rep-1", keys.read)
    assert (sizes, ids) == ([3, 3, 1], newest_first[5:])
    sizes, ids = await _all_pages(gateway, "/v1/activities?limit=2&rep_id=rep-2&kind=email", keys.read)
    assert (sizes, ids) == ([2, 2, 1], newest_first[:5])
    sizes, ids = await _all_pages(
        gateway,
        "/v1/activities?limit=4&account_id=acc-1&team_id=team-a&from=2026-11-02&to=2026-11-02",
        keys.read,
    )
    assert (sizes, ids) == ([4, 3], newest_first[5:])
    _, ids = await _all_pages(gateway, "/v1/activities?limit=50&deal_id=deal-1&from=2026-11-03", keys.read)
    assert ids == []


async def test_activity_read_with_attribution_history_and_override(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    aid = activity_id("acme", 0)
    response = await gateway.get(f"/v1/activities/{aid}", headers=bearer(keys.read))
    assert response.status_code == 200
    body = response.json()
    assert body["payload"] == {"external_id": "x-0", "kind": "call", "participants": []}
    attribution = body["attribution"]
    assert attribution["version"] == 2
    assert attribution["deal_id"] == "deal-1"
    assert attribution["is_override"] is True
    assert attribution["rule_path"] == "contact.single_open_deal"
    assert attribution["runners_up"] == [{"deal_id": "deal-2", "score": 0.4}]
    assert [(h["version"], h["deal_id"], h["is_override"]) for h in body["history"]] == [
        (1, "deal-2", False),
        (2, "deal-1", True),
    ]
    assert body["override"]["set_by"] == "spm_admin_x"
    assert body["override"]["reason"] == "was the renewal"


async def test_deal_timeline_with_summary(gateway: httpx.AsyncClient, keys: Keys) -> None:
    sizes, ids = await _all_pages(gateway, "/v1/deals/deal-1/activities?limit=3", keys.read)
    assert sizes == [3, 3, 1]
    assert ids == [str(activity_id("acme", n)) for n in reversed(range(7))]
    body = (await gateway.get("/v1/deals/deal-1/activities", headers=bearer(keys.read))).json()
    assert body["deal"]["name"] == "Buyer renewal"
    assert body["deal"]["is_won"] is True
    assert body["summary"] == {
        "activities": 7,
        "last_activity_at": "2026-11-02T15:00:00Z",
        "engaged_contact_ids": ["con-1", "con-2"],
        "buyer_replies": 1,
        "last_buyer_reply_at": "2026-11-02T12:00:00Z",
    }
    quiet = (await gateway.get("/v1/deals/deal-2/activities", headers=bearer(keys.read))).json()
    assert quiet["items"] == []
    assert quiet["summary"] == {
        "activities": 0,
        "last_activity_at": None,
        "engaged_contact_ids": [],
        "buyer_replies": 0,
        "last_buyer_reply_at": None,
    }


async def test_another_tenants_activities_and_deals_are_not_found(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    theirs = activity_id("globex", 0)
    for path in (f"/v1/activities/{theirs}", "/v1/deals/deal-9/activities"):
        response = await gateway.get(path, headers=bearer(keys.read))
        assert response.status_code == 404, path
    missing = await gateway.get(f"/v1/activities/{activity_id('acme', 99)}", headers=bearer(keys.read))
    assert missing.status_code == 404
    assert missing.json()["title"] == "Not found"
    override = await gateway.put(
        f"/v1/activities/{theirs}/attribution", json={"deal_id": "deal-9"}, headers=bearer(keys.admin)
    )
    assert override.status_code == 404
    bad_id = await gateway.get("/v1/activities/not-a-uuid", headers=bearer(keys.read))
    assert bad_id.status_code == 422
    assert bad_id.json()["errors"][0]["field"] == "activity_id"


async def test_override_validation(gateway: httpx.AsyncClient, keys: Keys) -> None:
    url = f"/v1/activities/{activity_id('acme', 8)}/attribution"
    reader = await gateway.put(url, json={"deal_id": "deal-2"}, headers=bearer(keys.read))
    assert reader.status_code == 403
    for body, field in (
        ({"deal_id": "deal-9"}, "deal_id"),
        ({"rep_id": "rep-9"}, "rep_id"),
        ({"account_id": "acc-9"}, "account_id"),
        ({}, "deal_id"),
        ({"deal_id": "deal-2", "colour": "red"}, "colour"),
    ):
        response = await gateway.put(url, json=body, headers=bearer(keys.admin))
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["field"] == field
    # A valid override with no broker reachable is refused, not silently dropped.
    down = await gateway.put(url, json={"deal_id": "deal-2"}, headers=bearer(keys.admin))
    assert down.status_code == 503
    assert down.headers["retry-after"] == "2"
