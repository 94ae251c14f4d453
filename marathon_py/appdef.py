"""App definitions as Marathon 1.10 normalizes, compares, versions and renders them (reference §4).

An app is a plain dict in the normalized 1.5+ form with every default filled (``env`` ``{}``,
``constraints`` ``[]``, ``networks`` ``[{"mode": "host"}]``, health-check defaults, …). Optional fields
with no default (``cmd``, ``user``, ``container``, ``acceptedResourceRoles``, ``taskKillGracePeriodSeconds``,
…) are absent when unset, never ``None``; ``portDefinitions`` is present exactly in host mode and
``container.portMappings`` exactly in the other modes. ``version``/``versionInfo`` are server-owned and
set by ``with_version``.

``normalize`` runs Marathon's pipeline: read against the RAML types (``InvalidJson``), check the legacy
fields (``ValidationError``), migrate them, check the canonical app, apply the last defaults, check the
model. ``to_json`` renders what ``GET /v2/apps/{id}`` shows: empty ``omitEmpty`` collections and unset
optional fields are left out, since the ``marathon`` client rejects keys it does not know (§9.1).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

from marathon_py import appvalidation, healthchecks, jsonread, networking
from marathon_py.appschema import APP, APP_UPDATE
from marathon_py.appvalidation import Settings, is_resident
from marathon_py.pathid import PathId
from marathon_py.validation import InvalidJson, ValidationError, Violations

DEFAULT_SETTINGS = Settings()
EXTRACTABLE = (".tar", ".tar.gz", ".tar.bz2", ".tar.xz", ".gz", ".tgz", ".tbz2", ".txz", ".zip")
# App fields in the order Marathon's serializer writes them
FIELD_ORDER = (
    "id", "acceptedResourceRoles", "args", "backoffFactor", "backoffSeconds", "cmd", "constraints",
    "container", "cpus", "dependencies", "disk", "env", "executor", "executorResources", "fetch",
    "healthChecks", "check", "instances", "labels", "maxLaunchDelaySeconds", "mem", "gpus", "networks",
    "portDefinitions", "readinessChecks", "residency", "resourceLimits", "requirePorts", "secrets",
    "taskKillGracePeriodSeconds", "upgradeStrategy", "user", "version", "versionInfo", "killSelection",
    "unreachableStrategy", "tty", "role",
)  # fmt: skip
OMIT_EMPTY = frozenset(
    {"acceptedResourceRoles", "args", "constraints", "dependencies", "env", "fetch", "healthChecks"}
    | {"readinessChecks", "secrets"}
)
APP_INFO_EXTRAS = (
    "tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy", "deployments", "readinessCheckResults",
    "tasks", "lastTaskFailure", "tasksStats",
)  # fmt: skip
UPGRADE_FIELDS = (
    "cmd", "args", "user", "env", "cpus", "mem", "disk", "gpus", "executor", "fetch", "portDefinitions",
    "requirePorts", "backoffSeconds", "backoffFactor", "maxLaunchDelaySeconds", "container", "check",
    "taskKillGracePeriodSeconds", "upgradeStrategy", "labels", "networks", "readinessChecks", "secrets",
    "unreachableStrategy", "killSelection", "tty", "role", "resourceLimits",
)  # fmt: skip
SET_FIELDS = ("constraints", "healthChecks", "dependencies", "acceptedResourceRoles")
VERSION_ONLY = "The 'version' field may only be combined with the 'id' field."
# VersionInfo.NoVersion (Timestamp(0)): the restart marker; the next root update restarts such an app.
NO_VERSION = "1970-01-01T00:00:00.000Z"


def normalize(doc: Any, base: str = "/", *, settings: Settings = DEFAULT_SETTINGS) -> dict[str, Any]:
    """An app as posted (1.4 or 1.5+ form, id relative to ``base``) → the normalized dict.

    Raises ``InvalidJson`` or ``ValidationError`` (422) with Marathon's paths and messages, or
    ``NormalizationError`` (also 422: Marathon answers 500) for the few shapes Marathon cannot migrate either.
    """
    raw = jsonread.read(APP, doc)
    v = Violations()
    networking.validate_legacy(raw, v)
    v.raise_if_any()
    app = networking.migrate(raw)
    if raw.get("portDefinitions") or (app.get("container") or {}).get("portMappings"):
        healthchecks.fill_port_index(app["healthChecks"])
    base_id = PathId.parse(base).canonical()
    app["id"] = str(PathId.parse(app["id"]).canonical(base_id))
    app["dependencies"] = jsonread.dedupe(
        [str(PathId.parse(d).canonical(base_id)) for d in app["dependencies"]]
    )
    uris = app.pop("uris", None)
    if uris and not app["fetch"]:
        app["fetch"] = [
            {"uri": u, "extract": _extractable(u), "executable": False, "cache": False} for u in uris
        ]
    for check in app["readinessChecks"]:
        check.setdefault("httpStatusCodesForReady", [200])
    if is_resident(app):
        app.setdefault(
            "residency", {"relaunchEscalationTimeoutSeconds": 3600, "taskLostBehavior": "WAIT_FOREVER"}
        )
    app["role"] = app.get("role") or settings.default_role
    appvalidation.canonical(app, settings)
    networking.finish(app, settings.default_network_name)
    _to_model(app)
    appvalidation.model(app)
    return {key: app[key] for key in FIELD_ORDER if key in app}


def _extractable(uri: str) -> bool:
    path = uri.split("?", 1)[0].split("#", 1)[0]
    return networking.uri_is_valid(uri) and path.endswith(EXTRACTABLE)


def _to_model(app: dict[str, Any]) -> None:
    """The defaults Marathon applies while converting to its ``AppDefinition`` (``AppConversion``)."""
    resident = is_resident(app)
    if "upgradeStrategy" not in app:
        over, min_health = (0.0, 0.5) if resident else (1.0, 1.0)
        app["upgradeStrategy"] = {"maximumOverCapacity": over, "minimumHealthCapacity": min_health}
    if "unreachableStrategy" not in app:
        app["unreachableStrategy"] = (
            "disabled" if resident else {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}
        )
    app["healthChecks"] = jsonread.dedupe([healthchecks.to_model(c) for c in app["healthChecks"]])
    app["constraints"] = jsonread.dedupe([[c[0], c[1].upper(), *c[2:]] for c in app["constraints"]])
    app.pop("residency", None)
    if resident:
        unreachable = app["unreachableStrategy"]
        timeout = 3600 if unreachable == "disabled" else unreachable["inactiveAfterSeconds"]
        app["residency"] = {"relaunchEscalationTimeoutSeconds": timeout, "taskLostBehavior": "WAIT_FOREVER"}
    container = app.get("container")
    docker = (container or {}).get("docker")
    if container is not None and docker is not None:
        if container["type"] == "DOCKER":
            container.pop("linuxInfo", None)
            keep = ("forcePullImage", "image", "parameters", "privileged")
            container["docker"] = {key: docker[key] for key in keep}
        else:
            optional = {key: docker[key] for key in ("credential", "pullConfig") if key in docker}
            container["docker"] = {
                "forcePullImage": docker["forcePullImage"],
                "image": docker["image"],
                "parameters": [],
                "privileged": False,
                **optional,
            }


def _copy(value: Any) -> Any:
    """``copy.deepcopy`` for JSON values (dicts, lists, scalars), at a fraction of its cost: ``GET
    /v2/apps`` renders every app."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return copy.deepcopy(value) if isinstance(value, tuple | set) else value


