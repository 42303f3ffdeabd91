"""The worker's full final report on its pod's `datajobs.io/result` annotation: encoding and decoding.

The termination message holds at most 4096 bytes; an annotation up to the API server's 256 KiB for all of a
pod's annotations. Small reports are plain JSON; larger ones gzip-compressed and base64-encoded."""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from typing import Any

ANNOTATION_RESULT = "datajobs.io/result"
GZIP_PREFIX = "gzip+base64,"
PLAIN_LIMIT = 16 * 1024  # bytes of JSON kept readable as they are
ANNOTATION_LIMIT = 200 * 1024  # what one annotation may use of the pod's 256 KiB (the rest for the others)
DECODED_LIMIT = 1024 * 1024  # a report never expands past this (the job's status must still fit in etcd)


class ReportTooLarge(ValueError):
    """The report does not fit in an annotation even compressed."""


def encode_report(report: dict[str, Any]) -> str:
    """The report as annotation text: JSON, or gzip+base64 of it when long. Raises ReportTooLarge."""
    data = json.dumps(report, separators=(",", ":"), ensure_ascii=False).encode()
    if len(data) > DECODED_LIMIT:
        raise ReportTooLarge(f"the report is {len(data)} bytes of JSON, more than {DECODED_LIMIT}")
    if len(data) <= PLAIN_LIMIT:
        return data.decode()
    text = GZIP_PREFIX + base64.b64encode(gzip.compress(data, mtime=0)).decode()
    if len(text) > ANNOTATION_LIMIT:
        raise ReportTooLarge(f"the report is {len(text)} bytes compressed, more than {ANNOTATION_LIMIT}")
    return text


def decode_report(text: str) -> str:
    """The report's JSON text from annotation text. Raises ValueError when it is not a valid encoding."""
    if not text.startswith(GZIP_PREFIX):
        return text
    try:
        packed = base64.b64decode(text[len(GZIP_PREFIX) :], validate=True)
        inflater = zlib.decompressobj(wbits=31)  # gzip framing
        data = inflater.decompress(packed, DECODED_LIMIT + 1)
    except (binascii.Error, zlib.error) as exc:
        raise ValueError(f"not gzip+base64: {exc}") from exc
    if len(data) > DECODED_LIMIT or inflater.unconsumed_tail:
        raise ValueError(f"expands past {DECODED_LIMIT} bytes")
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8: {exc}") from exc
