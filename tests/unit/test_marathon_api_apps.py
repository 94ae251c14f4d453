"""``/v2/apps`` over a real core in the simulated cluster (reference §2.1, §1.5, §7.4)."""

from __future__ import annotations

from typing import Any

from marathon_py.outputs import SaveDeployment, SaveRoot
from tests.support.marathon_sim import Sim
from tests.unit.marathonapikit import Client, SimOrchestrator, answer, app_doc, serve, settle

HUGE = {"cpus": 64}  # no simulated agent offers this much: its deployment stays running


async def post(client: Client, doc: dict[str, Any], **params: str) -> tuple[int, Any]:
    return await answer(await client.post("/v2/apps", json=doc, params=params))


async def get_app(client: Client, app_id: str = "web", **params: Any) -> dict[str, Any]:
    status, doc = await answer(await client.get(f"/v2/apps/{app_id}", params=params))
    assert status == 200, doc
    return doc["app"]  # type: ignore[no-any-return]


def test_create_get_and_conflict() -> None:
    sim = Sim(1)

    async def body(client: Client, orch: SimOrchestrator) -> None:
        resp = await client.post("/v2/apps", json=app_doc(instances=2, labels={"tier": "front"}))
        status, doc = await answer(resp)
        assert status == 201 and resp.headers["Location"] == "/web"
        deployment_id = resp.headers["Marathon-Deployment-Id"]
        assert doc["deployments"] == [{"id": deployment_id}]
        assert {
            k: doc[k] for k in ("tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy")
        } == dict.fromkeys(("tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy"), 0)
        assert doc["portDefinitions"][0]["port"] >= 10000  # assigned, as GET shows it
        # stored before the answer: the plan and the root that holds the app
        assert [o.id for o in orch.last(SaveDeployment)] == [deployment_id]
        (saved,) = orch.last(SaveRoot)
        assert [a["id"] for a in saved.root["apps"]] == ["/web"] and sim.store.root is saved.root
        (posted,) = orch.events("api_post_event")
        assert posted["uri"] == "/v2/apps" and posted["appDefinition"]["id"] == "/web"

        status, doc = await post(client, app_doc())
        assert (status, doc) == (409, {"message": "An app with id [/web] already exists."})

        settle(sim)
        app = await get_app(client)
        assert app["tasksRunning"] == 2 and len(app["tasks"]) == 2 and app["deployments"] == []
        assert app["labels"] == {"tier": "front"} and "lastTaskFailure" not in app
        assert {t["state"] for t in app["tasks"]} == {"TASK_RUNNING"}

    serve(sim, body)


def test_list_filters_and_embeds() -> None:
    sim = Sim(2)

    async def body(client: Client, orch: SimOrchestrator) -> None:
        await post(client, app_doc("/prod/web", labels={"tier": "front", "env": "prod"}))
        await post(client, app_doc("/prod/db", cmd="run-database", labels={"tier": "back", "env": "prod"}))
        await post(client, app_doc("/dev/web", labels={"env": "dev"}))
        settle(sim)

        async def ids(**params: str) -> list[str]:
            status, doc = await answer(await client.get("/v2/apps", params=params))
            assert status == 200, doc
            return [a["id"] for a in doc["apps"]]

        assert sorted(await ids()) == ["/dev/web", "/prod/db", "/prod/web"]
        assert await ids(cmd="DATABASE") == ["/prod/db"]
        assert sorted(await ids(id="WEB")) == ["/dev/web", "/prod/web"]
        assert await ids(label="tier==front") == ["/prod/web"]
        assert sorted(await ids(label="env in (dev, qa)")) == ["/dev/web"]
        assert sorted(await ids(label="env, tier notin (front)")) == ["/prod/db"]
        status, doc = await answer(await client.get("/v2/apps", params={"label": "env in dev"}))
        assert status == 422 and doc["message"].startswith("Can not parse label selector env in dev.")

        status, doc = await answer(await client.get("/v2/apps"))
        plain = doc["apps"][0]
        assert "tasks" not in plain and plain["deployments"] == [] and plain["tasksRunning"] == 1
        status, doc = await answer(await client.get("/v2/apps?embed=apps.tasks&embed=apps.lastTaskFailure"))
        assert all(len(a["tasks"]) == 1 for a in doc["apps"])
        status, doc = await answer(await client.get("/v2/apps?embed=apps.taskStats&embed=apps.readiness"))
        assert all("tasksStats" in a and a["readinessCheckResults"] == [] for a in doc["apps"])

        status, doc = await answer(await client.get("/v2/apps/prod/*"))
        assert status == 200 and sorted(a["id"] for a in doc["*"]) == ["/prod/db", "/prod/web"]
        assert all(len(a["tasks"]) == 1 for a in doc["*"])
        assert await answer(await client.get("/v2/apps/nope/*")) == (
            404,
            {"message": "Group '/nope' does not exist"},
        )

    serve(sim, body)


