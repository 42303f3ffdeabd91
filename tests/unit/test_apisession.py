"""The operator's API session: JSON in and out, the server's message on errors, a fresh login after a 401."""

from __future__ import annotations

import asyncio
import json

import kopf
import pytest
from aiohttp import web

from datajobs.controller.apisession import ApiError, ApiSession, Conflict, Gone


async def serve(handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def test_a_401_logs_in_again_once_and_retries_with_the_new_token():
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != "Bearer fresh":
            return web.json_response({"kind": "Status", "message": "Unauthorized"}, status=401)
        body = await request.json()
        return web.json_response({"echo": body, "ct": request.headers["Content-Type"]})

    async def run() -> tuple[dict, int]:
        runner, url = await serve(handler)
        tokens = iter(["stale", "fresh"])
        logins = 0

        def login() -> kopf.ConnectionInfo:
            nonlocal logins
            logins += 1
            return kopf.ConnectionInfo(server=url, scheme="Bearer", token=next(tokens))

        api = ApiSession(login)
        try:
            answer = await api.request(
                "PATCH", "/x", body={"a": 1}, content_type="application/merge-patch+json"
            )
        finally:
            await api.close()
            await runner.cleanup()
        return answer, logins

    answer, logins = asyncio.run(run())
    assert answer == {"echo": {"a": 1}, "ct": "application/merge-patch+json"}
    assert logins == 2 and seen == ["Bearer stale", "Bearer fresh"]


def test_errors_carry_the_status_and_the_servers_message_and_a_second_401_is_final():
    async def handler(request: web.Request) -> web.Response:
        if request.path == "/conflict":
            return web.json_response(
                {"kind": "Status", "message": "the object has been modified"}, status=409
            )
        if request.path == "/gone":
            return web.json_response({"kind": "Status", "message": 'pods "x" not found'}, status=404)
        if request.path == "/plain":
            return web.Response(status=503, text="not json")
        return web.json_response({"message": "nope"}, status=401)

    async def run() -> list[ApiError]:
        runner, url = await serve(handler)
        api = ApiSession(lambda: kopf.ConnectionInfo(server=url, scheme="Bearer", token="t"))
        errors = []
        try:
            for path in ("/conflict", "/gone", "/plain", "/denied"):
                with pytest.raises(ApiError) as caught:
                    await api.request("GET", path)
                errors.append(caught.value)
        finally:
            await api.close()
            await runner.cleanup()
        return errors

    conflict, gone, plain, denied = asyncio.run(run())
    assert isinstance(gone, Gone) and gone.message == 'pods "x" not found'
    assert (conflict.status, conflict.message) == (409, "the object has been modified")
    assert isinstance(conflict, Conflict) and not isinstance(plain, Conflict | Gone)
    assert (plain.status, plain.message) == (503, "Service Unavailable")
    assert (denied.status, denied.message) == (401, "nope")


def test_no_credentials_is_a_permanent_error():
    async def run() -> None:
        await ApiSession(lambda: None).request("GET", "/")

    with pytest.raises(kopf.PermanentError, match="no credentials"):
        asyncio.run(run())


def test_the_body_is_sent_as_json_only_when_there_is_one():
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"has_body": request.can_read_body, "query": dict(request.query)})

    async def run() -> dict:
        runner, url = await serve(handler)
        api = ApiSession(lambda: kopf.ConnectionInfo(server=url + "/"))
        try:
            return await api.request("GET", "/pods", params={"labelSelector": "a=b"})
        finally:
            await api.close()
            await runner.cleanup()

    assert asyncio.run(run()) == json.loads('{"has_body": false, "query": {"labelSelector": "a=b"}}')
