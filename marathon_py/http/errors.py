"""Marathon's status codes and error bodies for everything the REST API answers (reference §1.3, §1.5).

``error_middleware`` is the outermost middleware: whatever a handler raises leaves as Marathon's JSON
error (``api/MarathonExceptionMapper.scala``), never as a stack trace:

* ``marathon_py.validation.ApiError`` and its subclasses (``NotFound``, ``AppLocked``, ``TooManyDeployments``
  live there, so the pure core raises them too; ``HttpError`` here adds any status and headers) → their
  status and body;
* a body that is not JSON (``json.JSONDecodeError``, bad UTF-8) → 400 ``{"message": "Invalid JSON", ...}``;
* aiohttp's own refusals (405, 413, …) → their status with the reason phrase as the message, as Jersey's
  ``WebApplicationException``; a path no route matches → **500** ``{"message": "URI not found"}`` (Jersey's
  ``NotFoundException`` quirk, §1.5);
* **deviation**: a path below a prefix whose templates take ids with slashes (``/v2/apps/…``,
  ``/v2/groups/…``, ``/v2/queue/…``) that names nothing, e.g. ``/v2/apps/web/restart/x``, is Jersey's 500
  too, but we answer **404** ``{"message": "URI not found"}`` (``unknown_route``). Such a path fits a template
  of the OpenAPI document (``/v2/apps/{appId}`` with ``appId`` = ``web/restart/x``), so it is an unknown
  resource, not a server fault: users and tools (5xx alerts, schema fuzzers) expect a 4xx. Whether Jersey
  would have matched a template depends on its regex engine (a line break in an id, encoded slashes), which
  no user can predict; no client we serve (§9) reads the 500. Paths outside every prefix keep Marathon's 500;
* ``TimeoutError`` → 503; anything else → 500 with the exception's message (logged with its traceback).

Redirects and other non-error ``HTTPException``s pass through untouched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from marathon_py.validation import ApiError, AppLocked, NotFound, TooManyDeployments

__all__ = [
    "AppLocked",
    "HttpError",
    "NotFound",
    "TooManyDeployments",
    "dumps",
    "error_middleware",
    "error_response",
    "json_response",
    "unknown_route",
]

log = logging.getLogger(__name__)

UNKNOWN_ROUTE_STATUS = 500  # Jersey answers a route it does not know with 500, and so does Marathon 1.10
UNKNOWN_ROUTE_MESSAGE = "URI not found"
UNKNOWN_BELOW_PREFIX_STATUS = 404  # our deviation for paths below an id prefix (see the module docstring)


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


def unknown_route() -> HttpError:
    """What a handler raises for a path below its prefix that names nothing: 404 (Jersey: 500)."""
    return HttpError(UNKNOWN_BELOW_PREFIX_STATUS, UNKNOWN_ROUTE_MESSAGE)


def dumps(doc: object) -> bytes:
    """Compact UTF-8 JSON, as Play's ``Json.stringify`` writes it.  orjson writes ``GET /v2/apps`` with
    10,000 apps in a tenth of the standard encoder's time; what it refuses (integers beyond 64 bits,
    non-string keys) the standard encoder writes."""
    try:
        return orjson.dumps(doc)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(doc: object, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=dumps(doc), status=status, headers=headers, content_type="application/json", charset="utf-8"
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
