"""Offers follow changes at once, not only every ``--allocation_interval`` (Mesos allocates when a
framework subscribes or revives and when an agent is added, besides its batch runs)."""

from __future__ import annotations

from pathlib import Path

from tests.support.pymesos_fw import Framework, command_task, driving, running_agent, running_master

HOUR = ("--allocation_interval", "3600secs")  # no batch run during the test


def test_subscribe_and_revive_get_offers_without_waiting_for_the_batch(tmp_path: Path) -> None:
    with (
        running_master(tmp_path / "m", flags=HOUR) as master,
        running_agent(tmp_path / "a", master),
    ):
        sched = Framework([command_task("first", "true")])
        with driving(sched, f"{master.ip}:{master.port}"):
            sched.wait_for("first", "TASK_FINISHED")  # the offer came right after SUBSCRIBE
            sched.add(command_task("second", "true"))  # REVIVE: offered again at once
            sched.wait_for("second", "TASK_FINISHED")
