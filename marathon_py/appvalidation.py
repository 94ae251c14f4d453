"""Semantic app validation with Marathon's paths and messages (``AppValidation``, ``AppDefinition``).

Two stages, as in Marathon, each raising its own ``ValidationError`` (422 "Object is not valid"):
``canonical`` runs on the migrated app before the last defaults are applied (the RAML-level rules),
``model`` on the finished app (the rules Marathon checks on its ``AppDefinition``). Everything a RAML
facet already rejects while reading (negative cpus, ``minimumHealthCapacity`` > 1, …) never gets here.
One rule is ours: at most ``MAX_INSTANCES`` instances per app.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from marathon_py import healthchecks, networking
from marathon_py.pathid import EMPTY_PATH, PathId
from marathon_py.validation import Violations, at_least, at_most, between, equal_to, less_than

CMD_ARGS_OR_CONTAINER = "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."
SINGLE_INSTANCE_LABEL = "MARATHON_SINGLE_INSTANCE_APP"
OPERATORS = ("UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS")
OPERATOR_INVALID = (
    "operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS"
)
EXECUTOR_PATTERN = r"^(//cmd)|(/?[^/]+(/[^/]+)*)|$"
_IS_VALUE = re.compile(r"^[a-zA-Z0-9_/.-]*$")
_MIGRATION = ("DCOS_MIGRATION_API_VERSION", "DCOS_PACKAGE_FRAMEWORK_NAME", "DCOS_MIGRATION_API_PATH")
# Beyond Marathon (whose only bound is Int32): every instance is tracked and stored one by one, so 2**31 - 1
# of them would stall the daemon (found by the API fuzz); 10,000 is where Marathon "hits the wall" (§10).
MAX_INSTANCES = 10_000


@dataclass(frozen=True)
class Settings:
    """What Marathon takes from its flags and the enclosing top-level group when it checks an app."""

    default_role: str = "*"  # --mesos_role, or the top-level group's role when it enforces it
    valid_roles: frozenset[str] = frozenset()  # empty: only the default role
    default_network_name: str | None = None  # --default_network_name
    enabled_features: frozenset[str] = field(default_factory=frozenset)  # --enable_features

    def feature(self, name: str) -> str | None:
        """Marathon's message when ``name`` is not enabled, else None."""
        if name in self.enabled_features:
            return None
        return f"Feature {name} is not enabled. Enable with --enable_features {name})"


def is_resident(app: dict[str, Any]) -> bool:
    return any("persistent" in vol for vol in (app.get("container") or {}).get("volumes", []))


def constraint_error(constraint: list[str]) -> str | None:
    """``complyWithAppConstraintRules``: why a ``[field, OPERATOR, value?]`` triple is invalid."""
    field_name, op = constraint[0], constraint[1].upper()
    value = constraint[2] if len(constraint) > 2 else None
    if not field_name:
        return "illegal constraint specification"
    if op not in OPERATORS:
        return OPERATOR_INVALID
    if op == "UNIQUE" and value is not None:
        return "UNIQUE does not accept a value"
    if op == "GROUP_BY" and value is not None and not _is_int(value):
        return "GROUP BY must define an integer value or else no value at all"
    if op == "MAX_PER" and (value is None or not _is_int(value)):
        return "MAX_PER requires an integer value"
    if op in ("LIKE", "UNLIKE"):
        if value is None:
            return "LIKE and UNLIKE require a non-empty, regular expression value"
        try:
            re.compile(value)
        except re.error:
            return "is not a valid regular expression"
    if op == "IS" and not _IS_VALUE.match(value or ""):
        return (
            "IS only supports Mesos text and float values "
            "(see http://mesos.apache.org/documentation/latest/attributes-resources/)"
        )
    return None


def _is_int(text: str) -> bool:
    return re.fullmatch(r"[+-]?\d+", text) is not None and -(2**31) <= int(text) < 2**31


def _has_container_image(app: dict[str, Any], *, mesos_without_image: bool) -> bool:
    container = app.get("container")
    if container is None:
        return False
    return "docker" in container or (mesos_without_image and container["type"] == "MESOS")


def _cmd_args_or_container(app: dict[str, Any], v: Violations, *, mesos_without_image: bool) -> None:
    cmd, args = "cmd" in app, bool(app["args"])
    container = _has_container_image(app, mesos_without_image=mesos_without_image)
    v.check((cmd != args) or (not (cmd and args) and container), "/", CMD_ARGS_OR_CONTAINER)


def _id_rules(app: dict[str, Any], v: Violations) -> None:
    app_id = PathId.parse(app["id"])
    for message in app_id.errors():
        v.add("/id", message)
    v.check(bool(app_id.segments), "/id", EMPTY_PATH)
    v.check(not app_id.is_root, "/", "must not be root")
    for i, dep in enumerate(app["dependencies"]):
        for message in PathId.parse(dep).errors():
            v.add(f"/dependencies({i})", message)


