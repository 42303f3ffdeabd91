"""Pure parts of the workers: masking algorithms, the 4096-byte report, the cancel-mode decision, progress."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datajobs.workers import algorithms
from datajobs.workers.progress import ProgressReporter
from datajobs.workers.protocol import MESSAGE_LIMIT, fit_message
from datajobs.workers.stopping import GRACEFUL, IMMEDIATE, StopRequest, mode_from_pod

KEY = b"unit-test-key-0123456789"


def shape(text: str) -> str:
    return "".join("9" if c.isdigit() else "a" if c.islower() else "A" if c.isupper() else c for c in text)


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=80))
def test_hash_keeps_the_shape_and_is_deterministic(value):
    try:
        masked = algorithms.hash_identifier(KEY, value)
    except algorithms.NonConforming:
        assert not any(c.isascii() and c.isalnum() for c in value)
        return
    assert shape(masked) == shape(value)
    assert masked == algorithms.hash_identifier(KEY, value)


def test_hash_depends_on_the_key_and_spreads_values():
    values = [f"REF-{i:07d}-ABCDEF" for i in range(2000)]
    masked = {algorithms.hash_identifier(KEY, v) for v in values}
    assert len(masked) == len(values)  # no collision in this shape's space
    assert algorithms.hash_identifier(KEY, values[0]) != algorithms.hash_identifier(
        b"another-key-0123456", values[0]
    )


def test_email_keeps_the_domain_and_is_case_insensitive_in_its_key():
    masked = algorithms.email(KEY, "Jane.Doe@Example.com")
    assert masked.endswith("@Example.com") and shape(masked) == shape("Jane.Doe@Example.com")
    assert masked != "Jane.Doe@Example.com"
    # the same address in another case is the same person: same local part, modulo case shape
    assert algorithms.email(KEY, "jane.doe@example.com").split("@")[0] == masked.split("@")[0].lower()
    other = algorithms.email(KEY, "a.b@mail.example.co.uk", keep_domain=False)
    assert (
        other.endswith(".uk") and "example" not in other and shape(other) == shape("a.b@mail.example.co.uk")
    )
    for bad in ("no-at-sign", "two@@example.com", "x@nodot", "sp ace@example.com", 42):
        with pytest.raises(algorithms.NonConforming):
            algorithms.email(KEY, bad)


def test_phone_keeps_the_layout_and_masks_the_digits_consistently():
    masked = algorithms.phone(KEY, "+44 (20) 7946-0958", keep_leading_digits=2)
    assert shape(masked) == shape("+44 (20) 7946-0958") and masked.startswith("+44 (")
    assert masked != "+44 (20) 7946-0958"
    # keyed on the digits alone: another layout of the same number masks to the same digits
    digits = "".join(c for c in masked if c.isdigit())
    assert digits == algorithms.phone(KEY, "442079460958", keep_leading_digits=2)
    for bad in ("n/a", "12345", "+1 555 CALL NOW", "1" * 16):
        with pytest.raises(algorithms.NonConforming):
            algorithms.phone(KEY, bad)


def test_date_shift_moves_a_rows_dates_together_within_bounds():
    shifts = {algorithms.date_shift_days(KEY, str(i), 30) for i in range(3000)}
    assert 0 not in shifts and min(shifts) == -30 and max(shifts) == 30
    day, moment = dt.date(2000, 2, 29), dt.datetime(2000, 2, 29, 12, 30, tzinfo=dt.UTC)
    shifted_day = algorithms.date_shift(KEY, day, "row-7", 30)
    shifted_moment = algorithms.date_shift(KEY, moment, "row-7", 30)
    assert shifted_moment - moment == dt.timedelta(days=(shifted_day - day).days)
    with pytest.raises(algorithms.NonConforming):
        algorithms.date_shift(KEY, "2000-01-01", "row-7", 30)


def test_a_long_report_is_cut_to_4096_bytes_and_stays_valid_json():
    report = {
        "status": "FAILED",
        "message": "x" * 10_000,
        "leftDisabled": [{"object": f"trigger t{i}", "restoreSql": "ALTER TABLE …" * 5} for i in range(200)],
    }
    text = fit_message(report, ("leftDisabled",))
    assert len(text.encode()) <= MESSAGE_LIMIT
    parsed = json.loads(text)
    assert parsed["status"] == "FAILED" and parsed["leftDisabledTruncated"] > 0
    assert len(parsed["leftDisabled"]) + parsed["leftDisabledTruncated"] == 200
    small = {"status": "SUCCEEDED", "rowsMasked": 3}
    assert json.loads(fit_message(small)) == small


@pytest.mark.parametrize(
    ("annotations", "meta", "expected_mode", "expected_grace"),
    [
        ({"datajobs.io/cancel-mode": "immediate"}, {"deletionGracePeriodSeconds": 1}, IMMEDIATE, 1.0),
        ({"datajobs.io/cancel-mode": "graceful"}, {"deletionGracePeriodSeconds": 45}, GRACEFUL, 45.0),
        ({}, {}, GRACEFUL, 20.0),  # a drain, not a cancel: the pod's own grace
    ],
)
def test_the_cancel_mode_comes_from_the_annotation(annotations, meta, expected_mode, expected_grace):
    pod = {"metadata": {"annotations": annotations, **meta}, "spec": {"terminationGracePeriodSeconds": 20}}
    mode, reason, grace = mode_from_pod(pod)
    assert (mode, grace) == (expected_mode, expected_grace)
    assert reason.startswith("cancelled") == bool(annotations)


def test_stop_deadlines():
    graceful = StopRequest(GRACEFUL, "cancelled (graceful)", received=100.0, grace=30.0)
    assert graceful.finish_batch_by == 115.0 and graceful.exit_by == 129.0
    immediate = StopRequest(IMMEDIATE, "cancelled (immediate)", received=100.0, grace=1.0)
    assert immediate.finish_batch_by == 100.0 and immediate.exit_by == 101.5


class RecordingApi:
    """Stands in for the pod API in this unit test of the rate limiter (the real API is used elsewhere)."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, dict]] = []
        self.lock = threading.Lock()

    def annotate(self, annotations, timeout=5.0):
        with self.lock:
            self.calls.append((time.monotonic(), json.loads(annotations["datajobs.io/progress"])))


