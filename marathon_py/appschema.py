"""The App, AppUpdate and GroupUpdate RAML types of Marathon 1.10 (``docs/.../v2/types/*.raml``) as readers.

Defaults and facets are the RAML ones (reference §4.1, §6); reading fills them in exactly as Marathon's
generated Play readers do, before any normalization or semantic validation.
"""

from __future__ import annotations

from typing import Any

from marathon_py import pathid
from marathon_py.jsonread import (
    MISSING,
    AnyObj,
    Arr,
    Bool,
    Custom,
    Dict,
    Enum,
    Field,
    Int,
    Num,
    Obj,
    Str,
    _fail,
)
from marathon_py.validation import Detail

ANY_PORT = Int(0, 65535)
LEGACY_NAME = Str(1, None, r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAME = Str(1, 63, r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NETWORK_NAME = Str(1, 63, r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$")
PATH_ID = Str(1, None, pathid.RAML_PATTERN.pattern)
NETWORK_PROTOCOL = Enum(("tcp", "udp", "udp,tcp"))
DATETIME = Str(1, None, r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$")
LABELS = Dict(Str())
HEALTH_PROTOCOLS = ("HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_TCP", "MESOS_HTTP", "MESOS_HTTPS")
EXECUTOR_PATTERN = r"^(//cmd)|(/?[^/]+(/[^/]+)*)|$"
GROUP_UPDATE_REF = "#/components/schemas/GroupUpdate"  # the name /openapi.json gives GROUP_UPDATE (recursive)


def _opt(reader: Any) -> Field:
    return Field(reader)


def _dflt(reader: Any, default: Any) -> Field:
    return Field(reader, default=default)


def _req(reader: Any) -> Field:
    return Field(reader, required=True)


SECRET_REF = Obj({"secret": _req(Str())})
UNREACHABLE_ENABLED = Obj(
    {
        "inactiveAfterSeconds": _dflt(Int(0, long=True), 0),
        "expungeAfterSeconds": _dflt(Int(0, long=True), 0),
    }
)


def _env_value(value: Any, path: str, errors: list[Detail]) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return SECRET_REF.read(value, path, errors)
    return _fail(errors, path, "error.expected.jsstring")


def _unreachable(value: Any, path: str, errors: list[Detail]) -> Any:
    if value == "disabled":
        return value
    if isinstance(value, str):
        return _fail(errors, path, "error.unknown.enum.literal")
    return UNREACHABLE_ENABLED.read(value, path, errors)


def _resource_limit(value: Any, path: str, errors: list[Detail]) -> Any:
    if isinstance(value, str):
        return value  # "unlimited" is checked semantically, with Marathon's message
    return Num().read(value, path, errors)


RESOURCE_LIMIT = Custom(_resource_limit, {"oneOf": [Num().json_schema(), Enum(("unlimited",)).json_schema()]})


PORT_DEFINITION = Obj(
    {
        "port": _dflt(ANY_PORT, 0),
        "labels": _dflt(LABELS, {}),
        "name": _opt(LEGACY_NAME),
        "protocol": _dflt(NETWORK_PROTOCOL, "tcp"),
    }
)
PORT_MAPPING = Obj(
    {
        "containerPort": _dflt(ANY_PORT, 0),
        "hostPort": _opt(ANY_PORT),
        "labels": _dflt(LABELS, {}),
        "name": _opt(LEGACY_NAME),
        "protocol": _dflt(NETWORK_PROTOCOL, "tcp"),
        "servicePort": _dflt(ANY_PORT, 0),
        "networkNames": _dflt(Arr(NAME), []),
    }
)
DOCKER = Obj(
    {
        "credential": _opt(Obj({"principal": _req(Str()), "secret": _opt(Str())})),
        "pullConfig": _opt(Obj({"secret": _req(Str())})),
        "forcePullImage": _dflt(Bool(), False),
        "image": _req(Str(1)),
        "network": _opt(Enum(("BRIDGE", "HOST", "NONE", "USER"))),
        "parameters": _dflt(Arr(Obj({"key": _req(Str(1)), "value": _req(Str())})), []),
        "portMappings": _opt(Arr(PORT_MAPPING)),
        "privileged": _dflt(Bool(), False),
    }
)
CONTAINER = Obj(
    {
        "type": _dflt(Enum(("MESOS", "DOCKER")), "DOCKER"),
        "docker": _opt(DOCKER),
        "linuxInfo": _opt(AnyObj()),
        "volumes": _dflt(Arr(AnyObj()), []),
        "portMappings": _opt(Arr(PORT_MAPPING)),
    }
)
NETWORK = Obj(
    {
        "name": _opt(NETWORK_NAME),
        "mode": _dflt(Enum(("container", "container/bridge", "host")), "container"),
        "labels": _dflt(LABELS, {}),
    }
)
IP_ADDRESS = Obj(
    {
        "discovery": _opt(
            Obj(
                {
                    "ports": _dflt(
                        Arr(
                            Obj(
                                {
                                    "number": _dflt(ANY_PORT, 0),
                                    "name": _req(LEGACY_NAME),
                                    "protocol": _dflt(NETWORK_PROTOCOL, "tcp"),
                                    "labels": _dflt(LABELS, {}),
                                }
                            )
                        ),
                        [],
                    )
                }
            )
        ),
        "groups": _dflt(Arr(Str(), unique=True), []),
        "labels": _dflt(LABELS, {}),
        "networkName": _opt(Str(1)),
    }
)
HEALTH_CHECK = Obj(
    {
        "command": _opt(Obj({"value": _req(Str())})),
        "gracePeriodSeconds": _dflt(Int(0), 300),
        "ignoreHttp1xx": _opt(Bool()),
        "intervalSeconds": _dflt(Int(0), 60),
        "maxConsecutiveFailures": _dflt(Int(0), 3),
        "path": _opt(Str()),
        "port": _opt(ANY_PORT),
        "portIndex": _opt(ANY_PORT),
        "protocol": _dflt(Enum(HEALTH_PROTOCOLS), "HTTP"),
        "ipProtocol": _dflt(Enum(("IPv4", "IPv6")), "IPv4"),
        "timeoutSeconds": _dflt(Int(), 20),
        "delaySeconds": _dflt(Int(0), 15),
    }
)
READINESS_CHECK = Obj(
    {
        "name": _dflt(Str(1), "readinessCheck"),
        "protocol": _dflt(Enum(("HTTP", "HTTPS")), "HTTP"),
        "path": _dflt(Str(1, 1024), "/"),
        "portName": _dflt(LEGACY_NAME, "http-api"),
        "intervalSeconds": _dflt(Int(0), 30),
        "timeoutSeconds": _dflt(Int(1), 10),
        "httpStatusCodesForReady": _opt(Arr(Int(100, 999), min_items=1, unique=True)),
        "preserveLastResponse": _dflt(Bool(), False),
    }
)
ARTIFACT = Obj(
    {
        "uri": _req(Str(1, 1024)),
        "extract": _dflt(Bool(), True),
        "executable": _dflt(Bool(), False),
        "cache": _dflt(Bool(), False),
        "destPath": _opt(Str(1, 1024)),
    }
)
UPGRADE_STRATEGY = Obj(
    {"maximumOverCapacity": _req(Num(0.0, 1.0)), "minimumHealthCapacity": _req(Num(0.0, 1.0))}
)
RESIDENCY = Obj(
    {
        "relaunchEscalationTimeoutSeconds": _dflt(Int(0, long=True), 3600),
        "taskLostBehavior": _dflt(Enum(("WAIT_FOREVER", "RELAUNCH_AFTER_TIMEOUT")), "WAIT_FOREVER"),
    }
)

APP = Obj(
    {
        "id": _req(PATH_ID),
        "acceptedResourceRoles": _opt(Arr(Str(), unique=True)),
        "args": _dflt(Arr(Str()), []),
        "backoffFactor": _dflt(Num(1.0), 1.15),
        "backoffSeconds": _dflt(Int(0), 1),
        "cmd": _opt(Str(1)),
        "constraints": _dflt(Arr(Arr(Str(), min_items=2, max_items=3), unique=True), []),
        "container": _opt(CONTAINER),
        "cpus": _dflt(Num(0.001), 1.0),
        "dependencies": _dflt(Arr(PATH_ID, unique=True), []),
        "disk": _dflt(Num(0.0), 0.0),
        "env": _dflt(
            Dict(Custom(_env_value, {"oneOf": [Str().json_schema(), SECRET_REF.json_schema()]})), {}
        ),
        "executor": _dflt(Str(pattern=EXECUTOR_PATTERN), ""),
        "executorResources": _opt(
            Obj(
                {
                    "cpus": _dflt(Num(0.1), 0.1),
                    "mem": _dflt(Num(32.0), 32.0),
                    "disk": _dflt(Num(10.0), 10.0),
                }
            )
        ),
        "fetch": _dflt(Arr(ARTIFACT), []),
        "healthChecks": _dflt(Arr(HEALTH_CHECK, unique=True), []),
        "check": _opt(AnyObj()),
        "instances": _dflt(Int(0), 1),
        "labels": _dflt(LABELS, {}),
        "maxLaunchDelaySeconds": _dflt(Int(0), 300),
        "mem": _dflt(Num(0.0), 128.0),
        "gpus": _dflt(Int(0), 0),
        "ipAddress": _opt(IP_ADDRESS),
        "networks": _dflt(Arr(NETWORK), []),
        "ports": _opt(Arr(ANY_PORT)),
        "portDefinitions": _opt(Arr(PORT_DEFINITION)),
        "readinessChecks": _dflt(Arr(READINESS_CHECK), []),
        "residency": _opt(RESIDENCY),
        "resourceLimits": _opt(Obj({"cpus": _opt(RESOURCE_LIMIT), "mem": _opt(RESOURCE_LIMIT)})),
        "requirePorts": _dflt(Bool(), False),
        "secrets": _dflt(Dict(Obj({"source": _req(Str(1))})), {}),
        "taskKillGracePeriodSeconds": _opt(Int(0)),
        "upgradeStrategy": _opt(UPGRADE_STRATEGY),
        "uris": _opt(Arr(Str(1, 1024))),
        "user": _opt(Str()),
        "version": _opt(DATETIME),
        "versionInfo": _opt(Obj({"lastScalingAt": _req(DATETIME), "lastConfigChangeAt": _req(DATETIME)})),
        "killSelection": _dflt(Enum(("YOUNGEST_FIRST", "OLDEST_FIRST")), "YOUNGEST_FIRST"),
        "unreachableStrategy": _opt(
            Custom(
                _unreachable,
                {"oneOf": [Enum(("disabled",)).json_schema(), UNREACHABLE_ENABLED.json_schema()]},
            )
        ),
        "tty": _opt(Bool()),
        "role": _opt(Str(1)),
    }
)
APP_UPDATE = APP.as_update()


def _group_update(value: Any, path: str, errors: list[Detail]) -> Any:
    return GROUP_UPDATE.read(value, path, errors)


GROUP_UPDATE = Obj(
    {
        "id": _opt(PATH_ID),
        "apps": _opt(Arr(APP, unique=True)),
        "groups": _opt(Arr(Custom(_group_update, {"$ref": GROUP_UPDATE_REF}))),
        "dependencies": _opt(Arr(PATH_ID, unique=True)),
        "scaleBy": _opt(Num(0.0)),
        "version": _opt(DATETIME),
        "enforceRole": _opt(Bool()),
    }
)

__all__ = ["APP", "APP_UPDATE", "GROUP_UPDATE", "MISSING"]
