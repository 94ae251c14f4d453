"""``/v2/groups`` over a real core in the simulated cluster (reference §2.2, §7.3)."""

from __future__ import annotations

from typing import Any

from marathon_py.outputs import SaveDeployment, SaveRoot
from tests.support.marathon_sim import Sim
from tests.unit.marathonapikit import Client, SimOrchestrator, answer, app_doc, serve, settle

SHOP = {
    "id": "shop",
    "apps": [app_doc("db")],
    "groups": [{"id": "front", "apps": [app_doc("web", instances=2, dependencies=["../db"])]}],
}


async def get(client: Client, path: str, **params: Any) -> Any:
    status, doc = await answer(await client.get(path, params=params))
    assert status == 200, doc
    return doc


def test_create_tree_and_conflicts() -> None:
    sim = Sim(11)

    async def body(client: Client, orch: SimOrchestrator) -> None:
        resp = await client.post("/v2/groups", json=SHOP)
        status, doc = await answer(resp)
        assert status == 201 and resp.headers["Location"] == "/shop"
        assert resp.headers["Marathon-Deployment-Id"] == doc["deploymentId"]
        assert [o.id for o in orch.last(SaveDeployment)] == [doc["deploymentId"]] and orch.last(SaveRoot)
        status, plans = await answer(await client.get("/v2/deployments"))
        steps = [[a["app"] for a in s["actions"]] for s in plans[0]["steps"]]
        assert steps[-2:] == [["/shop/db"], ["/shop/front/web"]]  # the dependency first

        assert await answer(await client.post("/v2/groups", json=SHOP)) == (
            409,
            {"message": "Group /shop is already created. Use PUT to change this group."},
        )
        assert await answer(await client.post("/v2/groups/shop", json={"id": "db"})) == (
            409,
            {"message": "An app with the path /shop/db already exists."},
        )
        settle(sim)

        root = await get(client, "/v2/groups")
        assert root["id"] == "/" and [g["id"] for g in root["groups"]] == ["/shop"]
        shop = root["groups"][0]
        assert [a["id"] for a in shop["apps"]] == ["/shop/db"] and "enforceRole" not in shop
        assert shop["groups"][0]["apps"][0]["dependencies"] == ["/shop/db"]
        assert "tasks" not in shop["apps"][0]

        front = await get(client, "/v2/groups/shop/front?embed=group.apps&embed=group.apps.tasks")
        assert front["groups"] == [] and len(front["apps"][0]["tasks"]) == 2
        assert (await get(client, "/v2/groups/shop/front", embed="group.apps.tasks"))["apps"] == []
        only_groups = await get(client, "/v2/groups/shop", embed="group.groups")
        assert only_groups["apps"] == [] and only_groups["groups"][0]["id"] == "/shop/front"

        apps = await get(client, "/v2/groups/shop/apps")
        assert sorted(a["id"] for a in apps) == ["/shop/db", "/shop/front/web"]
        assert await get(client, "/v2/groups/nope/apps") == []
        assert await answer(await client.get("/v2/groups/nope")) == (
            404,
            {"message": "Group '/nope' does not exist"},
        )

        status, doc = await answer(
            await client.post("/v2/groups", json={"id": "/x", "apps": [app_doc("/y/z")]})
        )
        assert status == 422 and doc["details"] == [
            {"path": "/apps(0)/id", "errors": ["Identifier is not child of '/x'"]}
        ]

    serve(sim, body)


