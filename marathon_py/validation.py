"""Marathon's error shapes (reference §1.5) and the collectors the validators fill.

Marathon answers bad input in three stages, and so do we:

* the body is not JSON at all → 400 ``{"message": "Invalid JSON", "details": "<parser message>"}``
  (``parse_json``; an empty body is Jackson's "Please specify data in JSON format");
* the JSON does not fit the RAML types (wrong type, ``minimum``/``pattern`` facets, unknown enum literal) →
  422 ``{"message": "Invalid JSON", "details": [{"path": "/cpus", "errors": ["error.min"]}]}``
  (``InvalidJson``; Play's message keys, see ``jsonread``);
* the typed object breaks a semantic rule → 422 ``{"message": "Object is not valid", "details": [...]}``
  (``ValidationError``; wix-accord's messages such as ``got -3.0, expected 0.0 or more``).

Details are grouped per path in first-seen order with distinct messages, as Marathon's writers do.

The other refusals the pure modules raise live here too, so that the core and the HTTP layer share one
definition (``api/MarathonExceptionMapper.scala``): ``NotFound`` (404, ``RestResource``'s messages),
``Conflict``/``AppLocked`` (409), ``TooManyDeployments`` (403) and ``IllegalArgument`` (422, bare message).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

Detail = tuple[str, str]  # (path, message)


class ApiError(Exception):
    """An error with the HTTP status and JSON body Marathon answers it with."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"message": self.message}


class BadRequest(ApiError):
    """400: the request cannot be read (JSON syntax, empty body, bad query parameter)."""

    status = 400

    def __init__(self, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.details = details

    def body(self) -> dict[str, Any]:
        return (
            {"message": self.message}
            if self.details is None
            else {"message": self.message, "details": self.details}
        )


class _DetailedError(ApiError):
    status = 422

    def __init__(self, message: str, details: Iterable[Detail]) -> None:
        self.details: list[Detail] = list(details)
        super().__init__(f"{message}: " + "; ".join(f"{p}: {m}" for p, m in self.details))
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "details": group_details(self.details)}


class InvalidJson(_DetailedError):
    """422 "Invalid JSON": the JSON does not fit the RAML types (Play's ``JsResultException``).

    Marathon answers 400 only when a Play error carries no message, which its readers never produce.
    """

    def __init__(self, details: Iterable[Detail]) -> None:
        super().__init__("Invalid JSON", details)


class ValidationError(_DetailedError):
    """422 "Object is not valid" (``ValidationFailedException``)."""

    def __init__(self, details: Iterable[Detail]) -> None:
        super().__init__("Object is not valid", details)

    @classmethod
    def of(cls, path: str, message: str) -> ValidationError:
        return cls([(path, message)])


class NormalizationError(ApiError):
    """Marathon's ``NormalizationException``: a legacy shape that cannot be migrated (both ``portMappings``
    and ``docker.portMappings``, docker network ``NONE`` …). Marathon's mapper answers it with 500; it is the
    client's input that is wrong, so we answer 422 with the message (a 5xx the API fuzz found)."""

    status = 422


class Conflict(ApiError):
    """409 with Marathon's message (existing ids, ``ConflictingChangeException``)."""

    status = 409


LOCKED_MESSAGE = (
    "App is locked by one or more deployments. Override with the option '?force=true'. "
    "View details at '/v2/deployments/<DEPLOYMENT_ID>'."
)


class AppLocked(Conflict):
    """409 ``AppLockedException``: the change touches run specs the listed deployments lock (§1.3
    ``deployable``, §7.4); ``<DEPLOYMENT_ID>`` in the message is literal, as in Marathon."""

    def __init__(self, deployment_ids: Iterable[str]) -> None:
        super().__init__(LOCKED_MESSAGE)
        self.deployment_ids = list(deployment_ids)

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "deployments": [{"id": d} for d in self.deployment_ids]}