def test_update_patch_replace_and_create_by_put() -> None:
    sim = Sim(3)

    async def body(client: Client, orch: SimOrchestrator) -> None:
        await post(client, app_doc(labels={"a": "1"}, env={"X": "1"}))
        settle(sim)
        before = await get_app(client)

        resp = await client.put("/v2/apps/web", json={"instances": 3, "id": "/ignored"})
        status, doc = await answer(resp)
        assert status == 200 and set(doc) == {"deploymentId", "version"}
        assert (
            resp.headers["Marathon-Deployment-Id"] == doc["deploymentId"] and "Location" not in resp.headers
        )
        app = await get_app(client)
        assert app["instances"] == 3 and app["env"] == {"X": "1"} and app["version"] == doc["version"]
        assert app["versionInfo"]["lastConfigChangeAt"] == before["versionInfo"]["lastConfigChangeAt"]
        assert [e["appDefinition"]["instances"] for e in orch.events("api_post_event")] == [1, 3]
        settle(sim)

        status, doc = await answer(await client.patch("/v2/apps/web", json={"cmd": "serve v2"}))
        assert status == 200
        settle(sim)
        app = await get_app(client)
        assert app["cmd"] == "serve v2" and app["instances"] == 3 and app["labels"] == {"a": "1"}

        full = {"cmd": "serve v3", "cpus": 0.2}
        status, doc = await answer(await client.put("/v2/apps/web?partialUpdate=false&force=true", json=full))
        assert status == 200
        app = await get_app(client)
        assert (app["cmd"], app["cpus"], app["instances"], app.get("env", {}), app["labels"]) == (
            "serve v3", 0.2, 1, {}, {},
        )  # fmt: skip

        resp = await client.put("/v2/apps/prod/api", json={"cmd": "api", "mem": 32, "cpus": 0.1})
        status, doc = await answer(resp)
        assert status == 201 and resp.headers["Location"] == "/prod/api"
        assert (await get_app(client, "prod/api"))["cmd"] == "api"

        assert await answer(await client.patch("/v2/apps/nope", json={"cmd": "x"})) == (
            404,
            {"message": "App '/nope' does not exist"},
        )

    serve(sim, body)


def test_bulk_put_and_patch_deploy_once() -> None:
    sim = Sim(4)

    async def body(client: Client, orch: SimOrchestrator) -> None:
        apps = [app_doc("/a"), app_doc("/b", dependencies=["/a"])]
        resp = await client.put("/v2/apps", json=apps)
        status, doc = await answer(resp)
        assert status == 200 and resp.headers["Marathon-Deployment-Id"] == doc["deploymentId"]
        (plan,) = orch.last(SaveDeployment)
        assert plan.id == doc["deploymentId"]  # one deployment for both
        settle(sim)
        status, doc = await answer(await client.patch("/v2/apps", json=[{"id": "a", "instances": 2}]))
        assert status == 200 and (await get_app(client, "a"))["instances"] == 2
        assert (await get_app(client, "b"))["instances"] == 1
        status, doc = await answer(await client.patch("/v2/apps", json=[{"id": "/c", "cmd": "x"}]))
        assert (status, doc) == (404, {"message": "App '/c' does not exist"})
        status, doc = await answer(await client.put("/v2/apps", json=[{"cmd": "x"}]))
        assert (status, doc) == (422, {"message": "App Update must have app id set"})
        assert (await answer(await client.put("/v2/apps", json={"id": "/a"})))[0] == 422

    serve(sim, body)


