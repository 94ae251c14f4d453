"""What of the v1 scheduler API is Marathon's own: its FrameworkInfo and the capabilities it declares.

The FrameworkInfo is Marathon 1.10.26's (``MarathonSchedulerDriver.newFrameworkInfo``), without ``id``:
the connection (marathon_py.mesos) adds the stored one on each SUBSCRIBE.  The calls and events common
to every framework are paas_common.schedapi's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FAILOVER_TIMEOUT = (
    604800.0  # --failover_timeout: 1 week, so tasks outlive a scheduler failover (marathon.md §8)
)
# Declared unconditionally by Marathon 1.10.26 (newFrameworkInfo): TASK_UNREACHABLE/GONE instead of
# TASK_LOST, offers from other regions, ``roles`` instead of the deprecated ``role``.
CAPABILITIES = ("PARTITION_AWARE", "REGION_AWARE", "MULTI_ROLE")
# Declared only when the --enable_features flag names them.
FEATURE_CAPABILITIES = {"task_killing": "TASK_KILLING_STATE", "gpu_resources": "GPU_RESOURCES"}


def capabilities(features: Iterable[str] = ()) -> tuple[str, ...]:
    """Marathon's capabilities for its enabled features (``--enable_features``)."""
    wanted = set(features)
    return CAPABILITIES + tuple(cap for feat, cap in FEATURE_CAPABILITIES.items() if feat in wanted)


def framework_info(
    *,
    user: str,
    hostname: str,
    name: str = "marathon",
    roles: Iterable[str] = ("*",),
    failover_timeout: float = FAILOVER_TIMEOUT,
    checkpoint: bool = True,
    webui_url: str | None = None,
    principal: str | None = None,
    caps: Iterable[str] = CAPABILITIES,
) -> dict[str, Any]:
    """FrameworkInfo without ``id`` (the connection adds the stored one on each SUBSCRIBE)."""
    info: dict[str, Any] = {
        "user": user,
        "name": name,
        "hostname": hostname,
        "roles": list(roles),
        "failover_timeout": float(failover_timeout),
        "checkpoint": checkpoint,
        "capabilities": [{"type": c} for c in caps],
    }
    if webui_url is not None:
        info["webui_url"] = webui_url
    if principal is not None:
        info["principal"] = principal
    return info
