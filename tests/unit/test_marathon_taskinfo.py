"""The v1 TaskInfo for a matched instance: ids, command, environment (§4.1), container, checks, discovery."""

from __future__ import annotations

import random
from typing import Any

import pytest

from marathon_py.constraints import Placement
from marathon_py.matcher import Match
from marathon_py.taskinfo import (
    hostname_of,
    instance_id,
    java_double,
    labels_env,
    next_incarnation,
    ports_env,
    task_id,
    task_info,
)
from paas_common.healthcheck import HealthCheckSpec
from paas_common.resources import Resources

V = "2021-03-04T05:06:07.089Z"
UUID = "b6ff5fa5-7714-11e7-a55c-5ecf1c4671f6"
TID = task_id("/prod/web", UUID)


def a_match(host_ports: tuple[int | None, ...], resources: str = "cpus:0.5;mem:64") -> Match:
    used = Resources.parse(resources)
    return Match("O1", "S1", "agent1.example", used, used.to_json(), host_ports, Placement("agent1.example"))


def app(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "/prod/web",
        "cmd": "python3 -m http.server $PORT0",
        "cpus": 0.5,
        "mem": 64.0,
        "disk": 0.0,
        "gpus": 0,
        "networks": [{"mode": "host"}],
        "portDefinitions": [{"port": 10000, "protocol": "tcp", "name": "http", "labels": {"VIP": "x"}}],
        "requirePorts": False,
        "env": {"GREETING": "hi", "DB_PASSWORD": {"secret": "db"}},
        "labels": {},
        "healthChecks": [],
        "version": V,
    }
    doc.update(over)
    return doc


def env_of(info: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["value"] for v in info["command"]["environment"]["variables"]}


def test_ids_and_names() -> None:
    assert instance_id("/prod/web", UUID) == f"prod_web.instance-{UUID}"
    assert task_id("/prod/web", UUID, 3) == f"prod_web.instance-{UUID}._app.3"
    assert f"prod_web.instance-{UUID}._app.1" == TID
    assert next_incarnation(TID) == f"prod_web.instance-{UUID}._app.2"
    assert next_incarnation(f"prod_web.instance-{UUID}") == f"prod_web.instance-{UUID}.1"
    assert hostname_of("/prod/web") == "web.prod"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1, "1.0"),
        (0.5, "0.5"),
        (128, "128.0"),
        (0, "0.0"),
        (1e7, "1.0E7"),
        (12345678.5, "1.23456785E7"),
        (1e-4, "1.0E-4"),
        (3.3e-4, "3.3E-4"),
        (-1.5e8, "-1.5E8"),
    ],
)
def test_java_double(value: float, text: str) -> None:
    assert java_double(value) == text


def test_host_networking_command_task() -> None:
    info = task_info(app(taskKillGracePeriodSeconds=5), a_match((31005,)), TID, "S1")
    assert info == {
        "name": "web.prod",
        "task_id": {"value": TID},
        "agent_id": {"value": "S1"},
        "resources": Resources.parse("cpus:0.5;mem:64").to_json(),
        "command": info["command"],
        "kill_policy": {"grace_period": {"nanoseconds": 5_000_000_000}},
        "discovery": {
            "visibility": "FRAMEWORK",
            "name": "web.prod",
            "ports": {
                "ports": [
                    {
                        "number": 31005,
                        "protocol": "tcp",
                        "name": "http",
                        "labels": {"labels": [{"key": "VIP", "value": "x"}]},
                    }
                ]
            },
        },
    }
    assert info["command"]["value"] == "python3 -m http.server $PORT0"
    assert "shell" not in info["command"]  # default true
    assert env_of(info) == {
        "MESOS_TASK_ID": TID,
        "MARATHON_APP_ID": "/prod/web",
        "MARATHON_APP_VERSION": V,
        "MARATHON_APP_RESOURCE_CPUS": "0.5",
        "MARATHON_APP_RESOURCE_MEM": "64.0",
        "MARATHON_APP_RESOURCE_DISK": "0.0",
        "MARATHON_APP_RESOURCE_GPUS": "0",
        "MARATHON_APP_ENFORCE_GROUP_ROLE": "FALSE",
        "MARATHON_APP_LABELS": "",
        "PORT0": "31005",
        "PORT_10000": "31005",
        "PORT_HTTP": "31005",
        "PORT": "31005",
        "PORTS": "31005",
        "HOST": "agent1.example",
        "GREETING": "hi",  # secrets are not resolved here
    }


def test_environment_prefix_labels_and_overrides() -> None:
    labels = {"team": "a", "HAPROXY_0.VHOST": "web.local", "big": "x" * 512, "k" * 493: "v"}
    a = app(labels=labels, env={"PORT0": "mine", "HOST": "mine"})
    env = env_of(task_info(a, a_match((31005,)), TID, "S1", env_prefix="P_", enforce_role=True))
    assert env["P_PORT0"] == "31005" and env["P_HOST"] == "agent1.example" and env["P_PORTS"] == "31005"
    assert env["PORT0"] == "mine" and env["HOST"] == "mine"  # only the app's own
    assert env["MARATHON_APP_ENFORCE_GROUP_ROLE"] == "TRUE"
    assert env["MARATHON_APP_LABELS"] == "TEAM HAPROXY_0_VHOST"
    assert env["MARATHON_APP_LABEL_HAPROXY_0_VHOST"] == "web.local"
    assert "MARATHON_APP_LABEL_BIG" not in env
    assert labels_env({}) == {"MARATHON_APP_LABELS": ""}


