"""Launch backoff (reference §7.2, RateLimiter): growth, cap, advance, expiry, resets, /v2/queue."""

from __future__ import annotations

import pytest

from marathon_py.backoff import BackoffStrategy, LaunchDelay, config_version


def app(**over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "id": "/web",
        "instances": 1,
        "backoffSeconds": 1,
        "backoffFactor": 1.15,
        "maxLaunchDelaySeconds": 300,
        "version": "2021-01-01T00:00:00.000Z",
        "versionInfo": {"lastConfigChangeAt": "2021-01-01T00:00:00.000Z"},
    }
    doc.update(over)
    return doc


def test_no_delay_until_a_failure() -> None:
    d = LaunchDelay.of_app(app())
    assert d.ready_at() is None and d.is_ready(0.0) and not d.active
    assert d.queue_delay(100.0) == {"timeLeftSeconds": 0, "overdue": True}


def test_growth_by_factor_up_to_the_cap() -> None:
    d = LaunchDelay(BackoffStrategy(backoff_seconds=10, factor=2.0, max_launch_delay_seconds=60))
    delays = []
    for i in range(6):
        d.record_failure(1000.0 + i)
        delays.append(d.delay_seconds)
    assert delays == [10, 20, 40, 60, 60, 60]
    assert d.ready_at() == 1005.0 + 60


def test_first_delay_is_capped_too_and_default_factor_truncates_to_nanoseconds() -> None:
    d = LaunchDelay(BackoffStrategy(backoff_seconds=600, factor=2, max_launch_delay_seconds=300))
    assert d.record_failure(0.0) == 300.0
    d = LaunchDelay.of_app(app())
    d.record_failure(0.0)
    d.record_failure(0.0)
    d.record_failure(0.0)
    assert d.delay_seconds == pytest.approx(1.3225)
    assert d._delay_ns == int(int(1_000_000_000 * 1.15) * 1.15)


def test_ready_at_and_is_ready() -> None:
    d = LaunchDelay(BackoffStrategy(5, 2, 100))
    assert d.record_failure(50.0) == 55.0
    assert not d.is_ready(54.9) and d.is_ready(55.0)


def test_progress_moves_the_reference_so_launches_stay_spaced() -> None:
    d = LaunchDelay(BackoffStrategy(5, 2, 100))
    d.record_progress(10.0)  # no delay yet: nothing happens
    assert not d.active
    d.record_failure(0.0)
    d.record_progress(30.0)  # an instance got launched at 30: the next one waits until 35
    assert d.ready_at() == 35.0 and d.delay_seconds == 5


def test_expires_after_max_launch_delay_without_failures() -> None:
    d = LaunchDelay(BackoffStrategy(5, 2, 100))
    d.record_failure(0.0)
    assert not d.expire(100.0)  # needs now > reference + max
    assert d.expire(100.001)
    assert not d.active
    d.record_failure(200.0)
    assert d.delay_seconds == 5  # starts over


def test_conditions() -> None:
    d = LaunchDelay(BackoffStrategy(5, 2, 100))
    d.on_condition("Killed", 0.0)  # TASK_KILLED does not count
    assert not d.active
    for n, condition in enumerate(("Failed", "Finished", "Error", "Gone", "Dropped")):
        d.on_condition(condition, 0.0)
        assert d.delay_seconds == min(5 * 2**n, 100)
    d.on_condition("Running", 7.0)
    assert d.ready_at() == 7.0 + 80
    d.on_condition("Killed", 8.0, agent_draining=True)
    assert not d.active


def test_config_change_resets_but_scaling_does_not() -> None:
    d = LaunchDelay.of_app(app())
    d.record_failure(0.0)
    scaled = app(instances=5, version="2021-02-01T00:00:00.000Z")
    assert config_version(scaled) == "2021-01-01T00:00:00.000Z"
    assert not d.on_app(scaled) and d.active
    changed = app(backoffSeconds=3, versionInfo={"lastConfigChangeAt": "2021-03-01T00:00:00.000Z"})
    assert d.on_app(changed) and not d.active
    d.record_failure(0.0)
    assert d.delay_seconds == 3


def test_reset() -> None:
    d = LaunchDelay(BackoffStrategy(5, 2, 100))
    d.record_failure(0.0)
    d.reset()  # DELETE /v2/queue/{id}/delay
    assert d.ready_at() is None and d.is_ready(0.0)


@pytest.mark.parametrize(
    ("now", "left", "overdue"),
    [(0.0, 10, False), (0.5, 9, False), (9.5, 0, False), (10.0, 0, False), (10.9, 0, False), (11.0, 0, True)],
)
def test_queue_delay_truncates_like_finite_duration(now: float, left: int, overdue: bool) -> None:
    d = LaunchDelay(BackoffStrategy(10, 2, 100))
    d.record_failure(0.0)
    assert d.queue_delay(now) == {"timeLeftSeconds": left, "overdue": overdue}
