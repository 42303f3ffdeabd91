"""The whole-column masking (batchmask.py) gives exactly the per-value algorithms' outputs and counts."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from datajobs.workers import algorithms
from datajobs.workers.batchmask import ColumnMasker
from datajobs.workers.rules import ColumnRule

KEY = b"batch-test-key-0123456789"
MASKER = ColumnMasker(KEY)  # the compiled helper (test_fastmask.py fails when it is not built)
PYTHON_MASKER = ColumnMasker(KEY, use_compiled=False)  # the paths of a tree run from source

ascii_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=90)
any_text = st.text(max_size=90)
# conforming values of at most 64 characters: a column of them takes the whole-column path
emails = st.from_regex(
    r"[A-Za-z0-9._%+\-]{1,20}@[A-Za-z0-9\-]{1,15}(\.[A-Za-z0-9\-]{1,6}){1,3}", fullmatch=True
)
phones = st.from_regex(r"\+?[0-9]{1,3}[ .]?\(?[0-9]{3}\)?[ \-/]?[0-9]{3}-?[0-9]{2,4}", fullmatch=True)
any_phones = st.from_regex(r"\+?[0-9 ().\-/]{6,30}", fullmatch=True)
refs = st.from_regex(r"[A-Z]{2,4}-[0-9]{3,9}(-[A-Za-z]{1,6})?", fullmatch=True)
odd = st.sampled_from(["", "n/a", "x@y", "a@b.c\n", "+1 555 0100\n", "é@x.com", "@a.b", "a@b.", "--", "\x00"])


def column(*kinds: st.SearchStrategy) -> st.SearchStrategy[list]:
    return st.lists(st.one_of(*kinds), max_size=40)


def reference(rule: ColumnRule, values: list, row_keys: list[str]) -> tuple[list, int]:
    """What the worker did before batches: one value at a time, the non-conforming left as they are."""
    out, bad = [], 0
    for value, row in zip(values, row_keys, strict=True):
        if value is None:
            out.append(None)
            continue
        try:
            if rule.algorithm == "hash":
                out.append(algorithms.hash_identifier(KEY, value))
            elif rule.algorithm == "email":
                out.append(algorithms.email(KEY, value, rule.keep_domain))
            elif rule.algorithm == "phone":
                out.append(algorithms.phone(KEY, value, rule.keep_leading_digits))
            else:
                out.append(algorithms.date_shift(KEY, value, row, rule.max_days))
        except algorithms.NonConforming:
            out.append(value)
            bad += 1
    return out, bad


def batch(masker: ColumnMasker, rule: ColumnRule, values: list) -> tuple[list, int]:
    keys = [str(i) for i in range(len(values))]
    return masker.mask(rule, tuple(values), lambda: [k.encode() for k in keys])


def check(rule: ColumnRule, values: list, whole: bool = False) -> None:
    keys = [str(i) for i in range(len(values))]
    expected = reference(rule, values, keys)
    assert MASKER.compiled is not None
    assert batch(MASKER, rule, values) == expected
    assert batch(PYTHON_MASKER, rule, values) == expected
    if whole and values:  # the fast paths really ran
        assert PYTHON_MASKER._whole_column(rule, values) is not None
        if rule.algorithm != "date_shift":
            assert None not in MASKER._compiled(rule, values)


@settings(max_examples=300)
@given(column(refs), column(refs, ascii_text, any_text, odd, st.none()))
def test_hash_of_a_column_is_the_per_value_hash(clean, mixed):
    rule = ColumnRule(column="c", algorithm="hash")
    check(rule, clean, whole=True)  # every value on the whole-column path
    check(rule, mixed)  # NULLs, non-ASCII, long and empty values: one by one where needed


@settings(max_examples=300)
@given(column(emails), column(emails, ascii_text, any_text, odd, st.none()), st.booleans())
def test_email_of_a_column_is_the_per_value_email(clean, mixed, keep_domain):
    rule = ColumnRule(column="c", algorithm="email", keep_domain=keep_domain)
    check(rule, clean, whole=True)
    check(rule, mixed)


@settings(max_examples=300)
@given(column(phones), column(any_phones, ascii_text, odd, st.none()), st.integers(min_value=0, max_value=15))
def test_phone_of_a_column_is_the_per_value_phone(clean, mixed, keep):
    rule = ColumnRule(column="c", algorithm="phone", keep_leading_digits=keep)
    check(rule, clean, whole=True)
    check(rule, mixed)


dates = st.dates()
moments = st.datetimes(timezones=st.sampled_from([None, dt.UTC, dt.timezone(dt.timedelta(hours=-5))]))
edges = st.sampled_from([dt.date.min, dt.date.max, dt.datetime.min, dt.datetime.max, "2000-01-01"])


@settings(max_examples=300)
@given(column(dates), column(dates, moments, edges, st.none()), st.integers(min_value=1, max_value=36500))
def test_date_shift_of_a_column_is_the_per_value_shift(clean, mixed, max_days):
    rule = ColumnRule(column="c", algorithm="date_shift", max_days=max_days)
    check(rule, clean)
    check(rule, mixed)  # out of the calendar, not a date: counted, unchanged


RULES = [
    ColumnRule(column="email", algorithm="email"),
    ColumnRule(column="phone", algorithm="phone", keep_leading_digits=1),
    ColumnRule(column="ref", algorithm="hash"),
    ColumnRule(column="birth", algorithm="date_shift"),
]


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.one_of(emails, odd, st.none()),
            st.one_of(phones, odd, st.none()),
            st.one_of(refs, odd, st.none()),
            st.one_of(dates, st.none()),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_a_batch_is_the_rows_that_change_as_columns(values):
    rows = [(1000 + i, *v) for i, v in enumerate(values)]
    changed, nonconforming, masked = MASKER.mask_rows(RULES, rows)
    assert PYTHON_MASKER.mask_rows(RULES, rows) == (changed, nonconforming, masked)
    # the worker's loop before batches: row by row, a row kept when any of its values changed
    expected, bad, count = [], Counter(), 0
    for row in rows:
        out, differs = [row[0]], False
        for n, (rule, value) in enumerate(zip(RULES, row[1:], strict=True)):
            (new,), nc = reference(rule, [value], [str(row[0])])
            bad[n] += nc
            count += value is not None and not nc
            differs = differs or new != value
            out.append(new)
        if differs:
            expected.append(out)
    assert changed == [list(c) for c in zip(*expected, strict=True)] or (not expected and changed[0] == [])
    assert nonconforming == [bad[n] for n in range(len(RULES))]
    assert masked == count
