"""The API's JSON parser: what JSON allows but nothing downstream can store or compute is refused
here, with a 400, before any serializer or database sees it (issue 17, finding 5).

- nesting deeper than ``MAX_DEPTH`` (Python's decoder recursed until RecursionError: a 500);
- lone UTF-16 surrogates (``"\\ud800"``: PostgreSQL refuses the text, after retries: 30 s then a
  500) and NUL characters (PostgreSQL's text cannot hold them), in keys and in values;
- numbers that are not finite doubles: ``NaN``, ``Infinity`` and ``1e400`` (which Python reads as
  infinity and later code turns into an OverflowError);
- a document that is not an object: every operation of this API takes an object, and views that
  read ``request.data.get(…)`` answered a list, a string or ``null`` with an AttributeError (a 500).
"""
from __future__ import annotations

import json
import math

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


class _Refused(ValueError):
    pass


def _constant(name: str):
    raise _Refused(f"{name} is not a number this API accepts")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"number {text[:40]} is out of range")
    return value


def _int(text: str) -> int:
    if len(text) > 40:  # far beyond any id or count: refused before Python builds a huge integer
        raise _Refused("integer out of range")
    return int(text)


def _text_problem(text: str) -> str:
    if "\x00" in text:
        return "NUL character in a string"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "lone UTF-16 surrogate in a string (not valid Unicode)"
    return ""


def _depth_before_parse(raw: str) -> int:
    """The bracket depth of the document, counted without recursion (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in raw:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def validate_document(data) -> None:
    """Every key and string of a parsed document checked, iteratively."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            problem = _text_problem(item)
            if problem:
                raise _Refused(problem)
        elif isinstance(item, dict):
            for key, value in item.items():
                problem = _text_problem(key)
                if problem:
                    raise _Refused(problem + " (a key)")
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def strict_loads(raw: str):
    # The character scan only when the brackets could nest that deep (counting is done in C).
    if raw.count("[") + raw.count("{") > MAX_DEPTH and _depth_before_parse(raw) > MAX_DEPTH:
        raise _Refused(f"JSON nested deeper than {MAX_DEPTH} levels")
    data = json.loads(raw, parse_constant=_constant, parse_float=_float, parse_int=_int)
    validate_document(data)
    return data


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            raw = stream.read().decode(encoding) if stream is not None else ""
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - the body is not valid {encoding}") from exc
        if not raw.strip():
            raise ParseError("JSON parse error - empty body")
        try:
            data = strict_loads(raw)
            if not isinstance(data, dict):
                raise _Refused(f"the body must be a JSON object, not {type(data).__name__}")
            return data
        except _Refused as exc:
            raise ParseError(f"JSON refused - {exc}") from exc
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {str(exc)[:200]}") from exc