def test_progress_is_sent_at_most_every_two_seconds_and_the_last_value_is_flushed():
    api = RecordingApi()
    reporter = ProgressReporter(api)  # type: ignore[arg-type]
    deadline = time.monotonic() + 4.5
    n = 0
    while time.monotonic() < deadline:
        n += 1
        reporter.update({"rowsMasked": n, "rowsTotal": 10**6})
        time.sleep(0.01)
    time.sleep(2.1)  # let the rate limit pass so that close() may flush
    reporter.close(flush_timeout=3.0)
    times = [t for t, _ in api.calls]
    assert 2 <= len(times) <= 4, times
    assert all(b - a >= 1.99 for a, b in itertools.pairwise(times))
    assert api.calls[-1][1]["rowsMasked"] == n


@given(
    st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=127), max_size=150),
    st.binary(min_size=150, max_size=150),
)
def test_the_whole_string_mapping_of_ascii_text_is_the_per_character_mapping(value, stream):
    assert algorithms._same_classes(value, stream) == algorithms._same_classes_by_char(value, stream)


def phone_by_character(key: bytes, value: str, keep: int) -> str:
    """The rule as docs/worker-protocol.md states it, one character at a time (the fast path's oracle)."""
    digits = "".join(c for c in value if c.isdigit())
    stream = algorithms._keyed_bytes(key, "phone", digits, len(digits))
    out, seen = [], 0
    for c in value:
        if c.isdigit():
            out.append(c if seen < keep else algorithms._DIGITS[stream[seen]])
            seen += 1
        else:
            out.append(c)
    return "".join(out)


@given(st.from_regex(r"\+?[0-9 ().\-/]{7,40}", fullmatch=True), st.integers(min_value=0, max_value=15))
def test_phone_replaces_exactly_the_digits_after_the_kept_ones(value, keep):
    try:
        masked = algorithms.phone(KEY, value, keep)
    except algorithms.NonConforming:
        assert not 7 <= sum(c.isdigit() for c in value) <= 15
        return
    assert masked == phone_by_character(KEY, value, keep)
