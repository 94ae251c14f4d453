"""Marathon's status codes and error bodies for everything the REST API answers (reference §1.3, §1.5).

``error_middleware`` is the outermost middleware: whatever a handler raises leaves as Marathon's JSON
error (``api/MarathonExceptionMapper.scala``), never as a stack trace:

* ``marathon_py.validation.ApiError`` and its subclasses (including the ones here) → their status and body;
* a body that is not JSON (``json.JSONDecodeError``, bad UTF-8) → 400 ``{"message": "Invalid JSON", ...}``;
* aiohttp's own refusals (405, 413, …) → their status with the reason phrase as the message, as Jersey's
  ``WebApplicationException``; a path no route matches → **500** ``{"message": "URI not found"}`` (Jersey's
  ``NotFoundException`` quirk, §1.5);
* ``TimeoutError`` → 503; anything else → 500 with the exception's message (logged with its traceback).

Redirects and other non-error ``HTTPException``s pass through untouched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from marathon_py.deployment import LOCKED_MESSAGE
from marathon_py.validation import ApiError, Conflict

log = logging.getLogger(__name__)

UNKNOWN_ROUTE_STATUS = 500  # Jersey answers a route it does not know with 500, and so does Marathon 1.10
UNKNOWN_ROUTE_MESSAGE = "URI not found"


class HttpError(ApiError):
    """An error with any status, extra body keys and response headers: the HTTP layer's own refusals."""

    def __init__(
        self, status: int, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"message": self.message, **self.extra}


class NotFound(HttpError):
    """404 with the messages of ``RestResource`` / ``Exception.scala``."""

    def __init__(self, message: str) -> None:
        super().__init__(404, message)

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


class AppLocked(Conflict):
    """409 ``AppLockedException``: the run spec is locked by the listed deployments (§1.3 ``deployable``)."""

    def __init__(self, deployment_ids: Iterable[str]) -> None:
        super().__init__(LOCKED_MESSAGE)
        self.deployment_ids = list(deployment_ids)

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "deployments": [{"id": d} for d in self.deployment_ids]}


class TooManyDeployments(HttpError):
    """403 ``TooManyRunningDeploymentsException`` (its message, missing space included)."""

    def __init__(self, max_running: int) -> None:
        super().__init__(
            403,
            f"Max number ({max_running}) of running deployments is achieved. Wait for existing deployments "
            "to complete or cancel oneusing force=true parameter. You can increase max deployment number by "
            "using --max_running_deployments parameter but be advised that this can have negative effects "
            "on the performance.",
        )


def dumps(doc: object) -> str:
    """Compact JSON, as Play's ``Json.stringify`` writes it."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def json_response(doc: object, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        text=dumps(doc), status=status, headers=headers, content_type="application/json", charset="utf-8"
    )


def error_response(exc: ApiError) -> web.Response:
    return json_response(exc.body(), exc.status, getattr(exc, "headers", None))


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return str(status)


def _refusal(request: web.Request, exc: web.HTTPException) -> web.Response:
    if getattr(request.match_info, "http_exception", None) is exc and exc.status == 404:
        return json_response({"message": UNKNOWN_ROUTE_MESSAGE}, UNKNOWN_ROUTE_STATUS)
    headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
    return json_response({"message": _reason(exc.status)}, exc.status, headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _refusal(request, exc)
    except json.JSONDecodeError as exc:
        details = f"{exc.msg} at [line: {exc.lineno}, column: {exc.colno}]"
        return json_response({"message": "Invalid JSON", "details": details}, 400)
    except UnicodeDecodeError as exc:
        details = f"Invalid UTF-8 start byte at offset {exc.start}"
        return json_response({"message": "Invalid JSON", "details": details}, 400)
    except TimeoutError as exc:
        log.warning("%s %s timed out", request.method, request.path)
        return json_response({"message": str(exc) or "Request timed out"}, 503)
    except Exception as exc:
        log.exception("exception while processing %s %s", request.method, request.path)
        return json_response({"message": str(exc) or type(exc).__name__}, 500)
