"""The result annotation's encoding: small reports plain, large ones compressed, nothing expands unbounded."""

from __future__ import annotations

import base64
import gzip
import json
import random

import pytest

from datajobs.core.report import DECODED_LIMIT, GZIP_PREFIX, ReportTooLarge, decode_report, encode_report


def test_small_reports_stay_readable_and_large_ones_round_trip_compressed():
    small = {"status": "SUCCEEDED", "log_message": "ok"}
    assert json.loads(encode_report(small)) == small
    large = {"data_integrity_results": [{"model_name": f"m{i}", "rows": i} for i in range(5000)]}
    text = encode_report(large)
    assert text.startswith(GZIP_PREFIX)
    assert json.loads(decode_report(text)) == large


def test_a_report_too_large_even_compressed_is_refused_at_the_worker():
    noise = base64.b64encode(random.Random(0).randbytes(300_000)).decode()  # 400 KB that hardly compress
    with pytest.raises(ReportTooLarge):
        encode_report({"log_message": noise})


def test_decoding_never_expands_past_the_limit():
    bomb = GZIP_PREFIX + base64.b64encode(gzip.compress(b" " * (DECODED_LIMIT * 4))).decode()
    with pytest.raises(ValueError, match="expands past"):
        decode_report(bomb)
    with pytest.raises(ValueError, match="not gzip"):
        decode_report(GZIP_PREFIX + base64.b64encode(b"plain").decode())
