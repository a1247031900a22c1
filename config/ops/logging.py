"""Structured logs: one JSON object per line (TEMOIN_LOG_FORMAT=json), human text otherwise.

Every record carries the request id (``RequestIdMiddleware``: the proxy's X-Request-ID, or a new
one, echoed in the response) and, inside a Celery task, the task id and name, so that one offload
or one HTTP request can be followed across gunicorn workers and Celery workers.
"""
from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import uuid

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("temoin_request_id", default="")

# Attributes every LogRecord has; anything else was passed with ``extra=`` and goes in the object.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id", "task_id", "task_name"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _current_task():
    try:
        from celery import current_task
    except ImportError:  # pragma: no cover - celery is a dependency
        return None
    task = current_task
    return task if task and getattr(task, "request", None) is not None and task.request.id else None


class ContextFilter(logging.Filter):
    """Adds ``request_id``, ``task_id`` and ``task_name`` (empty when not known) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id_var.get()
        if not getattr(record, "task_id", ""):
            task = _current_task()
            record.task_id = task.request.id if task else ""
            record.task_name = task.name if task else ""
        elif not hasattr(record, "task_name"):
            record.task_name = ""
        return True


class JsonFormatter(logging.Formatter):
    """timestamp (UTC, RFC 3339), level, logger, message; request_id/task_id when known; the
    exception's traceback as ``exc``; values passed with ``extra=`` as they are (or as text)."""

    def format(self, record: logging.LogRecord) -> str:
        body = {
            "timestamp": dt.datetime.fromtimestamp(record.created, tz=dt.timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("request_id", "task_id", "task_name"):
            value = getattr(record, name, "")
            if value:
                body[name] = value
        body["process"] = record.process
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                body[key] = value
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            body["exc"] = record.exc_text
        if record.stack_info:
            body["stack"] = self.formatStack(record.stack_info)
        return json.dumps(body, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The human format, with the request or task id in brackets when there is one."""

    def __init__(self, fmt=None, datefmt=None, style="%", **kwargs):
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s%(context)s %(message)s", datefmt, style, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        ids = [x for x in (getattr(record, "request_id", ""), getattr(record, "task_id", "")) if x]
        record.context = f" [{' '.join(ids)}]" if ids else ""
        return super().format(record)


class RequestIdMiddleware:
    """Binds a request id to the logs of this request: the reverse proxy's X-Request-ID when it is a
    plain token, else a new one; returned in the X-Request-ID response header."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response
