"""The aiohttp application: routes, vendor-shaped errors, metrics and JSON access logs in one middleware."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from datajobs import __version__
from datajobs.adapter.dialects import dialect_for
from datajobs.adapter.handlers import KEY_NAME, AdapterState, Handlers
from datajobs.adapter.openapi import build_openapi
from datajobs.adapter.problems import ApiProblem
from datajobs.models import KINDS

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("datajobs.adapter.access")

STATE: web.AppKey[AdapterState] = web.AppKey("state", AdapterState)
LOGGED_QUERY_PARAMS = frozenset({"expectedStatus", "graceful"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(state: AdapterState) -> web.Application:
    # aiohttp enforces the body limit while reading (HTTP 413, which the middleware turns into a 400).
    app = web.Application(middlewares=[_middleware], client_max_size=state.max_body_bytes)
    app[STATE] = state
    handlers = Handlers(state)
    openapi = json.dumps(build_openapi(__version__)).encode()
    r = app.router
    r.add_post("/destinations/{destination_id}/data-integrity/{job_id}/cancel", handlers.prequel_cancel)
    r.add_get(
        "/destinations/{destination_id}/data-integrity/{job_id}", handlers.prequel_get, allow_head=False
    )
    r.add_post("/executions/{executionId}/cancel", handlers.delphix_cancel)
    r.add_get("/executions/{executionId}", handlers.delphix_get, allow_head=False)
    r.add_get("/healthz", _healthz, allow_head=False)
    r.add_get("/readyz", _readyz, allow_head=False)
    r.add_get("/metrics", _metrics, allow_head=False)

    async def openapi_json(_: web.Request) -> web.Response:
        return web.Response(body=openapi, content_type="application/json")

    r.add_get("/openapi.json", openapi_json, allow_head=False)
    return app


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    cache = request.app[STATE].cache
    if cache.synced:
        return web.json_response({"status": "ready"})
    waiting = list(getattr(cache, "unsynced", list)())
    return web.json_response({"status": "not ready", "waiting": waiting}, status=503)


async def _metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    m = state.metrics
    for kind in KINDS:
        m.cache_objects.labels(kind.kind).set(len(state.cache.index(kind)))
    m.cache_synced.set(1 if state.cache.synced else 0)
    m.api_keys.set(len(state.keys))
    return web.Response(body=m.render(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    dialect = dialect_for(request.path)
    response: web.StreamResponse
    try:
        response = await handler(request)
    except ApiProblem as problem:
        response = dialect.error(problem.status, problem.message, problem.headers)
    except web.HTTPException as exc:  # raised by the router (404, 405) or while reading the body (413)
        if exc.status < 400:
            raise
        status = 400 if exc.status == 413 else exc.status
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        message = "request body too large" if exc.status == 413 else _router_message(request, exc.status)
        response = dialect.error(status, message, headers)
    except Exception:
        logger.exception("unhandled error serving %s %s", request.method, request.path)
        response = dialect.error(500, "internal error")
    _observe(request, response.status, time.perf_counter() - started)
    return response


def _router_message(request: web.Request, status: int) -> str:
    if status == 405:
        return f"method {request.method} not allowed on this path"
    if status == 404:
        return "no such endpoint"
    return "bad request"


def _route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _observe(request: web.Request, status: int, seconds: float) -> None:
    route = _route_template(request)
    metrics = request.app[STATE].metrics
    labels = (route, request.method, str(status))
    metrics.requests.labels(*labels).inc()
    metrics.latency.labels(*labels).observe(seconds)
    if access_logger.isEnabledFor(logging.INFO):
        record: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "remote": request.remote,
            "method": request.method,
            "path": request.path,
            "route": route,
            # Values of unknown parameters are not logged: clients sometimes put secrets in the wrong place.
            "query": {k: (v if k in LOGGED_QUERY_PARAMS else "<redacted>") for k, v in request.query.items()},
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "key": request.get(KEY_NAME),
        }
        access_logger.info(json.dumps(record, ensure_ascii=False))