def _container_rules(app: dict[str, Any], s: Settings, v: Violations) -> None:
    container = app.get("container")
    if container is None:
        return
    docker = container.get("docker")
    if container["type"] == "DOCKER":
        if docker is None:
            v.add("/container/docker", "not defined")
        elif "pullConfig" in docker:
            v.add("/container/docker/pullConfig", "pullConfig is not supported with Docker containerizer")
        v.check(
            sum(1 for n in app["networks"] if n["mode"] == "container") <= 1,
            "/",
            "may only specify a single container network when using the Docker container engine",
        )
    elif docker is not None and "pullConfig" in docker:
        missing = s.feature("secrets")
        if missing:
            v.add("/container/docker/pullConfig", "must be empty")
            v.add("/container/docker/pullConfig", missing)
        elif docker["pullConfig"]["secret"] not in app["secrets"]:
            v.add("/container/docker/pullConfig", "pullConfig.secret must refer to an existing secret")
    for i, volume in enumerate(container["volumes"]):
        for key in ("containerPath", "hostPath"):
            if key == "containerPath" or key in volume:
                v.check(
                    isinstance(volume.get(key), str) and bool(volume[key]),
                    f"/container/volumes({i})/{key}",
                    "must not be empty",
                )


def _role_rules(app: dict[str, Any], s: Settings, v: Violations) -> None:
    valid = s.valid_roles or frozenset({s.default_role})
    role = app["role"]
    v.check(role in valid, "/role", f"got {role}, expected one of: [{', '.join(sorted(valid))}]")
    roles = app.get("acceptedResourceRoles")
    if roles is None:
        return
    v.check(bool(roles), "/acceptedResourceRoles", "must not be empty")
    for i, name in enumerate(roles):
        for message in _role_name_errors(name):
            v.add(f"/acceptedResourceRoles({i})", message)
    if is_resident(app):
        v.check(
            roles == ["*"],
            "/acceptedResourceRoles",
            'A resident app must have `acceptedResourceRoles = ["*"]`.',
        )
    allowed = sorted({"*", role})
    v.check(
        set(roles) <= set(allowed),
        "/acceptedResourceRoles",
        f"acceptedResourceRoles can only contain {' and '.join(allowed)}",
    )


def _role_name_errors(name: str) -> list[str]:
    if name in ("", ".", ".."):
        return [f'A role name must not be "{name}".']
    if name.startswith("-"):
        return ["A role name must not start with a '-'."]
    bad = {"\t": "horizontal tab (\\x09)", "\n": "line feed (\\x0a)", "\x0b": "vertical tab (\\x0b)"}
    bad |= {"\x0c": "form feed (\\x0c)", "\r": "carriage return (\\x0d)", " ": "space (\\x20)"}
    bad |= {"/": "slash (\\x2f)", "\x7f": "backspace (\\x7f)"}
    return [f"A role name must not include a {what} character." for ch, what in bad.items() if ch in name]


def _misc_rules(app: dict[str, Any], s: Settings, v: Violations) -> None:
    v.check(len(app.get("cmd", "xx")) > 1, "/", "must not be an empty string")
    for i, artifact in enumerate(app["fetch"]):
        v.check(networking.uri_is_valid(artifact["uri"]), f"/fetch({i})/uri", "URI has invalid syntax.")
    limits = app.get("resourceLimits") or {}
    for key in ("cpus", "mem"):
        limit = limits.get(key)
        if isinstance(limit, str) and limit != "unlimited":
            v.add(
                f"/resourceLimits/{key}",
                f"'{limit}' is an invalid resource limit. It must be 'unlimited' or a number",
            )
        elif isinstance(limit, float) and limit < app[key]:
            v.add(
                f"/resourceLimits/{key}",
                f"resource limit must be greater than or equal to requested resource ({app[key]!r})",
            )
    secrets_missing = s.feature("secrets")
    if app["secrets"] and secrets_missing:
        v.add("/secrets", secrets_missing)
    for i, name in enumerate(app["env"]):
        v.check(bool(name), f"/env/keys({i})", "must not be empty")
    if secrets_missing and any(isinstance(value, dict) for value in app["env"].values()):
        v.add(
            "/env", "use of secret-references in the environment requires the secrets feature to be enabled"
        )
    if app["gpus"] > 0:
        container_type = (app.get("container") or {}).get("type")
        v.check(container_type != "DOCKER", "/", "GPU resources only work with the Mesos containerizer")
        gpu_missing = s.feature("gpu_resources")
        if gpu_missing:
            v.add("/", gpu_missing)
    labels = app["labels"]
    if labels.get(_MIGRATION[0]):
        v.check(
            labels[_MIGRATION[0]] == "v1"
            and bool(labels.get(_MIGRATION[1]))
            and bool(labels.get(_MIGRATION[2])),
            "/",
            "DCOS_PACKAGE_FRAMEWORK_NAME and DCOS_MIGRATION_API_PATH must be defined "
            "when using DCOS_MIGRATION_API_VERSION",
        )
    single = labels.get(SINGLE_INSTANCE_LABEL) == "true"
    v.check(not single or app["instances"] <= 1, "/", "Single instance app may only have one instance")
    strategy = app.get("upgradeStrategy")
    if strategy is not None and single:
        for key in ("minimumHealthCapacity", "maximumOverCapacity"):
            v.check(strategy[key] == 0.0, f"/upgradeStrategy/{key}", equal_to(strategy[key], 0.0))
    if strategy is not None and "residency" in app:
        over = strategy["maximumOverCapacity"]
        v.check(over == 0.0, "/upgradeStrategy/maximumOverCapacity", equal_to(over, 0.0))
    unreachable = app.get("unreachableStrategy")
    if "residency" in app and unreachable is not None and unreachable != "disabled":
        v.add("/", "unreachableStrategy must be disabled for resident tasks")
    for i, constraint in enumerate(app["constraints"]):
        message = constraint_error(constraint)
        if message:
            v.add(f"/constraints({i})", message)