def _drop_empty(items: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in item.items() if not (k == key and not v)} for item in items]


def to_json(
    app: Mapping[str, Any], embed: Mapping[str, Any] | None = None, *, shared: bool = False
) -> dict[str, Any]:
    """The app as Marathon renders it, plus the AppInfo ``embed`` fields given (counts, tasks, …); a copy
    the caller may change, or with ``shared`` one whose nested values are the app's own (for an answer
    serialized at once: ``GET /v2/apps`` renders every app, so that form is also remembered per app)."""
    out = dict(_rendered(app)) if shared else _render(app, _copy)
    for key in APP_INFO_EXTRAS:
        if embed is not None and embed.get(key) is not None:
            out[key] = embed[key]
    return out


_RENDERED: dict[int, tuple[Mapping[str, Any], dict[str, Any]]] = {}  # id(app) → (app, shared rendering)
_RENDERED_MAX = 50_000


def _rendered(app: Mapping[str, Any]) -> dict[str, Any]:
    """``_render`` without copies, by app identity: apps are values, never changed once in a root."""
    hit = _RENDERED.get(id(app))
    if hit is not None and hit[0] is app:
        return hit[1]
    if len(_RENDERED) >= _RENDERED_MAX:
        _RENDERED.clear()
    out = _render(app, lambda value: value)
    _RENDERED[id(app)] = (app, out)
    return out