def test_locked_by_a_deployment_unless_forced() -> None:
    sim = Sim(5)

    async def body(client: Client, orch: SimOrchestrator) -> None:
        resp = await client.post("/v2/apps", json=app_doc(**HUGE))
        first = resp.headers["Marathon-Deployment-Id"]
        settle(sim, 3)
        status, doc = await answer(await client.put("/v2/apps/web", json={"cpus": 0.1}))
        assert status == 409 and doc["deployments"] == [{"id": first}]
        assert doc["message"].startswith("App is locked by one or more deployments.")
        assert await answer(await client.post("/v2/apps/web/restart")) == (409, doc)
        assert (await get_app(client))["cpus"] == 64  # nothing changed

        status, doc = await answer(await client.put("/v2/apps/web?force=true", json={"cpus": 0.1}))
        assert status == 200 and first in sim.store.deleted_deployments
        settle(sim)
        app = await get_app(client)
        assert app["cpus"] == 0.1 and app["tasksRunning"] == 1 and app["deployments"] == []

    serve(sim, body)


def test_bad_input() -> None:
    sim = Sim(6)

    async def body(client: Client, orch: SimOrchestrator) -> None:
        status, doc = await post(client, app_doc(cpus=-1, instances=-2))
        assert status == 422 and doc["message"] == "Invalid JSON"
        assert [d["path"] for d in doc["details"]] == ["/cpus", "/instances"]
        status, doc = await post(client, {"id": "/web"})
        assert status == 422 and doc["message"] == "Object is not valid"
        assert doc["details"][0]["path"] == "/"
        status, doc = await post(client, app_doc(healthChecks=[{"protocol": "HTTP", "portIndex": 3}]))
        assert status == 422 and doc["details"][0]["path"] == "/healthChecks(0)"
        status, doc = await answer(await client.post("/v2/apps", data=b'{"id": '))
        assert status == 400 and doc["message"] == "Invalid JSON" and "line: 1" in doc["details"]
        status, doc = await post(client, app_doc(), force="maybe")
        assert (status, doc) == (
            400,
            {"message": "Query parameter 'force' must be true or false, not 'maybe'."},
        )
        assert (await post(client, app_doc(), force="False"))[0] == 201  # the marathon client's spelling
        assert not orch.decisions[:-1]  # nothing was decided before the valid request

    serve(sim, body)


def test_delete_restart_and_unknown_ids() -> None:
    sim = Sim(7)

    async def body(client: Client, orch: SimOrchestrator) -> None:
        await post(client, app_doc("/prod/web", instances=2))
        settle(sim)
        old_tasks = {t["id"] for t in (await get_app(client, "prod/web"))["tasks"]}
        resp = await client.post("/v2/apps/prod/web/restart")
        status, doc = await answer(resp)
        assert status == 200 and resp.headers["Marathon-Deployment-Id"] == doc["deploymentId"]
        status, plans = await answer(await client.get("/v2/deployments"))
        assert plans[0]["steps"] == [{"actions": [{"action": "RestartApplication", "app": "/prod/web"}]}]
        settle(sim, 15)
        app = await get_app(client, "prod/web")
        assert app["tasksRunning"] == 2 and not {t["id"] for t in app["tasks"]} & old_tasks

        status, doc = await answer(await client.delete("/v2/apps/prod/web"))
        assert status == 200 and set(doc) == {"deploymentId", "version"}
        not_found = (404, {"message": "App '/prod/web' does not exist"})
        assert await answer(await client.get("/v2/apps/prod/web")) == not_found
        assert await answer(await client.delete("/v2/apps/prod/web")) == not_found
        assert await answer(await client.post("/v2/apps/prod/web/restart")) == not_found
        assert await answer(await client.get("/v2/apps/prod/web/tasks")) == not_found
        assert await answer(await client.get("/v2/apps/prod/web/versions")) == not_found
        # routing: a path under an id prefix that names nothing (Jersey: 500; ours 404, see http/errors.py),
        # a method the route lacks
        assert await answer(await client.get("/v2/apps/prod/web/restart/x")) == (
            404,
            {"message": "URI not found"},
        )
        resp = await client.get("/v2/apps/prod/web/restart")
        assert resp.status == 405 and set(resp.headers["Allow"].split(",")) == {"DELETE", "POST"}

    serve(sim, body)


