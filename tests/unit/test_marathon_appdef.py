"""marathon_py app model: path ids, JSON reading, normalization (defaults, 1.4 migration), rendering,
validation messages, restart-vs-scale, versions, partial updates, and a normalize/render round trip.

Expected messages and paths are Marathon 1.10's (its own unit tests where they exist, e.g.
``AppDefinitionTest``, ``AppValidationTest``, ``PathIdTest``, ``MarathonExceptionMapperTest``).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marathon_py import appdef, pathid
from marathon_py.appvalidation import Settings
from marathon_py.pathid import PathId
from marathon_py.validation import (
    BadRequest,
    InvalidJson,
    NormalizationError,
    ValidationError,
    parse_json,
)

CMD_ARGS = "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."
NOW = "2024-05-01T10:00:00.000Z"
LATER = "2024-05-02T10:00:00.000Z"
# marathon-python 0.13 MarathonApp constructor keys (camelCase), reference §9.1
CLIENT_APP_KEYS = {
    *("acceptedResourceRoles", "args", "backoffFactor", "backoffSeconds", "cmd", "constraints", "container"),
    *("cpus", "dependencies", "deployments", "disk", "env", "executor", "healthChecks", "id", "role"),
    *("instances", "killSelection", "labels", "lastTaskFailure", "maxLaunchDelaySeconds", "mem", "ports"),
    *("requirePorts", "storeUrls", "taskRateLimit", "tasks", "tasksRunning", "tasksStaged", "tasksHealthy"),
    *("taskKillGracePeriodSeconds", "tasksUnhealthy", "upgradeStrategy", "unreachableStrategy", "uris"),
    *("user", "version", "versionInfo", "ipAddress", "fetch", "taskStats", "readinessChecks"),
    *("readinessCheckResults", "secrets", "portDefinitions", "residency", "gpus", "networks"),
}
CLIENT_CONTAINER_KEYS = {"docker", "type", "portMappings", "volumes"}
CLIENT_PORT_MAPPING_KEYS = {"name", "containerPort", "hostPort", "servicePort", "protocol", "labels"}


def norm(doc: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return appdef.normalize(doc, **kwargs)


def errors_of(exc: pytest.ExceptionInfo[Any]) -> dict[str, list[str]]:
    return {d["path"]: d["errors"] for d in exc.value.body()["details"]}


def invalid(doc: Any, **kwargs: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as exc:
        appdef.normalize(doc, **kwargs)
    assert exc.value.status == 422 and exc.value.body()["message"] == "Object is not valid"
    return errors_of(exc)


def bad_json(doc: Any) -> dict[str, list[str]]:
    with pytest.raises(InvalidJson) as exc:
        appdef.normalize(doc)
    assert exc.value.status == 422 and exc.value.body()["message"] == "Invalid JSON"
    return errors_of(exc)


# --- path ids -------------------------------------------------------------------------------------------


def test_pathid_parse_and_canonical_like_marathon() -> None:
    assert str(PathId.parse("/a//b/c/")) == "/a/b/c"
    assert not PathId.parse("a/b").absolute
    assert PathId.parse("/").is_root and not PathId.parse("").is_root
    base = PathId.parse("/a/b/c/d")
    assert str(PathId.parse("./test/../e/f/g/./../").canonical(base)) == "/a/b/c/d/e/f"
    assert str(PathId.parse("test/../a/b/c/d/d/../e/f/g/./../").canonical()) == "/a/b/c/d/e/f"
    assert str(PathId.parse("../../../../x").canonical(PathId.parse("/a"))) == "/x"  # stays at the root
    assert pathid.canonical("b", "/a") == "/a/b" and pathid.canonical("/b", "/a") == "/b"
    with pytest.raises(ValueError):
        PathId.parse("x").canonical(PathId.parse("rel"))


def test_pathid_parent_children_and_forms() -> None:
    pid = PathId.parse("/a/b/c")
    assert (
        str(pid.parent) == "/a/b" and str(PathId.parse("/a").parent) == "/" and PathId.root().parent.is_root
    )
    assert [str(p) for p in PathId.parse("/a/b/c/d").all_parents()] == ["/a/b/c", "/a/b", "/a", "/"]
    assert PathId.parse("/a").is_top_level and not pid.is_top_level and not PathId.root().is_top_level
    assert str(pid.child("d")) == "/a/b/c/d" and pid.name == "c" and pid.root_segment == "a"
    assert (
        pid.safe() == "a_b_c" and PathId.from_safe("a_b_c") == pid and PathId.from_safe("") == PathId.root()
    )
    assert pid.hostname() == "c.b.a"
    assert pid.includes(PathId.parse("/a/b")) and not pid.includes(PathId.parse("/a/x"))
    assert sorted([PathId.parse("/b"), PathId.parse("/a/a"), PathId.parse("/a")]) == [
        PathId.parse("/a"),
        PathId.parse("/a/a"),
        PathId.parse("/b"),
    ]
    with pytest.raises(ValueError):
        PathId.parse("rel").safe()


def test_pathid_validation_messages() -> None:
    regex = r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])|(\.|\.\.)$"
    assert PathId.parse("/@foobar-0").errors() == [f"must fully match regular expression '{regex}'"]
    for bad in ("/a b", "/-dash", "/dash-", "/Upper", "/a_b"):
        assert pathid.INVALID_CHARS in PathId.parse(bad).errors(), bad
    assert PathId.parse("/foobar-0").errors() == [] and PathId.parse("/a.b.c/d-1").errors() == []
    for keyword in ("restart", "tasks", "versions"):
        assert PathId.parse(f"/foo/{keyword}").errors() == [
            "must not end with any of the following reserved keywords: restart, tasks, versions, ., .."
        ]
        assert PathId.parse(f"/{keyword}/foo").errors() == []
    assert PathId.parse("/g/x").errors(base=PathId.parse("/g")) == []
    assert PathId.parse("/other/x").errors(base=PathId.parse("/g")) == ["Identifier is not child of '/g'"]


# --- request bodies ---------------------------------------------------------------------------------------


def test_parse_json_errors_are_marathons() -> None:
    assert parse_json(b'{"id": "/a"}') == {"id": "/a"}
    with pytest.raises(BadRequest) as exc:
        parse_json(b"  ")
    assert exc.value.status == 400
    assert exc.value.body() == {
        "message": "Please specify data in JSON format",
        "details": "No content to map due to end-of-input",
    }
    for body in (b'{"id":"/test"', b'{"cpus": NaN}', b"\xff\xfe", b"[1,]"):
        with pytest.raises(BadRequest) as exc:
            parse_json(body)
        assert exc.value.body()["message"] == "Invalid JSON" and isinstance(exc.value.body()["details"], str)


def test_json_type_errors_are_422_invalid_json_with_play_keys() -> None:
    errs = bad_json({"id": 123, "cmd": 5, "instances": 0.5, "mem": "a", "env": [], "labels": {"a": 1}})
    assert errs == {
        "/id": ["error.expected.jsstring"],
        "/cmd": ["error.expected.jsstring"],
        "/env": ["error.expected.jsobject"],
        "/instances": ["error.expected.int"],
        "/labels/a": ["error.expected.jsstring"],
        "/mem": ["error.expected.jsnumber"],
    }
    assert bad_json({"cmd": "x y"}) == {"/id": ["error.path.missing"]}
    assert bad_json({"id": "/a", "cmd": "x y", "requirePorts": "yes"}) == {
        "/requirePorts": ["error.expected.jsboolean"]
    }
    assert bad_json({"id": "/a", "cmd": "x y", "healthChecks": [{"protocol": "SMTP"}]}) == {
        "/healthChecks(0)/protocol": ["error.unknown.enum.literal"]
    }
    assert bad_json({"id": "/a", "cmd": "x y", "killSelection": "RANDOM"}) == {
        "/killSelection": ["error.unknown.enum.literal"]
    }
    assert bad_json([1]) == {"": ["error.expected.jsobject"]}
    assert bad_json({"id": "/a", "cmd": "x y", "container": {"type": "DOCKER", "docker": {}}}) == {
        "/container/docker/image": ["error.path.missing"]
    }


def test_raml_facets_reject_out_of_range_values_while_reading() -> None:
    assert bad_json({"id": "/a", "cmd": "x y", "cpus": -1}) == {"/cpus": ["error.min"]}
    assert bad_json({"id": "/a", "cmd": "x y", "mem": -128, "disk": -1, "gpus": -1}) == {
        "/disk": ["error.min"],
        "/gpus": ["error.min"],
        "/mem": ["error.min"],
    }
    assert bad_json({"id": "/a", "cmd": "x y", "instances": -1}) == {"/instances": ["error.min"]}
    assert bad_json({"id": "/a", "cmd": "x y", "cpus": float("nan")}) == {
        "/cpus": ["error.expected.jsnumber"]
    }
    strategy = {"minimumHealthCapacity": 1.2, "maximumOverCapacity": -0.1}
    assert bad_json({"id": "/a", "cmd": "x y", "upgradeStrategy": strategy}) == {
        "/upgradeStrategy/maximumOverCapacity": ["error.min"],
        "/upgradeStrategy/minimumHealthCapacity": ["error.max"],
    }
    assert bad_json({"id": "/a", "cmd": "x y", "upgradeStrategy": {"minimumHealthCapacity": 0.5}}) == {
        "/upgradeStrategy/maximumOverCapacity": ["error.path.missing"]
    }
    assert bad_json({"id": "/a", "cmd": "", "backoffFactor": 0.5}) == {
        "/backoffFactor": ["error.min"],
        "/cmd": ["error.minLength"],
    }
    assert bad_json({"id": "/My_App", "cmd": "x y"}) == {"/id": ["error.pattern"]}
    assert bad_json({"id": "", "cmd": "x y"}) == {"/id": ["error.minLength"]}
    assert bad_json({"id": "/a", "cmd": "x y", "executor": "/test//path"}) == {"/executor": ["error.pattern"]}
    assert bad_json({"id": "/a", "cmd": "x y", "constraints": [["hostname"], ["a", "B", "c", "d"]]}) == {
        "/constraints(0)": ["error.minLength"],
        "/constraints(1)": ["error.maxLength"],
    }
    assert bad_json({"id": "/a", "cmd": "x y", "portDefinitions": [{"port": 70000}]}) == {
        "/portDefinitions(0)/port": ["error.max"]
    }


def test_unknown_fields_are_ignored_like_marathon() -> None:
    app = norm(
        {"id": "/a", "cmd": "x y", "foo": 1, "tasks": [{"id": "t"}], "tasksRunning": 3, "deployments": []}
    )
    assert not {"foo", "tasks", "tasksRunning", "deployments"} & set(app)


# --- defaults and rendering ------------------------------------------------------------------------------


def test_minimal_app_gets_every_default() -> None:
    app = norm({"id": "app", "cmd": "sleep 100"})
    assert app == {
        "id": "/app",
        "args": [],
        "backoffFactor": 1.15,
        "backoffSeconds": 1,
        "cmd": "sleep 100",
        "constraints": [],
        "cpus": 1.0,
        "dependencies": [],
        "disk": 0.0,
        "env": {},
        "executor": "",
        "fetch": [],
        "healthChecks": [],
        "instances": 1,
        "labels": {},
        "maxLaunchDelaySeconds": 300,
        "mem": 128.0,
        "gpus": 0,
        "networks": [{"mode": "host", "labels": {}}],
        "portDefinitions": [{"port": 0, "labels": {}, "name": "default", "protocol": "tcp"}],
        "readinessChecks": [],
        "requirePorts": False,
        "secrets": {},
        "upgradeStrategy": {"maximumOverCapacity": 1.0, "minimumHealthCapacity": 1.0},
        "killSelection": "YOUNGEST_FIRST",
        "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
        "role": "*",
    }


def test_to_json_omits_unset_and_empty_optional_fields() -> None:
    rendered = appdef.to_json(norm({"id": "/app", "cmd": "sleep 100"}))
    assert rendered == {
        "id": "/app",
        "backoffFactor": 1.15,
        "backoffSeconds": 1,
        "cmd": "sleep 100",
        "cpus": 1.0,
        "disk": 0.0,
        "executor": "",
        "instances": 1,
        "labels": {},
        "maxLaunchDelaySeconds": 300,
        "mem": 128.0,
        "gpus": 0,
        "networks": [{"mode": "host"}],
        "portDefinitions": [{"port": 0, "name": "default", "protocol": "tcp"}],
        "requirePorts": False,
        "upgradeStrategy": {"maximumOverCapacity": 1.0, "minimumHealthCapacity": 1.0},
        "killSelection": "YOUNGEST_FIRST",
        "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
        "role": "*",
    }
    assert None not in rendered.values()


def test_to_json_keeps_set_values_and_embeds_app_info() -> None:
    app = norm(
        {
            "id": "/app",
            "args": ["run"],
            "env": {"A": "1"},
            "user": "nobody",
            "constraints": [["hostname", "unique"]],
            "acceptedResourceRoles": ["*"],
            "portDefinitions": [{"port": 8080, "labels": {"VIP": "x"}}],
            "taskKillGracePeriodSeconds": 5,
            "dependencies": ["/db"],
        }
    )
    embed = {
        "tasksRunning": 1,
        "tasks": [],
        "deployments": [{"id": "d1"}],
        "notAppInfo": 1,
        "lastTaskFailure": None,
    }
    out = appdef.to_json(app, embed)
    assert out["args"] == ["run"] and out["env"] == {"A": "1"} and out["user"] == "nobody"
    assert out["constraints"] == [["hostname", "UNIQUE"]] and out["acceptedResourceRoles"] == ["*"]
    assert out["portDefinitions"] == [{"port": 8080, "labels": {"VIP": "x"}, "protocol": "tcp"}]
    assert out["taskKillGracePeriodSeconds"] == 5 and out["dependencies"] == ["/db"]
    assert out["tasksRunning"] == 1 and out["tasks"] == [] and out["deployments"] == [{"id": "d1"}]
    assert "notAppInfo" not in out and "lastTaskFailure" not in out
    assert set(out) <= CLIENT_APP_KEYS | {"tasksRunning"}


def test_health_check_defaults_per_protocol() -> None:
    checks = [
        {"protocol": "http"},
        {"protocol": "TCP", "port": 8080, "delaySeconds": 3},
        {"protocol": "COMMAND", "command": {"value": "true"}, "portIndex": 0, "delaySeconds": 3},
        {"protocol": "MESOS_HTTPS", "path": "/health", "delaySeconds": 3, "timeoutSeconds": 5},
    ]
    app = norm({"id": "/a", "cmd": "x y", "healthChecks": checks})
    common = {
        "gracePeriodSeconds": 300,
        "intervalSeconds": 60,
        "maxConsecutiveFailures": 3,
        "ipProtocol": "IPv4",
    }
    assert app["healthChecks"] == [
        {**common, "protocol": "HTTP", "timeoutSeconds": 20, "delaySeconds": 15, "ignoreHttp1xx": False}
        | {"path": "/", "portIndex": 0},
        {**common, "protocol": "TCP", "timeoutSeconds": 20, "delaySeconds": 15, "port": 8080},
        {
            **common,
            "protocol": "COMMAND",
            "timeoutSeconds": 20,
            "delaySeconds": 3,
            "command": {"value": "true"},
        },
        {**common, "protocol": "MESOS_HTTPS", "timeoutSeconds": 5, "delaySeconds": 3, "path": "/health"}
        | {"portIndex": 0},
    ]
    for check in appdef.to_json(app)["healthChecks"]:  # what marathon-lb reads
        assert {
            "protocol",
            "timeoutSeconds",
            "intervalSeconds",
            "gracePeriodSeconds",
            "maxConsecutiveFailures",
        } <= set(check)


def test_health_check_rules() -> None:
    out_of_range = {"id": "/a", "cmd": "x y", "healthChecks": [{"protocol": "HTTP", "portIndex": 3}]}
    assert invalid(out_of_range) == {
        "/healthChecks(0)": [
            "Health check port indices must address an element of the ports array or container port mappings."
        ]
    }
    no_ports = {"id": "/a", "cmd": "x y", "portDefinitions": [], "healthChecks": [{"protocol": "TCP"}]}
    assert "/healthChecks(0)" in invalid(no_ports)
    with_port = {
        "id": "/a",
        "cmd": "x y",
        "portDefinitions": [],
        "healthChecks": [{"protocol": "TCP", "port": 9}],
    }
    assert norm(with_port)["healthChecks"][0]["port"] == 9
    command_http = {"protocol": "HTTP", "command": {"value": "true"}}
    assert invalid({"id": "/a", "cmd": "x y", "healthChecks": [command_http]}) == {
        "/healthChecks(0)": ["illegal protocol HTTP specified with command"]
    }
    ipv6 = {"protocol": "HTTP", "ipProtocol": "IPv6"}
    assert invalid({"id": "/a", "cmd": "x y", "healthChecks": [ipv6]}) == {
        "/healthChecks(0)": [
            "IPv6 can only be used for container type DOCKER and Mesos http/https/tcp health checks"
        ]
    }
    two_mesos = [{"protocol": "MESOS_TCP"}, {"protocol": "MESOS_HTTP"}]
    assert invalid({"id": "/a", "cmd": "x y", "healthChecks": two_mesos}) == {
        "/": ["AppDefinition can contain at most one Mesos health check"]
    }


# --- 1.4 networking input --------------------------------------------------------------------------------


def test_legacy_ports_and_uris_are_migrated() -> None:
    app = norm({"id": "/a", "cmd": "x y", "ports": [0, 0], "uris": ["http://h/b.tgz", "http://h/run.sh"]})
    assert app["portDefinitions"] == [{"port": 0, "labels": {}, "protocol": "tcp"}] * 2
    assert app["fetch"] == [
        {"uri": "http://h/b.tgz", "extract": True, "executable": False, "cache": False},
        {"uri": "http://h/run.sh", "extract": False, "executable": False, "cache": False},
    ]
    out = appdef.to_json(app)
    assert not {"ports", "uris", "ipAddress"} & set(out)


def test_legacy_docker_bridge_network_and_port_mappings() -> None:
    docker = {"image": "nginx", "network": "BRIDGE", "portMappings": [{"containerPort": 80, "name": "http"}]}
    app = norm({"id": "/a", "container": {"type": "DOCKER", "docker": docker}})
    assert app["networks"] == [{"mode": "container/bridge", "labels": {}}]
    assert "portDefinitions" not in app
    assert app["container"] == {
        "type": "DOCKER",
        "docker": {"forcePullImage": False, "image": "nginx", "parameters": [], "privileged": False},
        "volumes": [],
        "portMappings": [
            {
                "containerPort": 80,
                "hostPort": 0,
                "labels": {},
                "name": "http",
                "protocol": "tcp",
                "servicePort": 0,
                "networkNames": [],
            }
        ],
    }
    out = appdef.to_json(app)["container"]
    assert set(out) <= CLIENT_CONTAINER_KEYS and set(out["portMappings"][0]) <= CLIENT_PORT_MAPPING_KEYS


def test_legacy_docker_host_and_user_networks() -> None:
    host = norm({"id": "/a", "container": {"type": "DOCKER", "docker": {"image": "i", "network": "HOST"}}})
    assert host["networks"] == [{"mode": "host", "labels": {}}] and len(host["portDefinitions"]) == 1
    user = {"type": "DOCKER", "docker": {"image": "i", "network": "USER"}}
    app = norm({"id": "/a", "container": user, "ipAddress": {"networkName": "calico"}})
    assert app["networks"] == [{"mode": "container", "name": "calico", "labels": {}}]
    assert (
        app["container"]["portMappings"][0]["name"] == "default"
        and "hostPort" not in app["container"]["portMappings"][0]
    )
    with pytest.raises(NormalizationError):
        norm({"id": "/a", "container": {"type": "DOCKER", "docker": {"image": "i", "network": "NONE"}}})


def test_legacy_ip_address_becomes_container_network() -> None:
    app = norm({"id": "/a", "cmd": "x y", "ipAddress": {"networkName": "dcos", "labels": {"k": "v"}}})
    assert app["networks"] == [{"mode": "container", "name": "dcos", "labels": {"k": "v"}}]
    assert app["container"]["type"] == "MESOS" and len(app["container"]["portMappings"]) == 1
    bridge = norm({"id": "/a", "cmd": "x y", "ipAddress": {"networkName": "mesos-bridge"}})
    assert bridge["networks"][0]["mode"] == "container/bridge"
    assert bridge["container"]["portMappings"][0]["hostPort"] == 0
    discovery = {
        "networkName": "dcos",
        "discovery": {"ports": [{"number": 80, "name": "web", "protocol": "tcp"}]},
    }
    mapped = norm({"id": "/a", "cmd": "x y", "ipAddress": discovery})
    assert [(m["containerPort"], m["name"]) for m in mapped["container"]["portMappings"]] == [(80, "web")]
    unnamed = norm(
        {"id": "/a", "cmd": "x y", "ipAddress": {}}, settings=Settings(default_network_name="dcos")
    )
    assert unnamed["networks"][0]["name"] == "dcos"


def test_legacy_rules() -> None:
    both = {"id": "/a", "cmd": "x y", "ipAddress": {}, "networks": [{"mode": "host"}]}
    assert invalid(both) == {"/": ["must not specify both networks and ipAddress"]}
    docker = {"type": "DOCKER", "docker": {"image": "i", "network": "HOST"}}
    assert invalid({"id": "/a", "container": docker, "networks": [{"mode": "host"}]}) == {
        "/": ["must not specify both container.docker.network and networks"]
    }
    assert invalid({"id": "/a", "cmd": "x y", "ports": [80, 80]}) == {"/": ["ports must be unique"]}
    assert invalid({"id": "/a", "cmd": "x y", "ports": [80], "portDefinitions": [{"port": 81}]}) == {
        "/": ["cannot specify both ports and port definitions"]
    }
    assert invalid({"id": "/a", "cmd": "x y", "uris": ["http://a"], "fetch": [{"uri": "http://b"}]}) == {
        "/uris": ["may not be set in conjunction with fetch"]
    }
    mesos_docker = {
        "type": "MESOS",
        "docker": {"image": "i", "network": "BRIDGE", "parameters": [{"key": "a", "value": "b"}]},
    }
    assert invalid({"id": "/a", "container": mesos_docker}) == {
        "/container/docker/network": ["must be empty"],
        "/container/docker/parameters": ["must be empty"],
    }


# --- canonical networking --------------------------------------------------------------------------------


def test_container_networks_need_a_name_or_the_default() -> None:
    doc = {"id": "/a", "cmd": "x y", "networks": [{"mode": "container"}]}
    assert invalid(doc) == {
        "/networks": ["Network name must be specified when container network is selected."]
    }
    app = norm(doc, settings=Settings(default_network_name="dcos"))
    assert app["networks"] == [{"mode": "container", "labels": {}, "name": "dcos"}]
    assert app["container"] == {
        "type": "MESOS",
        "volumes": [],
        "portMappings": [
            {
                "containerPort": 0,
                "labels": {},
                "protocol": "tcp",
                "servicePort": 0,
                "networkNames": [],
                "name": "default",
            }
        ],
    }


def test_network_mode_rules() -> None:
    mixed = {"id": "/a", "cmd": "x y", "networks": [{"mode": "host"}, {"mode": "container/bridge"}]}
    assert invalid(mixed) == {
        "/networks": [
            "May specify a single host network, single bridge network, or else 1-to-n container networks"
        ]
    }
    named_host = {"id": "/a", "cmd": "x y", "networks": [{"mode": "host", "name": "x"}]}
    assert invalid(named_host) == {"/networks": ["Host networks may not have names or labels"]}
    dup = {"id": "/a", "cmd": "x y", "networks": [{"mode": "container", "name": "a"}, {"name": "a"}]}
    assert invalid(dup) == {"/networks": ["Duplicate networks are not allowed"]}
    two = [{"mode": "container", "name": "a"}, {"mode": "container", "name": "b"}]
    docker = {"type": "DOCKER", "docker": {"image": "i"}}
    assert invalid({"id": "/a", "container": docker, "networks": two}) == {
        "/": ["may only specify a single container network when using the Docker container engine"]
    }
    mapping = {"containerPort": 80, "hostPort": 0, "networkNames": ["c"]}
    mesos = {"type": "MESOS", "portMappings": [mapping]}
    assert invalid({"id": "/a", "cmd": "x y", "container": mesos, "networks": two}) == {
        "/container/portMappings(0)/networkNames(0)": ["is not one of (a,b)"]
    }


def test_host_mode_requires_ports_but_other_modes_do_not() -> None:
    app = norm({"id": "/a", "cmd": "x y", "requirePorts": True, "portDefinitions": [{"port": 8080}]})
    assert app["requirePorts"] is True
    bridged = norm(
        {"id": "/a", "cmd": "x y", "requirePorts": True, "networks": [{"mode": "container/bridge"}]}
    )
    assert bridged["requirePorts"] is False
    # port mappings posted for host mode are dropped, as Marathon does
    host = norm({"id": "/a", "container": {"type": "DOCKER", "docker": {"image": "i"}, "portMappings": [{}]}})
    assert "portMappings" not in host["container"] and host["portDefinitions"][0]["name"] == "default"


def test_port_conflicts() -> None:
    defs = [{"port": 80, "name": "a"}, {"port": 80, "name": "a"}, {"port": 0}, {"port": 0}]
    assert invalid({"id": "/a", "cmd": "x y", "portDefinitions": defs}) == {
        "/portDefinitions": ["Port names must be unique.", "Ports must be unique."]
    }
    mappings = [{"containerPort": 80, "name": "a"}, {"containerPort": 81, "name": "a"}]
    container = {"type": "DOCKER", "docker": {"image": "i"}, "portMappings": mappings}
    assert invalid({"id": "/a", "container": container, "networks": [{"mode": "container/bridge"}]}) == {
        "/container/portMappings": ["Port names must be unique."]
    }


# --- semantic validation ----------------------------------------------------------------------------------


def test_cmd_args_container_rules() -> None:
    assert invalid({"id": "/a", "cmd": "x y", "args": ["a"]}) == {"/": [CMD_ARGS]}
    assert invalid({"id": "/a"}) == {"/": [CMD_ARGS]}
    assert norm({"id": "/a", "args": ["a", "b"]})["args"] == ["a", "b"]
    assert norm({"id": "/a", "container": {"type": "DOCKER", "docker": {"image": "nginx"}}})["container"]
    # a MESOS container without image passes the RAML-level rule but not the model one (as in Marathon)
    assert invalid({"id": "/a", "container": {"type": "MESOS"}}) == {"/": [CMD_ARGS]}
    assert invalid({"id": "/a", "cmd": "x"}) == {"/": ["must not be an empty string"]}
    assert invalid({"id": "/a", "container": {"type": "DOCKER"}}) == {
        "/container/docker": ["not defined"],
        "/": [CMD_ARGS],
    }


def test_id_rules() -> None:
    assert invalid({"id": "/", "cmd": "x y"}) == {
        "/id": ["Path must contain at least one path element"],
        "/": ["must not be root"],
    }
    assert invalid({"id": "/a/tasks", "cmd": "x y"}) == {
        "/id": ["must not end with any of the following reserved keywords: restart, tasks, versions, ., .."]
    }
    assert norm({"id": "b/c", "cmd": "x y"}, base="/a")["id"] == "/a/b/c"
    assert norm({"id": "../c", "cmd": "x y", "dependencies": ["d", "/e", "d"]}, base="/a/b") | {} == norm(
        {"id": "/a/c", "cmd": "x y", "dependencies": ["/a/b/d", "/e"]}
    )


def test_constraint_rules() -> None:
    doc = {
        "id": "/a",
        "cmd": "x y",
        "constraints": [
            ["hostname", "UNIQUE", "x"],
            ["rack", "FOO"],
            ["rack", "MAX_PER"],
            ["rack", "GROUP_BY", "x"],
            ["rack", "LIKE", "("],
            ["rack", "LIKE"],
            ["", "CLUSTER"],
            ["rack", "IS", "a b"],
        ],
    }
    assert invalid(doc) == {
        "/constraints(0)": ["UNIQUE does not accept a value"],
        "/constraints(1)": [
            "operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS"
        ],
        "/constraints(2)": ["MAX_PER requires an integer value"],
        "/constraints(3)": ["GROUP BY must define an integer value or else no value at all"],
        "/constraints(4)": ["is not a valid regular expression"],
        "/constraints(5)": ["LIKE and UNLIKE require a non-empty, regular expression value"],
        "/constraints(6)": ["illegal constraint specification"],
        "/constraints(7)": [
            "IS only supports Mesos text and float values "
            "(see http://mesos.apache.org/documentation/latest/attributes-resources/)"
        ],
    }
    ok = norm(
        {"id": "/a", "cmd": "x y", "constraints": [["rack", "group_by", "3"], ["rack", "GROUP_BY", "3"]]}
    )
    assert ok["constraints"] == [["rack", "GROUP_BY", "3"]]


def test_role_and_accepted_resource_roles() -> None:
    doc = {"id": "/a", "cmd": "x y", "role": "aRole"}
    assert invalid(doc, settings=Settings(default_role="someRole")) == {
        "/role": ["got aRole, expected one of: [someRole]"]
    }
    roles = {"id": "/a", "cmd": "x y", "acceptedResourceRoles": ["*", "other"]}
    assert invalid(roles) == {"/acceptedResourceRoles": ["acceptedResourceRoles can only contain *"]}
    assert invalid({"id": "/a", "cmd": "x y", "acceptedResourceRoles": []}) == {
        "/acceptedResourceRoles": ["must not be empty"]
    }
    assert invalid({"id": "/a", "cmd": "x y", "acceptedResourceRoles": ["a b"]})[
        "/acceptedResourceRoles(0)"
    ] == ["A role name must not include a space (\\x20) character."]
    app = norm(
        {"id": "/a", "cmd": "x y", "acceptedResourceRoles": ["ops", "*"]},
        settings=Settings(default_role="ops"),
    )
    assert app["role"] == "ops" and app["acceptedResourceRoles"] == ["ops", "*"]


def test_other_semantic_rules() -> None:
    label = {"MARATHON_SINGLE_INSTANCE_APP": "true"}
    assert invalid({"id": "/a", "cmd": "x y", "labels": label, "instances": 2})["/"] == [
        "Single instance app may only have one instance"
    ]
    assert invalid({"id": "/a", "cmd": "x y", "labels": label}) == {
        "/upgradeStrategy/minimumHealthCapacity": ["got 1.0, expected 0.0"],
        "/upgradeStrategy/maximumOverCapacity": ["got 1.0, expected 0.0"],
    }
    unreachable = {"inactiveAfterSeconds": 5, "expungeAfterSeconds": 1}
    assert invalid({"id": "/a", "cmd": "x y", "unreachableStrategy": unreachable}) == {
        "/unreachableStrategy/inactiveAfterSeconds": [
            "inactiveAfterSeconds (5) must be less or equal to expungeAfterSeconds, which is 1"
        ]
    }
    readiness = {"id": "/a", "cmd": "x y", "readinessChecks": [{"intervalSeconds": 5}]}
    assert invalid(readiness) == {
        "/readinessChecks(0)/portName": ["No port definition reference for portName http-api"],
        "/readinessChecks(0)/timeoutSeconds": ["got 10, expected less than 5"],
    }
    fetch = {"id": "/a", "cmd": "x y", "fetch": [{"uri": "http://ok"}, {"uri": "http://a b"}]}
    assert invalid(fetch) == {"/fetch(1)/uri": ["URI has invalid syntax."]}
    assert invalid({"id": "/a", "cmd": "x y", "secrets": {"s": {"source": "x"}}}) == {
        "/secrets": ["Feature secrets is not enabled. Enable with --enable_features secrets)"]
    }
    limits = {"id": "/a", "cmd": "x y", "resourceLimits": {"mem": 100, "cpus": "lots"}}
    assert invalid(limits) == {
        "/resourceLimits/cpus": ["'lots' is an invalid resource limit. It must be 'unlimited' or a number"],
        "/resourceLimits/mem": ["resource limit must be greater than or equal to requested resource (128.0)"],
    }
    assert invalid({"id": "/a", "cmd": "x y", "gpus": 1}) == {
        "/": ["Feature gpu_resources is not enabled. Enable with --enable_features gpu_resources)"]
    }
    assert norm(
        {"id": "/a", "cmd": "x y", "gpus": 1},
        settings=Settings(enabled_features=frozenset({"gpu_resources"})),
    )


def test_validation_error_body_shape() -> None:
    err = ValidationError([("/cpus", "a"), ("/cpus", "b"), ("/", "c"), ("/cpus", "a")])
    assert err.status == 422
    assert err.body() == {
        "message": "Object is not valid",
        "details": [{"path": "/cpus", "errors": ["a", "b"]}, {"path": "/", "errors": ["c"]}],
    }


def test_resident_apps_get_their_own_defaults() -> None:
    volume = {"containerPath": "data", "mode": "RW", "persistent": {"size": 10}}
    app = norm({"id": "/a", "cmd": "x y", "container": {"type": "MESOS", "volumes": [volume]}})
    assert app["upgradeStrategy"] == {"maximumOverCapacity": 0.0, "minimumHealthCapacity": 0.5}
    assert app["unreachableStrategy"] == "disabled"
    assert app["residency"] == {"relaunchEscalationTimeoutSeconds": 3600, "taskLostBehavior": "WAIT_FOREVER"}


# --- restart vs scale, versions ----------------------------------------------------------------------------


BASE = {"id": "/a", "cmd": "x y", "instances": 2, "labels": {"k": "v"}, "env": {"E": "1"}}


def variant(**changes: Any) -> dict[str, Any]:
    return norm({**BASE, **changes})


def test_restart_vs_scale() -> None:
    old = variant()
    assert not appdef.is_upgrade(old, variant()) and not appdef.needs_restart(old, variant())
    scaled = variant(instances=5)
    assert appdef.is_only_scale_change(old, scaled) and not appdef.is_upgrade(old, scaled)
    assert not appdef.needs_restart(old, scaled)
    changes: list[dict[str, Any]] = [
        {"labels": {"k": "w"}},
        {"labels": {}},
        {"env": {"E": "2"}},
        {"cpus": 0.5},
        {"cmd": "x z"},
        {"healthChecks": [{"protocol": "TCP"}]},
        {"upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.5}},
        {"unreachableStrategy": "disabled"},
        {"killSelection": "OLDEST_FIRST"},
        {"portDefinitions": [{"port": 10001}]},
        {"dependencies": ["/b"]},
    ]
    for change in changes:
        new = variant(**change)
        assert appdef.is_upgrade(old, new) and appdef.needs_restart(old, new), change
        assert not appdef.is_only_scale_change(old, variant(**change, instances=9)), change
    assert not appdef.is_upgrade(old, variant(executorResources={"cpus": 0.5}))  # as Marathon's isUpgrade
    assert not appdef.is_upgrade(old, {**old, "id": "/other"})
    versioned = appdef.with_version(None, old, NOW)
    assert appdef.needs_restart(versioned, appdef.mark_for_restart(versioned))
    assert not appdef.needs_restart(versioned, appdef.with_version(versioned, variant(), LATER))


def test_set_valued_fields_ignore_order() -> None:
    checks = [{"protocol": "TCP"}, {"protocol": "HTTP"}]
    constraints = [["a", "UNIQUE"], ["b", "UNIQUE"]]
    one = variant(healthChecks=checks, constraints=constraints, dependencies=["/x", "/y"])
    two = variant(healthChecks=checks[::-1], constraints=constraints[::-1], dependencies=["/y", "/x"])
    assert not appdef.is_upgrade(one, two)


def test_with_version_rules() -> None:
    old = appdef.with_version(None, variant(), NOW)
    assert old["version"] == NOW and old["versionInfo"] == {"lastScalingAt": NOW, "lastConfigChangeAt": NOW}
    scaled = appdef.with_version(old, variant(instances=3), LATER)
    assert scaled["version"] == LATER
    assert scaled["versionInfo"] == {"lastScalingAt": LATER, "lastConfigChangeAt": NOW}
    changed = appdef.with_version(scaled, variant(instances=3, cmd="new cmd"), LATER)
    assert changed["versionInfo"] == {"lastScalingAt": LATER, "lastConfigChangeAt": LATER}
    same = appdef.with_version(old, variant(), LATER)
    assert same["version"] == NOW and same["versionInfo"] == old["versionInfo"]
    restarted = appdef.with_version(old, variant(), LATER, restart=True)  # withScaleOrRestartChange (1.10)
    assert restarted["versionInfo"] == {"lastScalingAt": LATER, "lastConfigChangeAt": NOW}
    only_version = {**old, "versionInfo": None}
    del only_version["versionInfo"]
    assert appdef.with_version(only_version, variant(instances=7), LATER)["versionInfo"] == {
        "lastScalingAt": LATER,
        "lastConfigChangeAt": NOW,
    }


# --- partial updates ----------------------------------------------------------------------------------------


def test_partial_update_keeps_absent_fields() -> None:
    old = appdef.with_version(None, variant(portDefinitions=[{"port": 10000}]), NOW)
    new = appdef.partial_update(old, {"id": "/ignored", "instances": 4, "env": {"F": "2"}})
    assert new["id"] == "/a" and new["instances"] == 4 and new["env"] == {"F": "2"}
    assert new["labels"] == {"k": "v"} and new["portDefinitions"][0]["port"] == 10000
    assert new["version"] == NOW and new["versionInfo"] == old["versionInfo"]
    assert appdef.is_upgrade(old, new)
    scale = appdef.partial_update(old, {"instances": 4})
    assert appdef.is_only_scale_change(old, scale)
    unchanged = appdef.partial_update(old, {})
    assert unchanged == old


def test_partial_update_migrates_legacy_fields() -> None:
    old = variant()
    ported = appdef.partial_update(old, {"ports": [8080, 8081], "uris": ["http://h/x.zip"]})
    assert [d["port"] for d in ported["portDefinitions"]] == [8080, 8081]
    assert ported["fetch"][0]["extract"] is True
    bridged = appdef.partial_update(old, {"container": {"docker": {"image": "i", "network": "BRIDGE"}}})
    assert bridged["networks"][0]["mode"] == "container/bridge" and "portDefinitions" not in bridged
    assert bridged["container"]["portMappings"][0]["hostPort"] == 0


def test_full_replace_and_rollback_bodies() -> None:
    old = appdef.with_version(None, variant(), NOW)
    replaced = appdef.partial_update(old, {"cmd": "other cmd"}, partial=False)
    assert replaced["instances"] == 1 and replaced["labels"] == {} and replaced["version"] == NOW
    assert appdef.rollback_version({"version": NOW}) == NOW
    assert appdef.rollback_version({"id": "/a", "version": NOW}) == NOW
    assert appdef.rollback_version({"instances": 3}) is None
    with pytest.raises(ValidationError) as exc:
        appdef.rollback_version({"version": NOW, "instances": 3})
    assert errors_of(exc) == {"/": ["The 'version' field may only be combined with the 'id' field."]}
    with pytest.raises(InvalidJson):
        appdef.partial_update(old, [1])
    with pytest.raises(InvalidJson) as bad:
        appdef.partial_update(old, {"instances": -1})
    assert errors_of(bad) == {"/instances": ["error.min"]}


# --- round trip -----------------------------------------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
labels = st.dictionaries(st.from_regex(r"[A-Z_]{1,5}", fullmatch=True), st.text(max_size=5), max_size=3)
health = st.one_of(
    st.fixed_dictionaries(
        {"protocol": st.sampled_from(["HTTP", "HTTPS", "TCP", "MESOS_HTTP", "MESOS_TCP"])},
        optional={
            "path": st.just("/health"),
            "gracePeriodSeconds": st.integers(0, 600),
            "timeoutSeconds": st.integers(1, 30),
            "ignoreHttp1xx": st.booleans(),
        },
    ),
    st.fixed_dictionaries(
        {"protocol": st.just("COMMAND"), "command": st.fixed_dictionaries({"value": st.just("true")})}
    ),
)


@st.composite
def valid_apps(draw: st.DrawFn) -> dict[str, Any]:
    app: dict[str, Any] = {"id": "/" + "/".join(draw(st.lists(names, min_size=1, max_size=3)))}
    mode = draw(st.sampled_from(["host", "legacy-host", "bridge", "container"]))
    if mode == "host":
        ports = draw(st.lists(st.integers(0, 65535), max_size=3, unique=True))
        app["portDefinitions"] = [{"port": p, "name": f"p{i}"} for i, p in enumerate(ports)]
        app["requirePorts"] = draw(st.booleans())
        port_count = len(ports)
    elif mode == "legacy-host":
        app["ports"] = draw(st.lists(st.just(0), max_size=2))
        port_count = len(app["ports"])
    elif mode == "bridge":
        mappings = draw(st.lists(st.integers(1, 65535), max_size=3, unique=True))
        app["container"] = {
            "type": "DOCKER",
            "docker": {"image": "nginx", "network": "BRIDGE"},
            "portMappings": [{"containerPort": p, "labels": {"L": "x"}} for p in mappings],
        }
        port_count = len(mappings)
    else:
        app["networks"] = [{"mode": "container", "name": "dcos", "labels": draw(labels)}]
        app["container"] = {
            "type": "MESOS",
            "docker": {"image": "busybox", "forcePullImage": draw(st.booleans())},
        }
        port_count = 1
    if "container" not in app or draw(st.booleans()):
        app["cmd"] = "sleep " + str(draw(st.integers(1, 100)))
    if mode == "host" and port_count and draw(st.booleans()):
        app["readinessChecks"] = [{"portName": "p0", "httpStatusCodesForReady": [200, 204]}]
    if port_count:
        check = draw(health)
        app["healthChecks"] = [check if "command" in check else {**check, "portIndex": port_count - 1}]
    app.update(
        draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "instances": st.integers(0, 10),
                    "cpus": st.floats(0.01, 4, allow_nan=False).map(lambda f: round(f, 2)),
                    "mem": st.integers(0, 4096),
                    "labels": labels,
                    "env": labels,
                    "user": names,
                    "constraints": st.lists(
                        st.sampled_from(
                            [["hostname", "UNIQUE"], ["rack", "GROUP_BY", "2"], ["zone", "LIKE", "a.*"]]
                        ),
                        max_size=2,
                    ),
                    "upgradeStrategy": st.fixed_dictionaries(
                        {
                            "minimumHealthCapacity": st.sampled_from([0.0, 0.5, 1.0]),
                            "maximumOverCapacity": st.just(0.2),
                        }
                    ),
                    "unreachableStrategy": st.sampled_from(
                        ["disabled", {"inactiveAfterSeconds": 60, "expungeAfterSeconds": 600}]
                    ),
                    "killSelection": st.sampled_from(["OLDEST_FIRST", "YOUNGEST_FIRST"]),
                    "dependencies": st.lists(names.map(lambda n: "/dep/" + n), max_size=2),
                    "taskKillGracePeriodSeconds": st.integers(0, 60),
                    "fetch": st.lists(st.fixed_dictionaries({"uri": st.just("http://h/a.tgz")}), max_size=1),
                    "version": st.just(NOW),
                    "acceptedResourceRoles": st.just(["*"]),
                    "tty": st.booleans(),
                    "executorResources": st.fixed_dictionaries({}, optional={"mem": st.just(64)}),
                    "resourceLimits": st.fixed_dictionaries({}, optional={"cpus": st.just("unlimited")}),
                    "backoffSeconds": st.integers(0, 10),
                    "maxLaunchDelaySeconds": st.integers(0, 3600),
                },
            )
        )
    )
    return app


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_apps())
def test_round_trip_normalize_render(doc: dict[str, Any]) -> None:
    normalized = appdef.normalize(copy.deepcopy(doc))
    rendered = appdef.to_json(normalized)
    assert appdef.normalize(copy.deepcopy(rendered)) == normalized
    assert appdef.normalize(copy.deepcopy(normalized)) == normalized
    # keys the client cannot take (§9.1) appear only when the app sets them
    assert set(rendered) - ({"tty", "resourceLimits", "executorResources"} & set(doc)) <= CLIENT_APP_KEYS
    assert None not in rendered.values()
    assert not appdef.is_upgrade(normalized, appdef.normalize(rendered))
