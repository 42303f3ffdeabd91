"""The masking algorithms over a batch, column by column: algorithms.py's outputs, one C call per column.

The compiled helper (`_fastmask.c`) masks a whole column per call where it is installed; without it (a
tree run from source) the Python paths below do, a few C calls per value: the character-class rewrite of
a whole column is one big-integer pass over all its values, joined by NUL (which PostgreSQL text never
holds). Values either does not cover (non-ASCII, longer than one BLAKE2b block, anything odd) go through
algorithms.py one by one, so every output is exactly the per-value function's (proven by property tests)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import struct
from collections import deque
from collections.abc import Callable, Sequence
from itertools import compress, repeat
from operator import add, call, ge, getitem, itemgetter, methodcaller, mod, ne, or_, sub
from typing import Any

from datajobs.workers import algorithms
from datajobs.workers.rules import Algorithm, ColumnRule

try:
    from datajobs.workers import _fastmask as compiled
except ImportError:  # not built (a tree run from source): the Python paths
    compiled = None  # type: ignore[assignment]

BLOCK = 64  # one BLAKE2b digest: values up to this many characters need a single hash
_COPY, _UPDATE, _DIGEST = hashlib.blake2b.copy, hashlib.blake2b.update, hashlib.blake2b.digest
_ALNUM = re.compile(r"[0-9A-Za-z]").search
_PHONE_PUNCTUATION = b"+ ().-/"
_DIGIT_TO_9 = bytes.maketrans(b"0123456789", b"9999999999")
_ENCODE: Callable[[Any], bytes] = str.encode  # (typed for map over getitem results)
_TRANSLATE: Callable[[Any, bytes], bytes] = bytes.translate
_HEAD8 = itemgetter(slice(8))
_SHAPE = methodcaller("translate", _DIGIT_TO_9)
_DROP_PUNCTUATION = methodcaller("translate", None, _PHONE_PUNCTUATION)
# algorithms.EMAIL_PATTERN and PHONE_PATTERN, for a whole column joined by NUL (a value holds none), and
# without the one-line `$` (which lets a value end in a newline: those go through algorithms.py)
SEPARATOR = "\x00"
_EMAIL = r"[^@\s\x00]+@[^@\s\x00]+\.[^@\s.\x00]+"
_ALL_EMAILS = re.compile(rf"(?:{_EMAIL}\x00)*{_EMAIL}").fullmatch
_PHONE = r"\+?[0-9 ().\-/]+"
_ALL_PHONES = re.compile(rf"(?:{_PHONE}\x00)*{_PHONE}").fullmatch

Column = Sequence[object]


class ColumnMasker:
    """Masks whole columns under one key; `mask(rule, values, row_keys)` -> (outputs, non-conforming count).

    An output is the masked value, None for NULL, or the value itself where it does not conform."""

    def __init__(self, key: bytes, use_compiled: bool = True) -> None:
        self.key = key
        self.compiled = compiled if use_compiled else None
        self._keyed = hashlib.blake2b(key=key, digest_size=BLOCK)
        self._labelled: dict[str, Any] = {}
        self._layouts: dict[bytes, tuple[Callable[[bytes], tuple[bytes, ...]], bytes]] = {}
        self._deltas: dict[int, list[dt.timedelta]] = {}

    def digests(self, label: str, messages: Sequence[bytes]) -> list[bytes]:
        """`algorithms._keyed_bytes(key, label, m, 64)` for each message (UTF-8 bytes)."""
        start = self._labelled.get(label)
        if start is None:  # the keyed state after `label NUL`: each message's hash continues a copy of it
            start = self._labelled[label] = self._keyed.copy()
            start.update(f"{label}\x00".encode())
        states = list(map(_COPY, repeat(start, len(messages))))
        deque(map(_UPDATE, states, messages), maxlen=0)
        return list(map(_DIGEST, states))

    def mask_rows(
        self, rules: Sequence[ColumnRule], rows: Sequence[Sequence[object]]
    ) -> tuple[list[list], list[int], int]:
        """Rows (key, then one value per rule) -> the rows some value of which changed, as columns (key
        column first), the non-conforming values per rule, and how many values were masked."""
        keys, *columns = zip(*rows, strict=True)
        row_keys: list = []

        def encoded_keys() -> list:  # what date_shift is keyed on: the row key as text
            if not row_keys:
                if self.compiled is not None and set(map(type, keys)) <= {int, str}:
                    row_keys.extend(keys)  # the helper takes these as they are (an int as str(int))
                else:
                    row_keys.extend(map(str.encode, map(str, keys)))
            return row_keys

        nonconforming, outputs, masked = [], [], 0
        for rule, values in zip(rules, columns, strict=True):
            out, bad = self.mask(rule, values, encoded_keys)
            masked += len(values) - values.count(None) - bad
            nonconforming.append(bad)
            outputs.append(out)
        if any(all(map(ne, o, v)) for o, v in zip(outputs, columns, strict=True)):
            return [list(keys), *outputs], nonconforming, masked  # a column changed in every row
        differs: list[bool] = []
        for o, v in zip(outputs, columns, strict=True):
            differs = list(map(or_, differs, map(ne, o, v))) if differs else list(map(ne, o, v))
        return [list(compress(c, differs)) for c in (keys, *outputs)], nonconforming, masked

    def mask(self, rule: ColumnRule, values: Column, row_keys: Callable[[], list]) -> tuple[list, int]:
        if rule.algorithm is Algorithm.DATE_SHIFT:
            return self._date_shift(values, row_keys(), rule.max_days)
        if self.compiled is not None:
            return self._finish(rule, values, self._compiled(rule, values))
        whole = self._whole_column(rule, values)
        if whole is not None:
            return whole, 0
        if rule.algorithm is Algorithm.HASH:
            fast = self._hash(values)
        elif rule.algorithm is Algorithm.EMAIL:
            fast = self._email(values, rule.keep_domain)
        else:
            fast = self._phone(values, rule.keep_leading_digits)
        return self._finish(rule, values, fast)

    def _finish(self, rule: ColumnRule, values: Column, out: list) -> tuple[list, int]:
        """Where the fast path left a value (None), the per-value function decides."""
        if None not in out:
            return out, 0
        bad = 0
        for i, (v, o) in enumerate(zip(values, out, strict=True)):
            if o is None and v is not None:
                try:
                    out[i] = _reference(rule, self.key, v)
                except algorithms.NonConforming:
                    out[i] = v
                    bad += 1
        return out, bad

    def _compiled(self, rule: ColumnRule, values: Column) -> list:
        """The compiled helper's outputs for a text column: None where it leaves a value to algorithms.py."""
        assert self.compiled is not None
        if rule.algorithm is Algorithm.HASH:
            return self.compiled.hash_identifier(self.key, values)
        if rule.algorithm is Algorithm.EMAIL:
            return self.compiled.email(self.key, values, rule.keep_domain)
        return self.compiled.phone(self.key, values, rule.keep_leading_digits)

    # --- a whole text column at once, when every value is ASCII, short enough and conforming -----------

    def _whole_column(self, rule: ColumnRule, values: Column) -> list | None:
        """The column's outputs when the fast path covers every value, else None (nothing is counted)."""
        try:
            texts: list[str] = list(values)  # type: ignore[arg-type]
            joined = SEPARATOR.join(texts)  # TypeError on a NULL
        except TypeError:
            return None
        if not joined.isascii() or joined.count(SEPARATOR) != len(texts) - 1 or max(map(len, texts)) > BLOCK:
            return None
        if rule.algorithm is Algorithm.HASH:
            return self._hash_all(texts)
        if rule.algorithm is Algorithm.EMAIL:
            return self._email_all(texts, joined, rule.keep_domain)
        return self._phone_all(texts, joined, rule.keep_leading_digits)

    def _hash_all(self, texts: list[str]) -> list | None:
        if not all(map(_ALNUM, texts)):
            return None
        encoded = list(map(str.encode, texts))
        return self._classes(encoded, self.digests("hash", encoded))

    def _email_all(self, texts: list[str], joined: str, keep_domain: bool) -> list | None:
        if _ALL_EMAILS(joined) is None:
            return None
        cuts = list(map(str.index if keep_domain else str.rindex, texts, repeat("@" if keep_domain else ".")))
        digests = self.digests("email", list(map(str.encode, map(str.lower, texts))))
        heads = list(map(_ENCODE, map(getitem, texts, map(slice, cuts))))
        tails = map(getitem, texts, map(slice, cuts, repeat(None)))
        return list(map(add, self._classes(heads, digests), tails))

    def _phone_all(self, texts: list[str], joined: str, keep: int) -> list | None:
        if _ALL_PHONES(joined) is None:
            return None
        encoded = list(map(str.encode, texts))
        digits = list(map(_DROP_PUNCTUATION, encoded))
        lengths = list(map(len, digits))
        if min(lengths) < 7 or max(lengths) > 15 or not b"".join(digits).isdigit():
            return None
        streams = map(getitem, self.digests("phone", digits), map(slice, repeat(keep), lengths))
        new = map(_TRANSLATE, streams, repeat(algorithms.TO_DIGIT))
        kept = list(map(add, map(getitem, digits, repeat(slice(keep))), new)) if keep else list(new)
        shapes = list(map(_SHAPE, encoded))
        layouts: list[Any] = list(map(self._layouts.get, shapes))
        if None in layouts:
            layouts = list(map(self._layout_of_shape, shapes))
        runs = map(call, map(itemgetter(0), layouts), kept)
        return list(map(bytes.decode, map(bytes.__mod__, map(itemgetter(1), layouts), runs)))

    # --- text algorithms: each returns the outputs it computed, None where it did not ---------------

    def _hash(self, values: Column) -> list:
        out: list = [None] * len(values)
        fast = [
            i
            for i, v in enumerate(values)
            if type(v) is str and 0 < len(v) <= BLOCK and v.isascii() and _ALNUM(v) is not None
        ]
        encoded = [str.encode(values[i]) for i in fast]  # type: ignore[arg-type]
        for i, masked in zip(fast, self._classes(encoded, self.digests("hash", encoded)), strict=True):
            out[i] = masked
        return out

    def _email(self, values: Column, keep_domain: bool) -> list:
        out: list = [None] * len(values)
        fast: list[int] = []
        whole: list[str] = []
        cuts: list[int] = []
        match = algorithms.EMAIL_PATTERN.match
        for i, v in enumerate(values):
            if type(v) is str and len(v) <= BLOCK and v.isascii() and "\n" not in v and (m := match(v)):
                fast.append(i)
                whole.append(v)
                cuts.append(m.end("local") if keep_domain else v.rindex("."))
        digests = self.digests("email", [v.lower().encode() for v in whole])
        heads = [v[:cut].encode() for v, cut in zip(whole, cuts, strict=True)]
        for i, v, cut, masked in zip(fast, whole, cuts, self._classes(heads, digests), strict=True):
            out[i] = masked + v[cut:]
        return out

    def _phone(self, values: Column, keep: int) -> list:
        out: list = [None] * len(values)
        match = algorithms.PHONE_PATTERN.match
        fast, encoded, digits = [], [], []
        for i, v in enumerate(values):
            if type(v) is str and match(v) is not None:
                b = v.encode()
                d = b.translate(None, _PHONE_PUNCTUATION)
                if 7 <= len(d) <= 15 and d.isdigit():
                    fast.append(i)
                    encoded.append(b)
                    digits.append(d)
        to_digit = algorithms.TO_DIGIT
        for i, b, d, stream in zip(fast, encoded, digits, self.digests("phone", digits), strict=True):
            split, template = self._layout(b)
            kept = d[:keep] + stream[keep : len(d)].translate(to_digit)
            out[i] = (template % split(kept)).decode()
        return out

    def _layout(self, value: bytes) -> tuple[Callable[[bytes], tuple[bytes, ...]], bytes]:
        """For a phone number's layout (its digits as 9s): split the new digits into its runs, and the
        %-template that puts them between its punctuation."""
        return self._layout_of_shape(value.translate(_DIGIT_TO_9))

    def _layout_of_shape(self, shape: bytes) -> tuple[Callable[[bytes], tuple[bytes, ...]], bytes]:
        found = self._layouts.get(shape)
        if found is None:
            runs = re.findall(rb"9+", shape)
            template = re.sub(rb"9+", b"%s", shape.replace(b"%", b"%%"))
            found = (struct.Struct("".join(f"{len(r)}s" for r in runs)).unpack, template)
            if len(self._layouts) < 10_000:
                self._layouts[shape] = found
        return found

    @staticmethod
    def _classes(values: list[bytes], streams: list[bytes]) -> list[str]:
        """`algorithms._same_classes` of each ASCII value with its stream (at least as long), all at once."""
        if not values:
            return []
        blob = b"\x00".join(values)
        if blob.count(0) != len(values) - 1:  # a NUL of its own: one by one
            same = algorithms.same_classes_ascii
            return [same(v, s).decode("ascii") for v, s in zip(values, streams, strict=True)]
        parts = map(bytes.__getitem__, streams, map(slice, map(len, values)))
        out = algorithms.same_classes_ascii(blob, b"\x00".join(parts))
        return out.decode("ascii").split("\x00")

    # --- date_shift ----------------------------------------------------------------------------------

    def day_shifts(self, row_keys: list, max_days: int) -> list[int]:
        """`algorithms.date_shift_days` of each row key (UTF-8 bytes; with the helper, str or int too)."""
        if self.compiled is not None:
            return self.compiled.day_shifts(self.key, row_keys, max_days)
        heads = b"".join(map(_HEAD8, self.digests("date_shift", row_keys)))
        numbers = map(mod, struct.unpack(f">{len(row_keys)}Q", heads), repeat(2 * max_days))
        days = list(map(sub, numbers, repeat(max_days)))  # in [-max_days, max_days): skip 0
        return list(map(add, days, map(ge, days, repeat(0))))

    def _date_shift(self, values: Column, row_keys: list, max_days: int) -> tuple[list, int]:
        shifts = self.day_shifts(row_keys, max_days)
        if None not in values:
            deltas = self._deltas.get(max_days)
            if deltas is None:  # a shift's timedelta by index (a negative shift counts from the end)
                every = [*range(max_days + 1), *range(-max_days, 0)]
                deltas = self._deltas[max_days] = list(map(dt.timedelta, every))
            try:
                return list(map(add, values, map(deltas.__getitem__, shifts))), 0
            except (TypeError, OverflowError):
                pass  # a value that is not a date, or leaves the calendar: one by one
        out: list = list(values)
        bad = 0
        for i, (v, days) in enumerate(zip(values, shifts, strict=True)):
            if v is None:
                continue
            if not isinstance(v, dt.date):
                bad += 1
                continue
            try:
                out[i] = v + dt.timedelta(days=days)
            except OverflowError:
                bad += 1
        return out, bad


def _reference(rule: ColumnRule, key: bytes, value: object) -> object:
    if rule.algorithm is Algorithm.HASH:
        return algorithms.hash_identifier(key, value)
    if rule.algorithm is Algorithm.EMAIL:
        return algorithms.email(key, value, rule.keep_domain)
    return algorithms.phone(key, value, rule.keep_leading_digits)
