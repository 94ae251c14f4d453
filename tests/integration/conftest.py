"""Fixtures shared by the agent integration tests: one master-py and one agent-py per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.agents import AgentProc, agent_of
from tests.support.masters import MasterProc
from tests.support.pymesos_fw import running_master


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProc]:
    with running_master(tmp_path_factory.mktemp("master")) as m:
        yield m


@pytest.fixture(scope="module")
def agent(master: MasterProc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProc]:
    with agent_of(tmp_path_factory.mktemp("agent"), master) as a:
        yield a
