"""Offers made while a framework's registry entry is being written reach the framework, after SUBSCRIBED.

A master-py in this process with a registry that takes 0.3 s per write (ZooKeeper under load) and an
allocation run every 10 ms: the first offers are decided during the framework's registry write.  Before
the fix they were sent to a stream not registered yet and lost, leaving the agent offered to nobody.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from master_py.app import Master, MasterConfig
from master_py.model import Persist
from paas_common.recordio import Decoder
from paas_common.resources import Resources
from tests.support.clients import WAIT
from tests.support.servers import free_port


class SlowRegistry:
    """The registry's interface (``apply``) with a write that takes its time; entries kept in memory."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], Any] = {}

    def apply(self, ops: list[Persist]) -> None:
        time.sleep(0.3)
        for op in ops:
            self.entries[(op.kind, op.id)] = op.doc


async def scenario() -> list[str]:
    master = Master(MasterConfig(port=free_port(), allocation_interval=0.01))
    registry = SlowRegistry()
    master.registry = registry  # type: ignore[assignment]
    await master.start()
    base = f"http://127.0.0.1:{master.cfg.port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as http:
            res = Resources.parse("cpus:2;mem:1024").to_json()
            register = {"type": "REGISTER", "register": {"hostname": "h", "resources": res}}
            async with http.post(f"{base}/agent/api/v1", json=register) as r:
                agent_id = (await r.json())["agent_id"]
            agent_stream = await http.post(
                f"{base}/agent/api/v1", json={"type": "SUBSCRIBE", "agent_id": agent_id}
            )
            subscribe = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "f"}}}
            seen: list[str] = []
            async with http.post(f"{base}/api/v1/scheduler", json=subscribe) as stream:
                assert stream.status == 200
                decoder = Decoder()
                async for chunk in stream.content.iter_any():
                    seen += [json.loads(record)["type"] for record in decoder.feed(chunk)]
                    if "OFFERS" in seen:
                        break
            agent_stream.close()
            assert any(kind == "frameworks" for kind, _ in registry.entries)
            return seen
    finally:
        await master.stop()


def test_offers_decided_during_the_registry_write_follow_subscribed() -> None:
    seen = asyncio.run(asyncio.wait_for(scenario(), WAIT))
    assert seen[0] == "SUBSCRIBED" and "OFFERS" in seen
