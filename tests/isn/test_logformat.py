"""ISN_LOG_FORMAT=json (isn.logformat): one JSON object a line with the promised fields, nothing passed in passing."""

from __future__ import annotations

import io
import json
import logging

from django.test import RequestFactory

from isn.logformat import JsonFormatter, TaskLogFilter
from isn.middleware import RequestIdLogFilter
from tests.isn.test_settings import _manage


def _formatted(emit) -> list[dict]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdLogFilter())
    handler.addFilter(TaskLogFilter())
    logger = logging.getLogger("isn.test_logformat")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_a_record_is_one_object_with_time_level_logger_message_and_request_id():
    (record,) = _formatted(lambda logger: logger.warning("sealed %d events", 3))
    assert record.keys() == {"time", "level", "logger", "message", "request_id"}
    assert record["level"] == "WARNING"
    assert record["logger"] == "isn.test_logformat"
    assert record["message"] == "sealed 3 events"
    assert record["request_id"] == "-"
    assert record["time"].endswith("+00:00")


def test_what_is_passed_as_extra_is_left_out_but_the_status():
    request = RequestFactory().get("/api/v1/items/?q=secret-search-term")
    (record,) = _formatted(
        lambda logger: logger.warning("Not Found: %s", request.path, extra={"status_code": 404, "request": request})
    )
    assert record["status_code"] == 404
    assert "secret-search-term" not in json.dumps(record)


def test_an_exception_keeps_its_traceback():
    def emit(logger):
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")

    (record,) = _formatted(emit)
    assert "ValueError: boom" in record["exception"]


def test_the_request_id_of_a_request_is_in_its_records(client, caplog):
    response = client.get("/api/v1/no-such-thing/", HTTP_X_REQUEST_ID="trace-0123456789")
    assert response["X-Request-ID"] == "trace-0123456789"
    records = [r for r in caplog.records if r.name == "django.request"]
    assert records
    assert all(r.request_id == "trace-0123456789" for r in records)
    assert json.loads(JsonFormatter().format(records[0]))["request_id"] == "trace-0123456789"


def test_the_setting_chooses_the_format_and_refuses_others():
    assert "ISN_LOG_FORMAT must be one of line, json" in _manage("check", ISN_LOG_FORMAT="xml").stderr
    result = _manage("shell", "-c", "import logging; logging.getLogger('isn').warning('hello')", ISN_LOG_FORMAT="json")
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("{")]
    assert json.loads(line)["message"] == "hello"