def _render(app: Mapping[str, Any], copy_value: Callable[[Any], Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in FIELD_ORDER:
        if key not in app or (key in OMIT_EMPTY and not app[key]):
            continue
        value = app[key]
        if isinstance(value, dict | list):  # scalars are immutable: shared as they are
            value = copy_value(value)
        if key in ("portDefinitions", "networks"):
            value = _drop_empty(value, "labels")
        elif key == "container" and "portMappings" in value:
            value = {**value, "portMappings": _drop_empty(value["portMappings"], "networkNames")}
        out[key] = value
    return out


def _as_set(items: list[Any]) -> frozenset[str]:
    return frozenset(json.dumps(item, sort_keys=True) for item in items)


def is_upgrade(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """True when ``new`` changes what running tasks are (§4.2): anything but instances and versions.

    Labels count (a label change restarts the app); ``executorResources`` does not, as in Marathon.
    """
    if old["id"] != new["id"]:
        return False
    if any(old.get(key) != new.get(key) for key in UPGRADE_FIELDS):
        return True
    return any(_as_set(old.get(key) or []) != _as_set(new.get(key) or []) for key in SET_FIELDS)


def is_only_scale_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return not is_upgrade(old, new) and old["instances"] != new["instances"]


def _version_info(app: Mapping[str, Any]) -> tuple[Any, Any]:
    """Marathon's VersionInfo, which includes the version itself."""
    return app.get("version"), app.get("versionInfo")


def needs_restart(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Config changed, or the version info differs (``/restart`` clears it with ``mark_for_restart``)."""
    return _version_info(old) != _version_info(new) or is_upgrade(old, new)


def mark_for_restart(app: Mapping[str, Any]) -> dict[str, Any]:
    """The app with Marathon's ``NoVersion`` (``markedForRestarting``, ``POST …/restart``): version 0 and no
    versionInfo, as Marathon renders it. Being in the target root, the marker tells ``with_version`` to
    restart; an absent version cannot, since freshly normalized (re-posted) apps have none."""
    out = {key: value for key, value in app.items() if key != "versionInfo"}
    out["version"] = NO_VERSION
    return out


def with_version(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], now_iso: str, *, restart: bool = False
) -> dict[str, Any]:
    """``new`` with ``version``/``versionInfo`` by ``GroupVersioningUtil``'s rule (§4.2, Marathon 1.10.26).

    New app or config change: everything is ``now``; scale-only or restart (``restart``, or ``new``
    marked by ``mark_for_restart``): ``version`` and ``lastScalingAt`` (``withScaleOrRestartChange``;
    only later Marathons move ``lastConfigChangeAt`` on restart); otherwise the old values stay.
    """
    result = dict(new)
    if old is None or "version" not in old or is_upgrade(old, new):
        result["version"] = now_iso
        result["versionInfo"] = {"lastScalingAt": now_iso, "lastConfigChangeAt": now_iso}
        return result
    previous = old.get("versionInfo") or {
        "lastScalingAt": old.get("version"),
        "lastConfigChangeAt": old.get("version"),
    }
    marked = new.get("version") == NO_VERSION and _version_info(old) != _version_info(new)
    if is_only_scale_change(old, new) or restart or marked:
        result["version"] = now_iso
        result["versionInfo"] = {**previous, "lastScalingAt": now_iso}
    else:
        for key in ("version", "versionInfo"):
            result.pop(key, None)
            if key in old:
                result[key] = copy.deepcopy(old[key])
    return result


def rollback_version(patch: Mapping[str, Any]) -> str | None:
    """The version a PUT body asks to roll back to, if any; it may come with ``id`` only (422 otherwise)."""
    version = patch.get("version") if isinstance(patch, Mapping) else None
    if version is None:
        return None
    others = [key for key, value in patch.items() if value is not None and key not in ("id", "version")]
    if others:
        raise ValidationError.of("/", VERSION_ONLY)
    return str(version)


def partial_update(
    old: Mapping[str, Any], patch: Any, *, partial: bool = True, settings: Settings = DEFAULT_SETTINGS
) -> dict[str, Any]:
    """PUT/PATCH ``/v2/apps/{id}`` applied to ``old`` (§2.1); the body's ``id`` is ignored.

    ``partial`` (``partialUpdate=true``, the default): fields absent from ``patch`` keep their values, a
    given field replaces the old one whole (``env``, ``labels``, …). ``partial=False``: ``patch`` is the
    complete new definition with defaults. Either way ``version``/``versionInfo`` stay the old ones;
    call ``rollback_version`` first to handle ``{"version": …}`` bodies.
    """
    if rollback_version(patch) is not None:
        raise ValueError("a rollback body is not an update; see rollback_version")
    if not isinstance(patch, dict):
        raise InvalidJson([("", "error.expected.jsobject")])
    if partial:
        update = networking.migrate_update(jsonread.read(APP_UPDATE, patch))
        uris = update.pop("uris", None)
        if uris and not update.get("fetch"):
            update["fetch"] = [
                {"uri": u, "extract": _extractable(u), "executable": False, "cache": False} for u in uris
            ]
        merged = {
            **to_json(old),
            **{k: v for k, v in update.items() if k not in ("id", "version", "versionInfo")},
        }
    else:
        merged = {k: v for k, v in patch.items() if k not in ("version", "versionInfo")}
    merged["id"] = old["id"]
    result = normalize(merged, settings=settings)  # relative dependencies resolve against "/", as in Marathon
    for key in ("version", "versionInfo"):
        result.pop(key, None)
        if key in old:
            result[key] = copy.deepcopy(old[key])
    return result


def service_ports(app: Mapping[str, Any]) -> list[int]:
    """``container.portMappings[].servicePort`` when there are mappings, else ``portDefinitions[].port``."""
    mappings = (app.get("container") or {}).get("portMappings")
    if mappings:
        return [m["servicePort"] for m in mappings]
    return [d["port"] for d in app.get("portDefinitions") or []]