def _readiness_rules(app: dict[str, Any], v: Violations) -> None:
    checks = app["readinessChecks"]
    v.check(len(checks) <= 1, "/readinessChecks", at_most(len(checks), 1))
    mappings = (app.get("container") or {}).get("portMappings")
    ports = mappings if mappings is not None else app.get("portDefinitions") or []
    names = {port["name"] for port in ports if "name" in port}
    for i, check in enumerate(checks):
        name = check["portName"]
        v.check(
            name in names,
            f"/readinessChecks({i})/portName",
            f"No port definition reference for portName {name}",
        )
        timeout, interval = check["timeoutSeconds"], check["intervalSeconds"]
        v.check(timeout < interval, f"/readinessChecks({i})/timeoutSeconds", less_than(timeout, interval))


def canonical(app: dict[str, Any], s: Settings) -> None:
    """``validateCanonicalAppAPI`` on the migrated app; raises ``ValidationError``."""
    v = Violations()
    _container_rules(app, s, v)
    networking.validate_ports(app, v)
    _cmd_args_or_container(app, v, mesos_without_image=True)
    container_type = (app.get("container") or {}).get("type")
    healthchecks.validate(app["healthChecks"], networking.port_count(app), container_type, v)
    _misc_rules(app, s, v)
    _readiness_rules(app, v)
    networking.validate_networks(app["networks"], s.default_network_name, v)
    _role_rules(app, s, v)
    _id_rules(app, v)
    v.raise_if_any()


def model(app: dict[str, Any]) -> None:
    """``AppDefinition.validAppDefinition`` on the finished app; raises ``ValidationError``."""
    v = Violations()
    for key in ("minimumHealthCapacity", "maximumOverCapacity"):
        value = app["upgradeStrategy"][key]
        v.check(0.0 <= value <= 1.0, f"/upgradeStrategy/{key}", between(value, 0.0, 1.0))
    v.check(re.fullmatch(EXECUTOR_PATTERN, app["executor"]) is not None, "/executor",
            f"must fully match regular expression '{EXECUTOR_PATTERN}'")  # fmt: skip
    _cmd_args_or_container(app, v, mesos_without_image=False)
    has_check = "check" in app and (app.get("container") or {}).get("type") == "DOCKER"
    v.check(not has_check, "/", "AppDefinition must not use 'checks' if using docker")
    for key in ("instances", "mem", "cpus", "disk", "gpus"):
        bound = 0 if key in ("instances", "gpus") else 0.0
        v.check(app[key] >= bound, f"/{key}", at_least(app[key], bound))
    v.check(app["instances"] <= MAX_INSTANCES, "/instances", at_most(app["instances"], MAX_INSTANCES))
    unreachable = app["unreachableStrategy"]
    if unreachable != "disabled":
        inactive, expunge = unreachable["inactiveAfterSeconds"], unreachable["expungeAfterSeconds"]
        v.check(
            inactive <= expunge,
            "/unreachableStrategy/inactiveAfterSeconds",
            f"inactiveAfterSeconds ({inactive}) must be less or equal to expungeAfterSeconds, "
            f"which is {expunge}",
        )
    if app["labels"].get(SINGLE_INSTANCE_LABEL) == "true":
        for key in ("minimumHealthCapacity", "maximumOverCapacity"):
            value = app["upgradeStrategy"][key]
            v.check(value == 0.0, f"/upgradeStrategy/{key}", equal_to(value, 0.0))
    if is_resident(app):
        v.check(
            app["unreachableStrategy"] == "disabled",
            "/",
            "unreachableStrategy must be disabled for resident tasks",
        )
    v.raise_if_any()
