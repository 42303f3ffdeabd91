"""Strict parsing of query parameters, path ids and request bodies: every bad input is a 400, never a 500."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from datajobs.adapter.problems import bad_request, shorten

_INTEGER = re.compile(r"^-?[0-9]{1,19}$")
_BOOLEANS = {"true": True, "false": False}


def parse_query(query: MultiMapping[str], parsers: Mapping[str, Callable[[str], Any]]) -> dict[str, Any]:
    """Parse the allowed parameters; unknown or repeated parameters are rejected."""
    values: dict[str, Any] = {}
    for name, value in query.items():
        if name not in parsers:
            allowed = ", ".join(parsers) or "none"
            raise bad_request(f"unknown query parameter {shorten(name)} (allowed: {allowed})")
        if name in values:
            raise bad_request(f"query parameter {name} given more than once")
        values[name] = parsers[name](value)
    return values


def expected_status(value: str) -> str:
    if value not in ("QUEUED", "RUNNING"):
        raise bad_request(f"expectedStatus must be QUEUED or RUNNING, not {shorten(value)}")
    return value


def boolean(name: str) -> Callable[[str], bool]:
    def parse(value: str) -> bool:
        try:
            return _BOOLEANS[value.lower()]
        except KeyError:
            raise bad_request(f"{name} must be true or false, not {shorten(value)}") from None

    return parse


def execution_id(value: str) -> int:
    """executionId is an integer (decimal digits, optional minus sign, at most 19 digits)."""
    if not _INTEGER.match(value):
        raise bad_request(f"executionId must be an integer, not {shorten(value)}")
    return int(value)


async def read_no_body(request: web.Request, limit: int) -> None:
    """These endpoints take no body: accept none, `{}` or `null`; reject anything else with a reason."""
    if request.content_length is not None and request.content_length > limit:
        raise bad_request(f"request body too large (the limit is {limit} bytes)")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise bad_request(f"request body too large (the limit is {limit} bytes)") from None
    if not raw.strip():
        return
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise bad_request("request body is not valid JSON (this endpoint takes no body)") from None
    if doc is None or doc == {}:
        return
    if isinstance(doc, dict):
        fields = ", ".join(shorten(str(k), 32) for k in list(doc)[:5])
        raise bad_request(f"unknown request body field(s): {fields} (this endpoint takes no body)")
    raise bad_request("request body must be empty or a JSON object (this endpoint takes no body)")