def test_scale_dry_run_rollback_and_versions() -> None:
    sim = Sim(12)

    async def body(client: Client, orch: SimOrchestrator) -> None:
        await client.post("/v2/groups", json=SHOP)
        settle(sim)
        v1 = (await get(client, "/v2/groups/shop"))["version"]

        status, doc = await answer(await client.put("/v2/groups/shop?dryRun=true", json={"scaleBy": 2}))
        assert status == 200 and doc == {
            "steps": [
                {"actions": [{"action": "ScaleApplication", "app": "/shop/db"}]},
                {"actions": [{"action": "ScaleApplication", "app": "/shop/front/web"}]},
            ]
        }
        assert (await get(client, "/v2/apps/shop/db"))["app"]["instances"] == 1  # nothing deployed

        resp = await client.put("/v2/groups/shop", json={"scaleBy": 1.5})
        status, doc = await answer(resp)
        assert status == 200 and resp.headers["Marathon-Deployment-Id"] == doc["deploymentId"]
        instances = {a["id"]: a["instances"] for a in await get(client, "/v2/groups/shop/apps")}
        assert instances == {"/shop/db": 2, "/shop/front/web": 3}  # ceil
        settle(sim, 15)  # two steps: the dependency first

        changed = {"apps": [app_doc("db", cmd="db v2")], "groups": SHOP["groups"]}
        assert (await answer(await client.put("/v2/groups/shop", json=changed)))[0] == 200
        settle(sim, 15)
        versions = await get(client, "/v2/groups/shop/versions")
        assert len(versions) == 3 and versions[-1] == v1 and versions == sorted(versions, reverse=True)
        assert await get(client, "/v2/groups/versions") == versions
        old = await get(client, f"/v2/groups/shop/versions/{v1}")
        assert old["version"] == v1 and old["apps"][0]["cmd"] == "serve" and "tasks" not in old["apps"][0]
        assert (await get(client, f"/v2/groups/versions/{v1}"))["groups"][0]["id"] == "/shop"

        status, doc = await answer(await client.put("/v2/groups/shop", json={"version": v1}))
        assert status == 200
        db = (await get(client, "/v2/apps/shop/db"))["app"]
        assert (db["cmd"], db["instances"]) == ("serve", 1)
        status, doc = await answer(
            await client.put("/v2/groups/shop", json={"version": "2001-01-01T00:00:00.000Z"})
        )
        assert (status, doc) == (
            422,
            {"message": "Group /shop not available in version 2001-01-01T00:00:00.000Z"},
        )
        status, doc = await answer(await client.put("/v2/groups/shop", json={"version": v1, "scaleBy": 2}))
        assert status == 422 and doc["message"] == "Object is not valid"
        assert await answer(await client.get("/v2/groups/shop/versions/2001-01-01T00:00:00.000Z")) == (
            404,
            {"message": "Group '/shop' does not exist"},
        )
        # marathon-python's rollback_group: PUT …/versions/{v} lands on a group id that cannot exist
        status, doc = await answer(await client.put(f"/v2/groups/shop/versions/{v1}"))
        assert status == 422 and doc["details"][0]["path"] == "/"

    serve(sim, body)


def test_update_locks_delete_and_patch() -> None:
    sim = Sim(13)

    async def body(client: Client, orch: SimOrchestrator) -> None:
        await client.post("/v2/groups", json={"id": "/big", "apps": [app_doc("a", cpus=64)]})
        settle(sim, 2)
        status, doc = await answer(await client.put("/v2/groups/big", json={"apps": [app_doc("a")]}))
        assert status == 409 and len(doc["deployments"]) == 1
        status, doc = await answer(
            await client.put("/v2/groups/big?force=true", json={"apps": [app_doc("a")]})
        )
        assert status == 200
        settle(sim)
        assert (await get(client, "/v2/apps/big/a"))["app"]["tasksRunning"] == 1

        assert await answer(await client.patch("/v2/groups/big", json={"enforceRole": True})) == (200, None)
        assert (await get(client, "/v2/groups/big"))["enforceRole"] is True
        status, doc = await answer(await client.patch("/v2/groups/big/sub", json={"enforceRole": True}))
        assert (status, doc["details"]) == (422, [{"path": "/", "errors": ["Path needs to be top-level"]}])
        assert await answer(await client.patch("/v2/groups/nope", json={})) == (
            404,
            {"message": "Group '/nope' does not exist"},
        )
        resp = await client.patch("/v2/groups", json={})
        assert resp.status == 405

        assert await answer(await client.delete("/v2/groups/nope")) == (
            404,
            {"message": "Group '/nope' does not exist"},
        )
        status, doc = await answer(await client.delete("/v2/groups/big"))
        assert status == 200 and set(doc) == {"deploymentId", "version"}
        assert (await get(client, "/v2/groups"))["groups"] == []
        await client.post("/v2/groups", json=SHOP)
        settle(sim)
        status, doc = await answer(await client.delete("/v2/groups"))
        assert status == 200 and (await get(client, "/v2/groups"))["groups"] == []
        assert await get(client, "/v2/apps") == {"apps": []}

    serve(sim, body)
