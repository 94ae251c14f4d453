"""``/v2/deployments``, ``/v2/tasks``, ``/v2/queue`` over a real core in the simulated cluster (reference §2.3
to §2.5), what the ``marathon`` client makes of our answers (§9.1), and the OpenAPI document's coverage."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import TypeVar

from marathon import MarathonApp, MarathonClient

from marathon_py.http.openapi import PATHS
from marathon_py.outputs import DeleteDeployment, SaveDeployment
from tests.support.marathon_sim import Sim
from tests.unit.marathonapikit import Client, SimOrchestrator, answer, app_doc, serve, settle

T = TypeVar("T")
HUGE = {"cpus": 64}  # no simulated agent offers this much


def test_deployments_list_rollback_and_force() -> None:
    sim = Sim(21)

    async def body(client: Client, orch: SimOrchestrator) -> None:
        await client.post("/v2/apps", json=app_doc())
        settle(sim)
        resp = await client.put("/v2/apps/web", json={"cpus": 64, "cmd": "v2"})
        stuck = resp.headers["Marathon-Deployment-Id"]
        settle(sim, 3)
        status, doc = await answer(await client.get("/v2/deployments"))
        assert status == 200 and [d["id"] for d in doc] == [stuck]
        assert doc[0]["affectedApps"] == ["/web"] and doc[0]["currentStep"] == 1 and doc[0]["totalSteps"] == 1
        assert doc[0]["currentActions"] == [
            {"action": "RestartApplication", "app": "/web", "readinessCheckResults": []}
        ]

        resp = await client.delete(f"/v2/deployments/{stuck}")
        status, doc = await answer(resp)
        assert status == 200 and doc["deploymentId"] != stuck
        assert resp.headers["Marathon-Deployment-Id"] == doc["deploymentId"]
        assert DeleteDeployment(stuck) in orch.decisions[-1]
        assert [o.id for o in orch.last(SaveDeployment)] == [doc["deploymentId"]]
        settle(sim)
        status, app = await answer(await client.get("/v2/apps/web"))
        assert (app["app"]["cmd"], app["app"]["cpus"], app["app"]["tasksRunning"]) == ("serve", 0.1, 1)

        resp = await client.put("/v2/apps/web", json={"cpus": 64})
        stuck = resp.headers["Marathon-Deployment-Id"]
        resp = await client.delete(f"/v2/deployments/{stuck}?force=true")
        assert (resp.status, await resp.text()) == (202, "")
        assert "Marathon-Deployment-Id" not in resp.headers
        assert await answer(await client.get("/v2/deployments")) == (200, [])
        assert (await answer(await client.get("/v2/apps/web")))[1]["app"]["cpus"] == 64  # no rollback
        assert await answer(await client.delete(f"/v2/deployments/{stuck}")) == (
            404,
            {"message": f"DeploymentPlan {stuck} does not exist"},
        )

    serve(sim, body)


def test_tasks_list_and_delete() -> None:
    sim = Sim(22)

    async def body(client: Client, orch: SimOrchestrator) -> None:
        await client.post("/v2/apps", json=app_doc("/a", instances=2))
        await client.post("/v2/apps", json=app_doc("/b", instances=1))
        settle(sim)
        status, doc = await answer(await client.get("/v2/tasks"))
        tasks = doc["tasks"]
        assert status == 200 and sorted(t["appId"] for t in tasks) == ["/a", "/a", "/b"]
        service_ports = {t["appId"]: t["servicePorts"] for t in tasks}
        assert all(p and p[0] >= 10000 for p in service_ports.values())
        assert len((await answer(await client.get("/v2/tasks?status=running")))[1]["tasks"]) == 3
        assert (await answer(await client.get("/v2/tasks?status[]=staging")))[1]["tasks"] == []
        resp = await client.get("/v2/tasks", headers={"Accept": "text/plain"})
        assert resp.status == 406
        assert (
            await client.get("/v2/tasks", headers={"Accept": "text/plain, application/json"})
        ).status == 200

        a_tasks = [t["id"] for t in tasks if t["appId"] == "/a"]
        status, doc = await answer(await client.post("/v2/tasks/delete", json={"ids": a_tasks[:1]}))
        assert status == 200 and [t["id"] for t in doc["tasks"]] == a_tasks[:1]
        settle(sim)
        resp = await client.post("/v2/tasks/delete?scale=true", json={"ids": a_tasks[1:]})
        status, doc = await answer(resp)
        assert status == 200 and resp.headers["Marathon-Deployment-Id"] == doc["deploymentId"]
        assert (await answer(await client.get("/v2/apps/a")))[1]["app"]["instances"] == 1

        assert await answer(await client.post("/v2/tasks/delete", json={"ids": ["nonsense"]})) == (
            400,
            {"message": "Invalid task id 'nonsense'."},
        )
        status, doc = await answer(await client.post("/v2/tasks/delete", json={"ids": "x"}))
        assert status == 422 and doc["details"] == [{"path": "/ids", "errors": ["error.expected.jsarray"]}]
        status, doc = await answer(
            await client.post("/v2/tasks/delete?wipe=true&scale=true", json={"ids": []})
        )
        assert (status, doc) == (400, {"message": "You cannot use scale and wipe at the same time."})
        unknown = "b.instance-00000000-0000-0000-0000-000000000000._app.1"
        assert await answer(await client.post("/v2/tasks/delete", json={"ids": [unknown]})) == (
            200,
            {"tasks": []},
        )

    serve(sim, body)


def test_queue_and_delay_reset() -> None:
    sim = Sim(23)

    async def body(client: Client, orch: SimOrchestrator) -> None:
        await client.post("/v2/apps", json=app_doc("/big", instances=2, **HUGE))
        await client.post("/v2/apps", json=app_doc("/small"))
        settle(sim, 3)
        status, doc = await answer(await client.get("/v2/queue"))
        assert status == 200 and [(i["app"]["id"], i["count"]) for i in doc["queue"]] == [("/big", 2)]
        item = doc["queue"][0]
        assert "role" not in item and "lastUnusedOffers" not in item
        assert set(item) == {"app", "count", "delay", "since", "processedOffersSummary"}
        assert item["delay"]["overdue"] is True and item["processedOffersSummary"]["unusedOffersCount"] > 0
        status, doc = await answer(await client.get("/v2/queue?embed=lastUnusedOffers"))
        unused = doc["queue"][0]["lastUnusedOffers"]
        assert unused and "InsufficientCpus" in unused[0]["reason"]

        resp = await client.delete("/v2/queue/big/delay")
        assert (resp.status, await resp.text()) == (204, "")
        assert await answer(await client.delete("/v2/queue/small/delay")) == (
            404,
            {"message": "Application /small not found in tasks queue."},
        )
        assert (await client.get("/v2/queue/big/delay")).status == 405
        assert await answer(await client.delete("/v2/queue/big")) == (404, {"message": "URI not found"})

    serve(sim, body)


def test_the_marathon_client_parses_every_answer() -> None:
    """marathon-python's models take no unknown keys (§9.1): a stray key in any answer is a TypeError."""
    sim = Sim(24)

    async def body(client: Client, orch: SimOrchestrator) -> None:
        marathon = MarathonClient(str(client.make_url("")).rstrip("/"), timeout=10)
        loop = asyncio.get_running_loop()

        async def call(fn: Callable[[], T]) -> T:
            return await loop.run_in_executor(None, fn)

        check = {"protocol": "HTTP", "portIndex": 0, "gracePeriodSeconds": 1, "intervalSeconds": 1}
        web = MarathonApp(cmd="serve", cpus=0.1, mem=32, instances=2, labels={"tier": "front"})
        created = await call(lambda: marathon.create_app("/prod/web", web))
        assert isinstance(created, MarathonApp) and created.deployments and created.tasks_running == 0
        await client.post("/v2/apps", json=app_doc("/prod/big", **HUGE, healthChecks=[check]))
        settle(sim)

        apps = await call(
            lambda: marathon.list_apps(embed_tasks=True, embed_counts=True, embed_deployments=True)
        )
        assert sorted(a.id for a in apps) == ["/prod/big", "/prod/web"]
        assert await call(lambda: marathon.list_apps(embed_last_task_failure=True, embed_readiness=True))
        app = await call(lambda: marathon.get_app("prod/web"))
        assert app.tasks_running == 2 and len(app.tasks) == 2 and app.labels == {"tier": "front"}
        groups = await call(marathon.list_groups)
        assert [g.id for g in groups] == ["/prod"] and len(groups[0].apps) == 2
        assert (await call(lambda: marathon.get_group("prod"))).id == "/prod"
        deployments = await call(marathon.list_deployments)
        assert [d.affected_apps for d in deployments] == [["/prod/big"]]
        tasks = await call(marathon.list_tasks)
        assert len(tasks) == 2 and all(t.service_ports for t in tasks)
        assert len(await call(lambda: marathon.list_tasks("prod/web"))) == 2
        queue = await call(lambda: marathon.list_queue(embed_last_unused_offers=True))
        assert [q.app.id for q in queue] == ["/prod/big"] and queue[0].delay.overdue is True
        versions = await call(lambda: marathon.list_versions("prod/web"))
        assert (await call(lambda: marathon.get_version("prod/web", versions[0]))).id == "/prod/web"

        assert "deploymentId" in await call(lambda: marathon.scale_app("prod/web", instances=3))
        settle(sim)
        killed = await call(lambda: marathon.kill_tasks("prod/web", scale=True))
        assert "deploymentId" in killed
        assert await call(lambda: marathon.delete_deployment(deployments[0].id, force=True)) == {}
        assert "deploymentId" in await call(lambda: marathon.restart_app("prod/big", force=True))
        assert "deploymentId" in await call(lambda: marathon.delete_app("prod/big", force=True))
        assert "deploymentId" in await call(lambda: marathon.delete_group("prod", force=True))

    serve(sim, body)


