"""Retry and rate-limit policy (no I/O): exponential backoff with jitter, Retry-After, a token bucket."""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 60.0


@dataclass(frozen=True)
class Backoff:
    """`base * 2**attempt`, capped, times a jitter factor in [1 - jitter, 1] (so never above the cap)."""

    base: float = 0.2
    cap: float = 10.0
    jitter: float = 0.5

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(attempt, 30))
        return ceiling * (1 - self.jitter * rand())


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The server's Retry-After (delta-seconds or an HTTP date, given `now` as a Unix time), capped."""
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if now is None:
            return None
        seconds = when.timestamp() - now
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def should_retry(status: int) -> bool:
    """Throttled (429) or a server-side failure that a later attempt may not see (500, 502-504)."""
    return status in RETRYABLE_STATUSES


def retry_delay(status: int, attempt: int, retry_after: float | None, backoff: Backoff) -> float:
    """How long to wait before attempt `attempt + 1`: at least what the server asked for."""
    delay = backoff.delay(attempt)
    return max(delay, retry_after) if retry_after is not None else delay


@dataclass
class TokenBucket:
    """client-go's flowcontrol rate limiter: `qps` tokens a second, at most `burst` saved up."""

    qps: float
    burst: int
    _tokens: float = field(default=-1.0, init=False)
    _last: float = field(default=0.0, init=False)

    def reserve(self, now: float) -> float:
        """Take one token; the seconds to wait before using it (0 when one was available)."""
        if self.qps <= 0:
            return 0.0
        if self._tokens < 0 and self._last == 0.0:
            self._tokens, self._last = float(self.burst), now
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps


@dataclass
class ConcurrencyWindow:
    """How many requests may be in flight at once, additive-increase/multiplicative-decrease (as TCP's
    congestion window): halved by each throttling answer (429), grown by one per window's worth of
    answers that were not. An API server that rejects beyond its seats then sees one retry at a time,
    not every waiting request at once the moment Retry-After is over."""

    most: int
    _size: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._size = float(self.most)

    @property
    def size(self) -> int:
        return max(1, int(self._size))

    def throttled(self) -> None:
        self._size = max(1.0, self._size / 2)

    def answered(self) -> None:
        self._size = min(float(self.most), self._size + 1 / self._size)


@dataclass
class ItemBackoff:
    """Per-key exponential requeue delays (client-go's ItemExponentialFailureRateLimiter), capped."""

    base: float = 1.0
    cap: float = 300.0
    _failures: dict[Hashable, int] = field(default_factory=dict, init=False)

    def next_delay(self, key: Hashable) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        return min(self.cap, self.base * 2 ** min(failures, 30))

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def failures(self, key: Hashable) -> int:
        return self._failures.get(key, 0)