def test_versions_and_rollback() -> None:
    sim = Sim(8)

    async def body(client: Client, orch: SimOrchestrator) -> None:
        await post(client, app_doc(cmd="v1"))
        v1 = (await get_app(client))["version"]
        settle(sim)
        await client.put("/v2/apps/web", json={"cmd": "v2"})
        settle(sim)
        v2 = (await get_app(client))["version"]
        status, doc = await answer(await client.get("/v2/apps/web/versions"))
        assert (status, doc) == (200, {"versions": [v2, v1]})
        status, old = await answer(await client.get(f"/v2/apps/web/versions/{v1}"))
        assert status == 200 and old["cmd"] == "v1" and old["version"] == v1 and "app" not in old
        assert await answer(await client.get("/v2/apps/web/versions/2001-01-01T00:00:00.000Z")) == (
            404,
            {"message": "App '/web' does not exist in version 2001-01-01T00:00:00.000Z"},
        )

        status, doc = await answer(await client.put("/v2/apps/web", json={"version": v1}))
        assert status == 200
        app = await get_app(client)
        assert app["cmd"] == "v1" and app["version"] == doc["version"] not in (v1, v2)
        status, doc = await answer(await client.put("/v2/apps/web", json={"version": v1, "cmd": "x"}))
        assert status == 422 and doc["details"][0]["errors"] == [
            "The 'version' field may only be combined with the 'id' field."
        ]
        assert await answer(
            await client.put("/v2/apps/web", json={"version": "2001-01-01T00:00:00.000Z"})
        ) == (
            404,
            {"message": "App '/web' does not exist"},
        )

    serve(sim, body)


def test_tasks_of_an_app_kill_scale_and_wipe() -> None:
    sim = Sim(9)

    async def body(client: Client, orch: SimOrchestrator) -> None:
        await post(client, app_doc("/prod/web", instances=3))
        settle(sim)
        status, doc = await answer(await client.get("/v2/apps/prod/web/tasks"))
        tasks = doc["tasks"]
        assert status == 200 and len(tasks) == 3 and all(t["appId"] == "/prod/web" for t in tasks)
        assert (await answer(await client.get("/v2/apps/prod/*/tasks")))[1]["tasks"] == tasks

        status, doc = await answer(await client.delete(f"/v2/apps/prod/web/tasks/{tasks[0]['id']}"))
        assert status == 200 and doc["task"]["id"] == tasks[0]["id"]
        settle(sim)  # killed, relaunched
        app = await get_app(client, "prod/web")
        assert app["instances"] == 3 and app["tasksRunning"] == 3

        running = [t["id"] for t in app["tasks"]]
        resp = await client.delete(f"/v2/apps/prod/web/tasks/{running[0]}?scale=true")
        status, doc = await answer(resp)
        assert status == 200 and resp.headers["Marathon-Deployment-Id"] == doc["deploymentId"]
        assert (await get_app(client, "prod/web"))["instances"] == 2
        settle(sim)

        host = (await get_app(client, "prod/web"))["tasks"][0]["host"]
        status, doc = await answer(await client.delete(f"/v2/apps/prod/web/tasks?host={host}&wipe=true"))
        assert status == 200 and doc["tasks"] and {t["host"] for t in doc["tasks"]} == {host}
        status, doc = await answer(await client.delete("/v2/apps/prod/web/tasks?scale=true&wipe=true"))
        assert (status, doc) == (400, {"message": "You cannot use scale and wipe at the same time."})
        status, doc = await answer(await client.delete("/v2/apps/prod/web/tasks?scale=true"))
        assert status == 200 and (await get_app(client, "prod/web"))["instances"] == 0

        unknown = "prod_web.instance-00000000-0000-0000-0000-000000000000._app.1"
        assert await answer(await client.delete(f"/v2/apps/prod/web/tasks/{unknown}")) == (
            404,
            {"message": f"Task '{unknown}' does not exist"},
        )
        resp = await client.get("/v2/apps/prod/web/tasks", headers={"Accept": "text/plain"})
        assert resp.status == 406 and "text_plain_tasks" in (await resp.json())["message"]

    serve(sim, body)
