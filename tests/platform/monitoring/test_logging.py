from __future__ import annotations

import io
import json
import logging

from marketpilot.platform.monitoring import configure_logging, request_id


def test_logs_are_json_lines_carrying_the_current_request_id() -> None:
    stream = io.StringIO()
    handler = configure_logging("info", stream)
    try:
        log = logging.getLogger("marketpilot.test")
        token = request_id.set("r-1")
        log.info("inside %s", "request", extra={"listing_id": "l1"})
        request_id.reset(token)
        log.warning("outside")
    finally:
        logging.getLogger().removeHandler(handler)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["message"] == "inside request" and inside["request_id"] == "r-1"
    assert inside["listing_id"] == "l1" and inside["level"] == "INFO" and inside["logger"] == "marketpilot.test"
    assert outside["request_id"] is None and "time" in outside


def test_configuring_twice_keeps_one_handler() -> None:
    root = logging.getLogger()
    before = len(root.handlers)
    first = configure_logging("info", io.StringIO())
    second = configure_logging("debug", io.StringIO())
    try:
        assert first not in root.handlers and second in root.handlers
        assert len(root.handlers) == before + 1
    finally:
        root.removeHandler(second)
