"""What the REST handlers need from the daemon: the core to read, a clock, a way to run a deciding core call
so that its outputs are carried out (store writes first) before the answer leaves, and the stored versions.

The handlers never touch ZooKeeper or Mesos themselves: a change is ``await orchestrator.decide(fn)`` where
``fn(core, now)`` returns ``(result, outputs)``; reads go straight to ``orchestrator.core`` (its state is the
target state, reference §7.4).  ``marathon_py.service.Service`` implements this; tests may use any object of
this shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from marathon_py.core import MarathonCore
from marathon_py.outputs import Output

T = TypeVar("T")
Decision = Callable[[MarathonCore, float], tuple[T, list[Output]]]


class Versions(Protocol):
    """Stored versions of apps and of the root group (``zkstore.ZkStore`` reads), newest first."""

    def app_versions(self, app_id: str) -> list[str]: ...

    def app(self, app_id: str, version: str | None = None) -> dict[str, Any] | None: ...

    def root_versions(self) -> list[str]: ...

    def root(self, version: str | None = None) -> dict[str, Any] | None: ...


class Orchestrator(Protocol):
    @property
    def core(self) -> MarathonCore: ...

    @property
    def versions(self) -> Versions: ...

    def now(self) -> float:
        """Wall-clock seconds (versions are timestamps)."""
        ...

    async def decide(self, fn: Decision[T]) -> T:
        """Run ``fn`` on the core, alone, and carry out its outputs before returning its result; an
        ``ApiError`` raised by ``fn`` propagates with nothing changed."""
        ...
