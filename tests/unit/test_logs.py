"""JSON log lines carry the message and the structured fields a handler attached."""

from __future__ import annotations

import json
import logging

from datajobs.logs import JsonFormatter


def test_json_formatter_includes_extra_fields_and_nothing_standard():
    record = logging.LogRecord("datajobs.operator", logging.INFO, __file__, 1, "job %s", ("a/b",), None)
    record.kind = "IntegrityJob"
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "job a/b" and line["kind"] == "IntegrityJob" and line["level"] == "INFO"
    assert "args" not in line and "pathname" not in line
