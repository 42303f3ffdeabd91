"""The operator's API session: JSON in and out, the server's message on errors, a fresh login after a 401."""

from __future__ import annotations

import asyncio
import json

import kopf
import pytest
from aiohttp import web

from datajobs.controller.apisession import ApiError, ApiSession, Conflict, Gone
from datajobs.core.backoff import Backoff
from helpers import async_wait_for

FAST = Backoff(base=0.01, cap=0.05)


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
        api = ApiSession(lambda: kopf.ConnectionInfo(server=url, scheme="Bearer", token="t"), max_retries=0)
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


def login_to(url: str, token: str = "t"):
    return lambda: kopf.ConnectionInfo(server=url, scheme="Bearer", token=token)


def test_429_and_5xx_are_retried_honouring_retry_after_and_a_429_pauses_every_request():
    hits: list[tuple[str, float]] = []

    async def handler(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        hits.append((request.path, loop.time()))
        if request.path == "/throttled" and len([h for h in hits if h[0] == "/throttled"]) == 1:
            return web.json_response({"message": "slow down"}, status=429, headers={"Retry-After": "1"})
        if request.path == "/flaky" and len([h for h in hits if h[0] == "/flaky"]) < 3:
            return web.json_response({"message": "etcd away"}, status=503)
        return web.json_response({"ok": request.path})

    async def run() -> tuple[list[dict], float, float]:
        runner, url = await serve(handler)
        api = ApiSession(login_to(url), backoff=FAST)
        loop = asyncio.get_running_loop()
        try:
            begun = loop.time()
            throttled = asyncio.create_task(api.request("GET", "/throttled"))
            # once the 429 has been answered, the pause is in force
            await async_wait_for(lambda: api._not_before > 0, timeout=5, interval=0.01)
            other = await api.request("GET", "/other")  # sent after the 429: it waits out the pause too
            other_at = loop.time() - begun
            flaky = await api.request("GET", "/flaky")
            return [await throttled, other, flaky], other_at, loop.time() - begun
        finally:
            await api.close()
            await runner.cleanup()

    answers, other_at, _ = asyncio.run(run())
    assert answers == [{"ok": "/throttled"}, {"ok": "/other"}, {"ok": "/flaky"}]
    throttled = [t for p, t in hits if p == "/throttled"]
    assert throttled[1] - throttled[0] >= 0.95  # Retry-After: 1 honoured
    assert other_at >= 0.95  # the whole session paused, not only the refused request
    assert [p for p, _ in hits].count("/flaky") == 3


def test_retries_are_bounded_and_the_last_error_is_raised():
    calls = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        return web.json_response({"message": "down"}, status=500)

    async def run() -> ApiError:
        runner, url = await serve(handler)
        api = ApiSession(login_to(url), backoff=FAST, max_retries=3)
        try:
            with pytest.raises(ApiError) as caught:
                await api.request("GET", "/x")
            return caught.value
        finally:
            await api.close()
            await runner.cleanup()

    error = asyncio.run(run())
    assert error.status == 500 and calls == 4


def test_connection_errors_are_retried_until_the_server_is_back_and_reconnect_is_reported():
    async def run() -> tuple[dict, int, bool]:
        port = free_port()
        api = ApiSession(login_to(f"http://127.0.0.1:{port}"), backoff=Backoff(base=0.05, cap=0.2))
        reconnects = 0

        def reconnected() -> None:
            nonlocal reconnects
            reconnects += 1

        api.on_reconnect = reconnected
        request = asyncio.create_task(api.request("GET", "/x"))
        await async_wait_for(lambda: not api.reachable, timeout=5, interval=0.01)  # the first try refused
        app = web.Application()

        async def back(_: web.Request) -> web.Response:
            return web.json_response({"back": True})

        app.router.add_get("/x", back)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            return await request, reconnects, api.reachable
        finally:
            await api.close()
            await runner.cleanup()

    answer, reconnects, reachable = asyncio.run(run())
    assert answer == {"back": True} and reconnects == 1 and reachable


def test_a_401_re_login_does_not_break_a_request_in_flight_on_the_old_session():
    release, arrived = asyncio.Event(), asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        token = request.headers.get("Authorization")
        if request.path == "/slow":
            arrived.set()
            await release.wait()
            return web.json_response({"slow": token})
        if token != "Bearer fresh":
            return web.json_response({"message": "expired"}, status=401)
        return web.json_response({"fast": token})

    async def run() -> tuple[dict, dict]:
        runner, url = await serve(handler)
        tokens = iter(["stale", "fresh"])
        api = ApiSession(lambda: kopf.ConnectionInfo(server=url, scheme="Bearer", token=next(tokens)))
        try:
            slow = asyncio.create_task(api.request("GET", "/slow"))
            await arrived.wait()  # in flight on the first session
            fast = await api.request("GET", "/fast")  # 401 there, logs in again, succeeds
            release.set()
            return await slow, fast
        finally:
            await api.close()
            await runner.cleanup()

    slow, fast = asyncio.run(run())
    assert fast == {"fast": "Bearer fresh"}
    assert slow == {"slow": "Bearer stale"}  # its session was not closed under it


def test_lists_are_paginated_and_start_over_when_the_continue_token_expires():
    requests: list[dict] = []
    expired_once = False

    async def handler(request: web.Request) -> web.Response:
        nonlocal expired_once
        query = dict(request.query)
        requests.append(query)
        limit, start = int(query["limit"]), int(query.get("continue") or 0)
        if start == 1000 and not expired_once:
            expired_once = True
            return web.json_response({"message": "continue expired"}, status=410)
        items = [{"n": i} for i in range(start, min(start + limit, 1200))]
        more = start + limit < 1200
        meta = {"resourceVersion": "77", **({"continue": str(start + limit)} if more else {})}
        return web.json_response({"items": items, "metadata": meta})

    async def run() -> tuple[list, set]:
        runner, url = await serve(handler)
        api = ApiSession(login_to(url))
        seen: list[int] = []
        versions: set[str] = set()
        try:
            async for items, rv in api.pages("/api/v1/pods", {"labelSelector": "a=b"}):
                seen += [i["n"] for i in items]
                versions.add(rv)
            return seen, versions
        finally:
            await api.close()
            await runner.cleanup()

    seen, versions = asyncio.run(run())
    # the first two pages twice (the list started over), then the rest: nothing missed
    assert seen == list(range(1000)) + list(range(1200)) and versions == {"77"}
    assert all(q["limit"] == "500" and q["labelSelector"] == "a=b" for q in requests)
    assert [q.get("continue") for q in requests] == [None, "500", "1000", None, "500", "1000"]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
