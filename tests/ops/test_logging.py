"""Structured logs: JSON lines with TEMOIN_LOG_FORMAT=json, text otherwise; request and task ids."""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from config.ops.logging import ContextFilter, JsonFormatter, RequestIdMiddleware, TextFormatter

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def capture():
    """A logger writing through the project's filter and the given formatter into a buffer."""
    made = []

    def make(formatter: logging.Formatter):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.addFilter(ContextFilter())
        handler.setFormatter(formatter)
        logger = logging.getLogger(f"temoin.test.{len(made)}")
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        logger.addHandler(handler)
        made.append((logger, handler))
        return logger, stream

    yield make
    for logger, handler in made:
        logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_object_with_extra_fields_and_the_traceback(capture):
    logger, stream = capture(JsonFormatter())

    logger.info("clip %s stored", "CLIP0001.MP4", extra={"recording": 42, "bytes": 1024})
    try:
        raise ValueError("disque plein\nsur deux lignes")
    except ValueError:
        logger.exception("échec du stockage")

    first, second = lines(stream)
    assert first["message"] == "clip CLIP0001.MP4 stored" and first["level"] == "INFO"
    assert first["logger"] == logger.name and first["recording"] == 42 and first["bytes"] == 1024
    assert first["timestamp"].endswith("Z") and "T" in first["timestamp"]
    assert "request_id" not in first and "task_id" not in first
    assert second["level"] == "ERROR" and second["message"] == "échec du stockage"
    assert "ValueError: disque plein" in second["exc"]
    assert len(stream.getvalue().splitlines()) == 2  # the multi-line traceback stays inside one line


def test_the_request_id_is_in_every_record_and_in_the_response(capture):
    logger, stream = capture(JsonFormatter())

    def view(request):
        logger.warning("inside the view")
        return HttpResponse("ok")

    middleware = RequestIdMiddleware(view)
    given = middleware(RequestFactory().get("/", HTTP_X_REQUEST_ID="proxy-abc.123"))
    made = middleware(RequestFactory().get("/"))
    hostile = middleware(RequestFactory().get("/", HTTP_X_REQUEST_ID="x\n{\"level\": \"forged\"}"))
    logger.warning("after the request")

    records = lines(stream)
    assert given["X-Request-ID"] == "proxy-abc.123" == records[0]["request_id"]
    assert len(made["X-Request-ID"]) == 32 and records[1]["request_id"] == made["X-Request-ID"]
    assert hostile["X-Request-ID"] != "x\n{\"level\": \"forged\"}" and records[2]["request_id"] == hostile["X-Request-ID"]
    assert "request_id" not in records[3]


def test_the_celery_task_id_is_in_the_records_of_a_task(capture, settings):
    from celery import shared_task

    logger, stream = capture(JsonFormatter())

    @shared_task(name="tests.ops.log_something")
    def log_something():
        logger.info("in the task")

    result = log_something.apply_async()

    (record,) = lines(stream)
    assert record["task_id"] == result.id and record["task_name"] == "tests.ops.log_something"


def test_the_text_format_keeps_the_ids_in_brackets(capture):
    logger, stream = capture(TextFormatter())

    RequestIdMiddleware(lambda request: (logger.info("hello"), HttpResponse())[1])(
        RequestFactory().get("/", HTTP_X_REQUEST_ID="req-1"))

    assert stream.getvalue().rstrip().endswith("INFO " + logger.name + " [req-1] hello")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_the_log_format_setting_chooses_json_lines_or_text(fmt, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMOIN_", "DATABASE_URL"))}
    env.update(TEMOIN_DATA_DIR=str(tmp_path), TEMOIN_LOG_FORMAT=fmt)
    code = "import logging; logging.getLogger('temoin.ops').warning('dock %s offline', 'poste-nord')"

    proc = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=True)

    line = [x for x in proc.stderr.splitlines() if "poste-nord" in x][-1]
    if fmt == "json":
        record = json.loads(line)
        assert record["logger"] == "temoin.ops" and record["level"] == "WARNING"
        assert record["message"] == "dock poste-nord offline"
    else:
        assert line.endswith("WARNING temoin.ops dock poste-nord offline")
        with pytest.raises(ValueError):
            json.loads(line)
