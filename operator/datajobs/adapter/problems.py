"""HTTP-level failures raised by handlers and rendered in the calling vendor's error shape."""

from __future__ import annotations

from collections.abc import Mapping


class ApiProblem(Exception):
    """An error answer: its status code and a message safe to show the client."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def bad_request(message: str) -> ApiProblem:
    return ApiProblem(400, message)


def not_found(message: str) -> ApiProblem:
    return ApiProblem(404, message)


def shorten(value: str, limit: int = 64) -> str:
    """A client-supplied value, quoted and cut short, for echoing in an error message."""
    text = value if len(value) <= limit else value[:limit] + "…"
    return repr(text)
