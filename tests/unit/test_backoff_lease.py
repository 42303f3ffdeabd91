"""The retry policy and the leader-election decision (pure functions of the core)."""

from __future__ import annotations

import pytest

from datajobs.core.backoff import (
    Backoff,
    ConcurrencyWindow,
    ItemBackoff,
    TokenBucket,
    retry_after_seconds,
    retry_delay,
    should_retry,
)
from datajobs.core.lease import LeaseRecord, next_record, released


def test_backoff_doubles_up_to_the_cap_and_jitter_only_shortens():
    b = Backoff(base=0.2, cap=10.0, jitter=0.5)
    assert [b.delay(a, rand=lambda: 0.0) for a in range(8)] == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0]
    assert b.delay(3, rand=lambda: 1.0) == pytest.approx(0.8)
    assert b.delay(1000, rand=lambda: 0.0) == 10.0


def test_retry_after_is_read_as_seconds_or_a_date_and_capped():
    assert retry_after_seconds({"Retry-After": "3"}) == 3.0
    assert retry_after_seconds({"Retry-After": "9999"}) == 60.0
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:05 GMT"}, now=1445412480.0) == 5.0
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None
    assert retry_delay(429, 0, 2.0, Backoff(base=0.1)) == 2.0  # at least what the server asked
    assert retry_delay(503, 5, None, Backoff(base=0.1, jitter=0)) == pytest.approx(3.2)


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (429, True),
        (500, True),
        (503, True),
        (504, True),
        (400, False),
        (404, False),
        (409, False),
        (422, False),
    ],
)
def test_which_statuses_are_retried(status, retry):
    assert should_retry(status) is retry


def test_the_token_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBucket(qps=10, burst=3)
    assert [bucket.reserve(100.0) for _ in range(3)] == [0, 0, 0]
    assert bucket.reserve(100.0) == pytest.approx(0.1)
    assert bucket.reserve(100.0) == pytest.approx(0.2)
    assert bucket.reserve(101.0) == 0  # a second later the bucket has refilled
    assert TokenBucket(qps=0, burst=1).reserve(0) == 0  # 0 disables the limit


def test_the_window_halves_on_each_429_to_one_and_grows_back_by_one_per_window():
    w = ConcurrencyWindow(16)
    assert w.size == 16
    sizes = []
    for _ in range(6):
        w.throttled()
        sizes.append(w.size)
    assert sizes == [8, 4, 2, 1, 1, 1]
    answers = 0
    while w.size < 4:
        w.answered()
        answers += 1
    assert answers == 1 + 3 + 3  # +1/size each: 1 -> 2.0, then 2.5, 2.9, 3.24, then 3.55, 3.83, 4.09
    for _ in range(1000):
        w.answered()
    assert w.size == 16


def test_item_backoff_is_per_key_exponential_capped_and_forgotten_on_success():
    items = ItemBackoff(base=0.5, cap=4.0)
    assert [items.next_delay("a") for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert items.next_delay("b") == 0.5
    items.forget("a")
    assert items.failures("a") == 0 and items.next_delay("a") == 0.5


HELD = LeaseRecord("other", 15, "t0", "t0", 3)


def test_a_free_or_missing_lease_is_taken_and_our_own_is_renewed():
    assert next_record("me", None, 0, 0, "t1", 15) == LeaseRecord("me", 15, "t1", "t1", 0)
    free = released(HELD, "t1")
    assert free.holder == "" and free.duration_seconds == 1 and free.transitions == 3
    assert next_record("me", free, observed_at=100, now=100, stamp="t2", duration_seconds=15) == LeaseRecord(
        "me", 15, "t2", "t2", 4
    )
    mine = LeaseRecord("me", 15, "t0", "t1", 4)
    assert next_record("me", mine, 0, 1000, "t9", 15) == LeaseRecord("me", 15, "t0", "t9", 4)


def test_another_holders_lease_is_taken_only_once_it_went_unchanged_for_its_duration():
    assert next_record("me", HELD, observed_at=100, now=114.9, stamp="t", duration_seconds=15) is None
    taken = next_record("me", HELD, observed_at=100, now=115.0, stamp="t", duration_seconds=15)
    assert taken == LeaseRecord("me", 15, "t", "t", 4)


def test_a_lease_round_trips_through_its_spec():
    record = LeaseRecord("me", 15, "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:01.000000Z", 2)
    assert LeaseRecord.of({"spec": record.spec()}) == record
    assert LeaseRecord.of({"spec": released(record, "x").spec()}).holder == ""