class NotFound(ApiError):
    """404 with the messages of ``RestResource`` / ``Exception.scala`` (§1.5)."""

    status = 404

    @staticmethod
    def _versioned(text: str, version: str | None) -> str:
        return text if version is None else f"{text} in version {version}"

    @classmethod
    def app(cls, app_id: str, version: str | None = None) -> NotFound:
        return cls(cls._versioned(f"App '{app_id}' does not exist", version))

    @classmethod
    def pod(cls, pod_id: str, version: str | None = None) -> NotFound:
        return cls(cls._versioned(f"Pod '{pod_id}' does not exist", version))

    @classmethod
    def group(cls, group_id: str, version: str | None = None) -> NotFound:
        return cls(cls._versioned(f"Group '{group_id}' does not exist", version))

    @classmethod
    def task(cls, task_id: str) -> NotFound:
        return cls(f"Task '{task_id}' does not exist")

    @classmethod
    def deployment(cls, deployment_id: str) -> NotFound:
        return cls(f"DeploymentPlan {deployment_id} does not exist")

    @classmethod
    def queued(cls, run_spec_id: str) -> NotFound:
        return cls(f"Application {run_spec_id} not found in tasks queue.")


class TooManyDeployments(ApiError):
    """403 ``TooManyRunningDeploymentsException`` (its message, missing space included)."""

    status = 403

    def __init__(self, max_running: int) -> None:
        super().__init__(
            f"Max number ({max_running}) of running deployments is achieved. Wait for existing deployments "
            "to complete or cancel oneusing force=true parameter. You can increase max deployment number by "
            "using --max_running_deployments parameter but be advised that this can have negative effects "
            "on the performance."
        )


class IllegalArgument(ApiError):
    """422 with a bare message: Marathon's mapping of ``IllegalArgumentException`` (e.g. an unparsable label
    selector, a group version that does not exist)."""

    status = 422


def group_details(details: Iterable[Detail]) -> list[dict[str, Any]]:
    """``[(path, msg)…]`` → ``[{"path", "errors": [distinct msgs]}]`` in first-seen path order."""
    grouped: dict[str, list[str]] = {}
    for path, message in details:
        messages = grouped.setdefault(path, [])
        if message not in messages:
            messages.append(message)
    return [{"path": path, "errors": errors} for path, errors in grouped.items()]


class Violations:
    """Collects (path, message) pairs; ``raise_if_any`` raises the stage's error type."""

    def __init__(self) -> None:
        self.items: list[Detail] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path or "/", message))

    def check(self, ok: bool, path: str, message: str) -> None:
        if not ok:
            self.add(path, message)

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationError(self.items)


# wix-accord's rendering of numbers and comparisons (Scala's Double/Int toString)


def scala_num(value: float | int) -> str:
    """``-3.0`` / ``1.2`` / ``-3`` as Scala prints a Double or an Int."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if math.isfinite(value) and value == int(value) and abs(value) < 1e7:
        return f"{value:.1f}"
    return repr(value)


def at_least(value: float | int, bound: float | int) -> str:
    return f"got {scala_num(value)}, expected {scala_num(bound)} or more"


def at_most(value: float | int, bound: float | int) -> str:
    return f"got {scala_num(value)}, expected {scala_num(bound)} or less"


def less_than(value: float | int, bound: float | int) -> str:
    return f"got {scala_num(value)}, expected less than {scala_num(bound)}"


def between(value: float, low: float, high: float) -> str:
    return f"got {scala_num(value)}, expected between {scala_num(low)} and {scala_num(high)}"


def equal_to(value: float | int, expected: float | int) -> str:
    return f"got {scala_num(value)}, expected {scala_num(expected)}"


# the request body


def _reject_constant(name: str) -> Any:
    raise ValueError(
        f"Non-standard token '{name}': enable JsonParser.Feature.ALLOW_NON_NUMERIC_NUMBERS to allow"
    )


def parse_json(data: bytes | str) -> Any:
    """The body as JSON, or ``BadRequest`` with Marathon's message (Jackson refuses NaN and Infinity too)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise BadRequest("Invalid JSON", f"Invalid UTF-8 start byte at offset {exc.start}") from None
    if not text.strip():
        raise BadRequest("Please specify data in JSON format", "No content to map due to end-of-input")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise BadRequest("Invalid JSON", f"{exc.msg} at [line: {exc.lineno}, column: {exc.colno}]") from None
    except ValueError as exc:
        raise BadRequest("Invalid JSON", str(exc)) from None
