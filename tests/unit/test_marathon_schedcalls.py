"""marathon_py.schedcalls (Marathon's FrameworkInfo, capabilities) and the pure helpers of marathon_py.mesos.

The generic calls and events are paas_common.schedapi's (tests/unit/test_schedapi.py); here only what is
Marathon's: the FrameworkInfo of Marathon 1.10.26, accepted by master_py's SUBSCRIBE validation.
"""

from __future__ import annotations

import json
import random

from marathon_py import schedcalls as sc
from marathon_py.mesos import ClientOptions, backoff
from master_py.calls import parse_call
from paas_common.schedapi import subscribe


def test_framework_info_is_marathon_1_10s() -> None:
    info = sc.framework_info(user="marathon", hostname="m1.example", webui_url="http://m1.example:8080")
    assert info == {
        "user": "marathon",
        "name": "marathon",
        "hostname": "m1.example",
        "roles": ["*"],
        "failover_timeout": 604800.0,
        "checkpoint": True,
        "capabilities": [{"type": "PARTITION_AWARE"}, {"type": "REGION_AWARE"}, {"type": "MULTI_ROLE"}],
        "webui_url": "http://m1.example:8080",
    }
    assert "id" not in info and "role" not in info  # MULTI_ROLE: roles only


def test_framework_info_subscribes_on_master_py() -> None:
    info = sc.framework_info(user="u", hostname="h", roles=["web", "*"], principal="p")
    body = json.dumps(subscribe(info)).encode()
    parsed = parse_call("application/json", "application/json", None, body)
    assert parsed.raw["subscribe"]["framework_info"] == info


def test_feature_flags_add_capabilities() -> None:
    assert sc.capabilities() == ("PARTITION_AWARE", "REGION_AWARE", "MULTI_ROLE")
    caps = sc.capabilities(["task_killing", "gpu_resources", "vips"])
    assert caps[3:] == ("TASK_KILLING_STATE", "GPU_RESOURCES")


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    opts = ClientOptions(backoff_min=0.5, backoff_max=15.0)
    rng = random.Random(7)
    delays = [backoff(n, opts, rng) for n in range(12)]
    for n, d in enumerate(delays):
        cap = min(15.0, 0.5 * 2**n)
        assert cap / 2 <= d <= cap
    assert backoff(10_000, opts, rng) <= 15.0