def test_ports_env_like_environment_helper_test() -> None:
    rng = random.Random(0)
    env = ports_env([(None, 0), (None, 0)], [1001, 1002], rng)
    assert (env["PORT"], env["PORT0"], env["PORT1"], env["PORT_1001"]) == ("1001", "1001", "1002", "1001")
    assert "PORT_0" not in env and env["PORTS"] == "1001,1002"
    env = ports_env([("http", 80), (None, 8080), ("https", 443)], [1001, 1002, 1003], rng)
    assert (env["PORT_80"], env["PORT_8080"], env["PORT_443"]) == ("1001", "1002", "1003")
    assert (env["PORT_HTTP"], env["PORT_HTTPS"]) == ("1001", "1003")
    assert ports_env([], [], rng) == {}


def test_args_run_without_shell() -> None:
    cmd = task_info(app(cmd=None, args=["/bin/echo", "hi"]), a_match((31000,)), TID, "S1")["command"]
    assert (cmd["shell"], cmd["value"], cmd["arguments"]) == (False, "/bin/echo", ["/bin/echo", "hi"])
    docker = {"type": "DOCKER", "docker": {"image": "busybox"}}
    cmd = task_info(app(cmd=None, args=["echo"], container=docker), a_match((31000,)), TID, "S1")["command"]
    assert cmd["shell"] is False and "value" not in cmd and cmd["arguments"] == ["echo"]
    cmd = task_info(app(cmd=None, container=docker), a_match((31000,)), TID, "S1")["command"]
    assert cmd["shell"] is False and "value" not in cmd  # the image's entrypoint


def test_fetch_and_user() -> None:
    fetch = [{"uri": "http://x/a.tgz", "extract": True, "executable": False, "cache": False, "destPath": "a"}]
    cmd = task_info(app(fetch=fetch, user="nobody"), a_match((31000,)), TID, "S1")["command"]
    assert cmd["uris"] == [
        {"value": "http://x/a.tgz", "executable": False, "extract": True, "cache": False, "output_file": "a"}
    ]
    assert cmd["user"] == "nobody"


def bridge_app(**over: Any) -> dict[str, Any]:
    container = {
        "type": "DOCKER",
        "docker": {
            "image": "nginx:1.25",
            "forcePullImage": True,
            "parameters": [{"key": "init", "value": "true"}],
        },
        "portMappings": [
            {
                "containerPort": 80,
                "hostPort": 0,
                "servicePort": 10001,
                "protocol": "tcp",
                "name": "web",
                "labels": {},
            },
            {"containerPort": 0, "hostPort": 0, "servicePort": 10002, "protocol": "udp,tcp", "labels": {}},
        ],
        "volumes": [{"containerPath": "/data", "hostPath": "/srv/data", "mode": "RO"}],
    }
    return app(
        container=container, networks=[{"mode": "container/bridge"}], portDefinitions=[], cmd=None, **over
    )


def test_docker_bridge_container() -> None:
    info = task_info(bridge_app(), a_match((31001, 31002)), TID, "S1")
    assert info["container"] == {
        "type": "DOCKER",
        "volumes": [{"container_path": "/data", "host_path": "/srv/data", "mode": "RO"}],
        "docker": {
            "image": "nginx:1.25",
            "network": "BRIDGE",
            "port_mappings": [
                {"host_port": 31001, "container_port": 80, "protocol": "tcp"},
                {
                    "host_port": 31002,
                    "container_port": 31002,
                    "protocol": "udp",
                },  # containerPort 0 = host port
                {"host_port": 31002, "container_port": 31002, "protocol": "tcp"},
            ],
            "privileged": False,
            "parameters": [
                {"key": "init", "value": "true"},
                {"key": "label", "value": f"MESOS_TASK_ID={TID}"},
            ],
            "force_pull_image": True,
        },
    }
    scope = {"labels": [{"key": "network-scope", "value": "host"}]}
    assert info["discovery"]["ports"]["ports"] == [
        {"number": 31001, "protocol": "tcp", "name": "web", "labels": scope},
        {"number": 31002, "protocol": "udp", "labels": scope},
        {"number": 31002, "protocol": "tcp", "labels": scope},
    ]
    env = env_of(info)
    assert env["MARATHON_APP_DOCKER_IMAGE"] == "nginx:1.25"
    assert (env["PORT0"], env["PORT1"], env["PORT_80"], env["PORT_WEB"], env["PORT_31002"]) == (
        "31001",
        "31002",
        "31001",
        "31001",
        "31002",
    )


