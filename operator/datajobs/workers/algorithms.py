"""Deterministic masking algorithms, keyed with BLAKE2b (a MAC): the same key and input give the same output.

Each returns the masked value, or raises NonConforming when the value does not fit the algorithm's format
(the worker then leaves it unchanged and counts it). NULL is never passed in: it stays NULL."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import re
import string


class NonConforming(ValueError):
    """A value the algorithm cannot mask without breaking its format."""


def normalize_key(raw: bytes) -> bytes:
    """A key BLAKE2b accepts (at most 64 bytes): longer keys are hashed down to 64 bytes."""
    return raw if len(raw) <= 64 else hashlib.blake2b(raw, digest_size=64).digest()


def _keyed_bytes(key: bytes, label: str, value: str, n: int) -> bytes:
    """`n` keyed pseudo-random bytes for (label, value): keyed BLAKE2b (a MAC) in counter mode."""
    message = f"{label}\x00{value}".encode()
    if n <= 64:
        return hashlib.blake2b(message, key=key, digest_size=64).digest()
    blocks = (n + 63) // 64
    return b"".join(
        hashlib.blake2b(i.to_bytes(4, "big") + message, key=key, digest_size=64).digest()
        for i in range(blocks)
    )


_DIGITS = [chr(48 + b % 10) for b in range(256)]
_LOWER = [chr(97 + b % 26) for b in range(256)]
_UPPER = [chr(65 + b % 26) for b in range(256)]
_CLASS = {c: _DIGITS for c in string.digits} | {c: _LOWER for c in string.ascii_lowercase}
_CLASS |= {c: _UPPER for c in string.ascii_uppercase}

# The same mapping for ASCII text, a whole string per C call: stream byte -> the class's character, and
# value byte -> 0xFF where it is of the class (masks combined as big integers).
TO_DIGIT = bytes(ord(c) for c in _DIGITS)
_TO_LOWER = bytes(ord(c) for c in _LOWER)
_TO_UPPER = bytes(ord(c) for c in _UPPER)
_IS_DIGIT = bytes(255 if chr(b) in string.digits else 0 for b in range(256))
_IS_LOWER = bytes(255 if chr(b) in string.ascii_lowercase else 0 for b in range(256))
_IS_UPPER = bytes(255 if chr(b) in string.ascii_uppercase else 0 for b in range(256))


def _same_classes(chars: str, stream: bytes) -> str:
    """Replace each ASCII digit, lower- and upper-case letter by one of its class; keep the rest.

    Character i uses byte i of the keyed stream (so `stream` must be at least as long as `chars`)."""
    if not chars.isascii():
        return _same_classes_by_char(chars, stream)
    return same_classes_ascii(chars.encode("ascii"), stream).decode("ascii")


def same_classes_ascii(value: bytes, stream: bytes) -> bytes:
    """`_same_classes` of ASCII bytes, in a handful of whole-string C calls (any length, one batch too)."""
    part = stream[: len(value)]
    whole = int.from_bytes
    digit, lower, upper = (whole(value.translate(t)) for t in (_IS_DIGIT, _IS_LOWER, _IS_UPPER))
    out = (
        (whole(value) & ~(digit | lower | upper))
        | (whole(part.translate(TO_DIGIT)) & digit)
        | (whole(part.translate(_TO_LOWER)) & lower)
        | (whole(part.translate(_TO_UPPER)) & upper)
    )
    return out.to_bytes(len(value), "big")


def _same_classes_by_char(chars: str, stream: bytes) -> str:
    """`_same_classes`, one character at a time (any text)."""
    return "".join(
        t[b] if (t := _CLASS.get(c)) is not None else c for c, b in zip(chars, stream, strict=False)
    )


def hash_identifier(key: bytes, value: object) -> str:
    """Keyed hash of the whole value, rendered in the value's own shape (length, digit/letter positions).

    `AB-1234` may become `QX-8051`; equal inputs always give equal outputs, so a column and the foreign
    keys that reference it stay consistent when both are masked with the same key."""
    if not isinstance(value, str) or not value:
        raise NonConforming("hash masks non-empty text")
    if not any(ch.isascii() and ch.isalnum() for ch in value):
        raise NonConforming("no letters or digits to mask")
    return _same_classes(value, _keyed_bytes(key, "hash", value, len(value)))


EMAIL_PATTERN = re.compile(r"^(?P<local>[^@\s]+)@(?P<domain>[^@\s]+\.[^@\s.]+)$")


def email(key: bytes, value: object, keep_domain: bool = True) -> str:
    """`local@domain.tld`: the local part is replaced in its own shape, keyed on the whole (lower-cased)
    address; the domain is kept, or with keep_domain=False its labels are masked too and the TLD kept."""
    if not isinstance(value, str):
        raise NonConforming("email masks text")
    match = EMAIL_PATTERN.match(value)
    if match is None:
        raise NonConforming("not an e-mail address")
    local, domain = match["local"], match["domain"]
    stream = _keyed_bytes(key, "email", value.lower(), len(value))
    masked_local = _same_classes(local, stream)
    if not keep_domain:
        *labels, tld = domain.split(".")
        masked = _same_classes(".".join(labels), stream[len(local) + 1 :])
        domain = f"{masked}.{tld}"
    return f"{masked_local}@{domain}"


PHONE_PATTERN = re.compile(r"^\+?[0-9 ().\-/]+$")
_PHONE_PUNCTUATION = str.maketrans("", "", "+ ().-/")  # what a conforming number has besides digits
_DIGITS_AS_SLOTS = str.maketrans(dict.fromkeys(string.digits, "\x00"))


def phone(key: bytes, value: object, keep_leading_digits: int = 0) -> str:
    """Every digit replaced, keyed on the digits alone (so `+1 555-0100` and `15550100` agree); punctuation,
    spacing, a leading `+` and the first `keep_leading_digits` digits (e.g. a country code) are kept.
    Conforming values have 7 to 15 digits and only `+ ( ) . - /` and spaces besides."""
    if not isinstance(value, str) or PHONE_PATTERN.match(value) is None:
        raise NonConforming("not a phone number")
    digits = value.translate(_PHONE_PUNCTUATION)
    if not 7 <= len(digits) <= 15:
        raise NonConforming("a phone number has 7 to 15 digits")
    stream = _keyed_bytes(key, "phone", digits, len(digits))
    kept = (
        digits[:keep_leading_digits] + stream[keep_leading_digits : len(digits)].translate(TO_DIGIT).decode()
    )
    slots = value.translate(_DIGITS_AS_SLOTS).split("\x00")  # the layout around each digit
    return "".join(itertools.chain.from_iterable(zip(slots, kept, strict=False))) + slots[-1]


def date_shift_days(key: bytes, row_key: str, max_days: int) -> int:
    """The row's shift: a keyed, never-zero number of days in [-max_days, max_days]."""
    number = int.from_bytes(_keyed_bytes(key, "date_shift", row_key, 8)[:8], "big") % (2 * max_days)
    return number - max_days if number < max_days else number - max_days + 1


def date_shift(key: bytes, value: object, row_key: str, max_days: int = 365) -> dt.date | dt.datetime:
    """Shift a date or timestamp by the row's keyed offset (all date columns of a row move together, so
    intervals within a row are kept)."""
    if not isinstance(value, dt.date):
        raise NonConforming("date_shift masks dates and timestamps")
    days = date_shift_days(key, row_key, max_days)
    try:
        return value + dt.timedelta(days=days)
    except OverflowError as exc:
        raise NonConforming("shifted date out of range") from exc