def test_openapi_lists_every_route_served() -> None:
    """Every route ``add_routes`` serves is in ``/openapi.json`` with its methods (the reverse is checked in
    test_marathon_http)."""
    sim = Sim(25)
    served = {
        ("/v2/apps", "get"), ("/v2/apps", "post"), ("/v2/apps", "put"), ("/v2/apps", "patch"),
        ("/v2/apps/{appId}", "get"), ("/v2/apps/{appId}", "put"), ("/v2/apps/{appId}", "patch"),
        ("/v2/apps/{appId}", "delete"), ("/v2/apps/{groupId}/*", "get"), ("/v2/apps/{appId}/restart", "post"),
        ("/v2/apps/{appId}/tasks", "get"), ("/v2/apps/{appId}/tasks", "delete"),
        ("/v2/apps/{appId}/tasks/{taskId}", "delete"), ("/v2/apps/{appId}/versions", "get"),
        ("/v2/apps/{appId}/versions/{version}", "get"),
        ("/v2/groups", "get"), ("/v2/groups", "post"), ("/v2/groups", "put"), ("/v2/groups", "delete"),
        ("/v2/groups/{groupId}", "get"), ("/v2/groups/{groupId}", "post"), ("/v2/groups/{groupId}", "put"),
        ("/v2/groups/{groupId}", "patch"), ("/v2/groups/{groupId}", "delete"), ("/v2/groups/apps", "get"),
        ("/v2/groups/{groupId}/apps", "get"), ("/v2/groups/versions", "get"),
        ("/v2/groups/versions/{version}", "get"), ("/v2/groups/{groupId}/versions", "get"),
        ("/v2/groups/{groupId}/versions/{version}", "get"),
        ("/v2/deployments", "get"), ("/v2/deployments/{deploymentId}", "delete"),
        ("/v2/tasks", "get"), ("/v2/tasks/delete", "post"), ("/v2/queue", "get"),
        ("/v2/queue/{appId}/delay", "delete"),
    }  # fmt: skip
    documented = {(path, method) for path, item in PATHS.items() for method in item}
    assert served <= documented, sorted(served - documented)
    assert {p for p, _ in documented if p.startswith(("/v2/apps", "/v2/groups", "/v2/deployments"))} <= {
        p for p, _ in served
    }

    # and each of them answers (no 500 "URI not found") for a concrete path
    async def body(client: Client, orch: SimOrchestrator) -> None:
        await client.post("/v2/apps", json=app_doc("/g/a"))
        for path, method in sorted(served):
            concrete = re.sub(r"\{(appId|groupId)\}", "g/a" if "{appId}" in path else "g", path)
            concrete = (
                concrete.replace("{taskId}", "t").replace("{version}", "v").replace("{deploymentId}", "d")
            )
            resp = await client.request("HEAD" if method == "get" else "OPTIONS", concrete)
            assert resp.status != 500, (method, concrete, resp.status)

    serve(sim, body)


def test_collections_with_a_trailing_slash_and_head() -> None:
    async def body(client: Client, orch: SimOrchestrator) -> None:
        for path in ("/v2/apps", "/v2/groups", "/v2/deployments", "/v2/tasks", "/v2/queue"):
            for variant in (path, f"{path}/"):
                assert (await client.get(variant)).status == 200, variant
                assert (await client.head(variant)).status == 200, variant
        assert (await client.post("/v2/apps/", json=app_doc())).status == 201

    serve(Sim(26), body)