def test_container_network_without_host_ports() -> None:
    container = {
        "type": "DOCKER",
        "docker": {"image": "nginx"},
        "portMappings": [{"containerPort": 8080, "name": "api"}, {"containerPort": 0, "name": "dyn"}],
    }
    a = app(container=container, networks=[{"mode": "container", "name": "overlay"}], portDefinitions=[])
    info = task_info(a, a_match((None, None)), TID, "S1")
    docker = info["container"]["docker"]
    assert docker["network"] == "USER" and docker["port_mappings"] == []
    assert info["container"]["network_infos"] == [{"name": "overlay"}]
    scoped = [{"key": "network-scope", "value": "container"}, {"key": "network-name", "value": "overlay"}]
    assert info["discovery"]["ports"]["ports"][0] == {
        "number": 8080,
        "protocol": "tcp",
        "name": "api",
        "labels": {"labels": scoped},
    }
    env = env_of(info)
    assert env["PORT0"] == "8080" and env["PORT_API"] == "8080"
    generated = int(env["PORT1"])  # containerPort 0: a free port above 1024, stable for the task id
    assert 1025 <= generated <= 65535 and env["PORT_DYN"] == env[f"PORT_{generated}"] == str(generated)
    assert env_of(task_info(a, a_match((None, None)), TID, "S1"))["PORT1"] == str(generated)
    assert env["PORTS"] == str(generated) and env["PORT"] == str(generated)


def test_ucr_container() -> None:
    container = {
        "type": "MESOS",
        "docker": {"image": "alpine"},
        "portMappings": [{"containerPort": 80, "hostPort": 0}],
    }
    a = app(container=container, networks=[{"mode": "container/bridge"}], portDefinitions=[], tty=True)
    c = task_info(a, a_match((31000,)), TID, "S1")["container"]
    assert c["type"] == "MESOS" and c["mesos"] == {"image": {"type": "DOCKER", "docker": {"name": "alpine"}}}
    assert c["network_infos"] == [
        {
            "ip_addresses": [{}],
            "labels": {"labels": []},
            "name": "mesos-bridge",
            "port_mappings": [{"host_port": 31000, "container_port": 80, "protocol": "tcp"}],
        }
    ]
    assert c["tty_info"] == {}
    assert "container" not in task_info(app(), a_match((31000,)), TID, "S1")


def test_mesos_health_checks_go_into_the_task() -> None:
    times = {"gracePeriodSeconds": 30, "intervalSeconds": 5, "timeoutSeconds": 2, "delaySeconds": 1}
    http = {"protocol": "MESOS_HTTP", "path": "/health", "portIndex": 0, "maxConsecutiveFailures": 4, **times}
    info = task_info(
        bridge_app(healthChecks=[{"protocol": "HTTP"}, http]), a_match((31001, 31002)), TID, "S1"
    )
    assert info["health_check"] == {
        "type": "HTTP",
        "interval_seconds": 5.0,
        "timeout_seconds": 2.0,
        "consecutive_failures": 4,
        "grace_period_seconds": 30.0,
        "delay_seconds": 1.0,
        "http": {"scheme": "http", "port": 80, "path": "/health", "protocol": "IPv4"},  # the container port
    }
    spec = HealthCheckSpec.from_json(info["health_check"])  # what the agent runs
    assert (spec.kind, spec.port, spec.path, spec.consecutive_failures) == ("HTTP", 80, "/health", 4)
    tcp = task_info(
        app(healthChecks=[{"protocol": "MESOS_TCP", "portIndex": 0}]), a_match((31005,)), TID, "S1"
    )
    assert tcp["health_check"]["tcp"] == {"port": 31005, "protocol": "IPv4"}
    assert (
        tcp["health_check"]["grace_period_seconds"] == 300.0
        and tcp["health_check"]["interval_seconds"] == 60.0
    )
    cmd = {"protocol": "COMMAND", "command": {"value": "curl -f localhost"}}
    check = task_info(app(healthChecks=[cmd]), a_match((31005,)), TID, "S1")["health_check"]
    assert check["type"] == "COMMAND" and check["command"] == {"shell": True, "value": "curl -f localhost"}
    assert HealthCheckSpec.from_json(check).kind == "COMMAND"
    https = {"protocol": "MESOS_HTTPS", "port": 8443}
    check = task_info(app(healthChecks=[https]), a_match((31005,)), TID, "S1")["health_check"]
    assert check["http"]["scheme"] == "https" and check["http"]["port"] == 8443


def test_marathon_side_checks_stay_out() -> None:
    checks = [{"protocol": p, "portIndex": 0} for p in ("HTTP", "HTTPS", "TCP")]
    assert "health_check" not in task_info(app(healthChecks=checks), a_match((31005,)), TID, "S1")


def test_labels_and_limits() -> None:
    info = task_info(
        app(labels={"a": "1"}, resourceLimits={"cpus": 2, "mem": "unlimited"}), a_match((31005,)), TID, "S1"
    )
    assert info["labels"] == {"labels": [{"key": "a", "value": "1"}]}
    assert info["limits"] == {"cpus": {"value": 2.0}, "mem": {"value": "Infinity"}}
    assert "labels" not in task_info(app(), a_match((31005,)), TID, "S1")
