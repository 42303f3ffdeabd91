"""The compiled helper (_fastmask.c): built in this venv, its BLAKE2b is hashlib's, and wherever it returns a
masked value that value is algorithms.py's, byte for byte; it covers the ordinary values itself."""

from __future__ import annotations

import hashlib
import importlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datajobs.workers import algorithms, batchmask
from datajobs.workers.batchmask import ColumnMasker
from datajobs.workers.rules import ColumnRule

# No fallback here: CI must test the C path, so a venv (or image) without the extension fails loudly.
fastmask = importlib.import_module("datajobs.workers._fastmask")

keys = st.one_of(
    st.binary(min_size=0, max_size=64),
    st.just(b"k" * 64),
    st.binary(min_size=65, max_size=200).map(algorithms.normalize_key),
)
labels = st.sampled_from(["hash", "email", "phone", "date_shift", "", "a-label-of-thirty-one-bytes-xyz"])
# one value of each kind the C side must leave alone, or must get exactly right
tricky = st.sampled_from(
    [
        "",
        "\x00",
        "a\x00b",
        "AB-12\x00",
        "a@b.c\n",
        "a@b.c\x1c",
        "a\x1f@b.c",
        "a b@c.d",
        "a@b@c.d",
        "@b.c",
        "a@.c",
        "a@b.",
        "a@b..c",
        "a@b.c.",
        "a.b@c",
        "x@y",
        "é@x.com",
        "a@x.cöm",
        "+1 555 0100\n",
        "+1 555 0100 +",
        "++15550100",
        "1+5550100",
        "555-010",
        "1234567890123456",
        "123456789012345",
        "(555) 010-0100 x7",
        "\x7f@b.c",
        "Ab-9" * 16,
        "Ab-9" * 16 + "x",
        "A" * 65,
        "--",
        "ÀB-123",
    ]
)
texts = st.one_of(st.text(max_size=80), st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
emails = st.from_regex(
    r"[A-Za-z0-9._%+\-!#$&'*/=?^`{|}~]{1,30}@[A-Za-z0-9\-.]{1,20}\.[A-Za-z]{1,8}", fullmatch=True
)
phones = st.from_regex(r"\+?[0-9 ().\-/]{7,40}", fullmatch=True)
refs = st.from_regex(r"[A-Za-z0-9\-_ .:/]{1,64}", fullmatch=True)
values = st.lists(
    st.one_of(tricky, texts, emails, phones, refs, st.none(), st.integers(), st.binary(max_size=8)),
    max_size=30,
)


def per_value(function, *args) -> object:
    try:
        return function(*args)
    except algorithms.NonConforming:
        return None


def test_the_compiled_helper_is_what_the_worker_uses():
    assert batchmask.compiled is fastmask
    assert ColumnMasker(b"k").compiled is fastmask
    assert ColumnMasker(b"k", use_compiled=False).compiled is None


@pytest.mark.parametrize("key_length", [0, 1, 17, 63, 64])
def test_blake2b_is_hashlibs_across_block_boundaries(key_length):
    key = bytes(range(key_length))
    for label in ("hash", "date_shift", ""):
        for n in [*range(0, 140), 250, 251, 252, 255, 256, 257, 383, 384, 385, 1000, 4096]:
            message = bytes((7 * i + n) % 256 for i in range(n))
            expected = hashlib.blake2b(f"{label}\x00".encode() + message, key=key, digest_size=64).digest()
            assert fastmask.blake2b(key, label, message) == expected, (label, n)


@settings(max_examples=500)
@given(keys, labels, st.binary(max_size=600))
def test_blake2b_is_hashlibs(key, label, message):
    expected = hashlib.blake2b(f"{label}\x00".encode() + message, key=key, digest_size=64).digest()
    assert fastmask.blake2b(key, label, message) == expected


def test_a_key_longer_than_blake2b_takes_is_refused():
    for call in (
        lambda: fastmask.blake2b(b"k" * 65, "hash", b""),
        lambda: fastmask.hash_identifier(b"k" * 65, ["AB-1"]),
        lambda: fastmask.day_shifts(b"k" * 65, [b"1"], 365),
    ):
        with pytest.raises(ValueError, match="at most 64 bytes"):
            call()


@settings(max_examples=400)
@given(keys, values)
def test_hash_identifier_is_algorithms_wherever_c_answers(key, column):
    out = fastmask.hash_identifier(key, column)
    assert len(out) == len(column)
    for value, masked in zip(column, out, strict=True):
        expected = per_value(algorithms.hash_identifier, key, value)
        if masked is not None:
            assert masked == expected, value
        elif isinstance(value, str) and value.isascii() and len(value) <= 64:
            assert expected is None, value  # an ordinary value C should have covered


@settings(max_examples=400)
@given(keys, values, st.booleans())
def test_email_is_algorithms_wherever_c_answers(key, column, keep_domain):
    out = fastmask.email(key, column, keep_domain)
    for value, masked in zip(column, out, strict=True):
        expected = per_value(algorithms.email, key, value, keep_domain)
        if masked is not None:
            assert masked == expected, value
        elif isinstance(value, str) and len(value) <= 64 and all(0x21 <= ord(c) <= 0x7E for c in value):
            assert expected is None, value


@settings(max_examples=400)
@given(keys, values, st.integers(min_value=0, max_value=15))
def test_phone_is_algorithms_wherever_c_answers(key, column, keep):
    out = fastmask.phone(key, column, keep)
    for value, masked in zip(column, out, strict=True):
        expected = per_value(algorithms.phone, key, value, keep)
        if masked is not None:
            assert masked == expected, value
        elif isinstance(value, str) and len(value) <= 64 and "\n" not in value:
            assert expected is None, value


ints = st.one_of(st.integers(), st.integers(2**63 - 3, 2**70), st.integers(-(2**70), -(2**63) + 3))


@settings(max_examples=300)
@given(
    keys,
    st.lists(st.one_of(st.text(max_size=200), ints), max_size=30),
    st.integers(min_value=1, max_value=36500),
)
def test_day_shifts_are_algorithms_for_str_int_and_bytes_row_keys(key, row_keys, max_days):
    expected = [algorithms.date_shift_days(key, str(k), max_days) for k in row_keys]
    assert fastmask.day_shifts(key, row_keys, max_days) == expected
    assert fastmask.day_shifts(key, [str(k).encode() for k in row_keys], max_days) == expected


def test_a_row_key_of_another_type_is_refused():
    for other in (True, 1.5, None):
        with pytest.raises(TypeError, match="bytes, str or int"):
            fastmask.day_shifts(b"k", [b"1", other], 365)


RULES = [
    ColumnRule(column="email", algorithm="email", keep_domain=False),
    ColumnRule(column="phone", algorithm="phone", keep_leading_digits=2),
    ColumnRule(column="ref", algorithm="hash"),
]


@settings(max_examples=200)
@given(keys, st.lists(st.tuples(st.integers(), values.map(tuple)), min_size=1, max_size=20))
def test_column_masker_with_any_key_agrees_with_and_without_the_helper(key, raw):
    rows = [(k, *(list(v) + [None] * 3)[:3]) for k, v in raw]
    assert ColumnMasker(key).mask_rows(RULES, rows) == ColumnMasker(key, use_compiled=False).mask_rows(
        RULES, rows
    )
