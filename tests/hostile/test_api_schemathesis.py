"""Schemathesis over the whole OpenAPI schema (/api/schema/), with each role's token.

Every operation of the schema the application publishes — including endpoints added later, which
are picked up without touching this file — is called with generated valid and invalid requests
(random ids, our organisation's ids, the other organisation's ids), as each of the six roles,
through the WSGI application. Checks: no 5xx; nothing of the other organisation in any answer;
an id of the other organisation is a 404 (or 403/405: never its data); a 4xx carries a message.
"""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import FOREIGN_MARKERS, ROLES, examples

pytestmark = pytest.mark.django_db(transaction=True)

INVARIANTS = [
    "no 5xx",
    "nothing of the other organisation in any response",
    "the other organisation's ids: 404 (or 403/405), never its data",
    "every 4xx carries a message",
]


# 5xx already reported with a reproduction (tests/hostile/test_explicit.py, xfail strict) and a proposed
# patch: tolerated here so that Schemathesis keeps checking everything else. Remove once fixed.
KNOWN_5XX: dict = {}  # 5xx found and not yet fixed, with the test that shows each (none today)


def _schema(user):
    """The schema needs authentication (issue 17): read with a user's token."""
    import schemathesis

    from config.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/", application,
                                          headers={"Authorization": f"Token {user.api_token}"})


def _ids_for(world, which: str) -> dict:
    if which == "own":
        return {"id": world.recording.pk}
    return {"id": world.foreign_recording.pk}


def _id_param(operation) -> bool:
    return "{id}" in operation.path


def test_every_operation_as_each_role_never_fails_nor_leaks(world, reliability):
    """One world (two organisations, real recordings) for the six roles; one report row per role."""
    schema = _schema(world.users["officer"])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, [f"{o.method} {o.path}" for o in operations]
    failures: list[str] = []
    for role in ROLES:
        row = reliability.part(role).describe(
            category="Hostile input", title=f"Schemathesis: every API operation as {role}",
            how="All operations of /api/schema/ through the WSGI app with this role's token: generated valid "
                "and invalid (negative) requests with random ids, our organisation's ids and the other's",
            invariants=INVARIANTS, unit="case")
        row.figure("operations", len(operations))
        _fuzz_as(role, world, operations, row, failures)
    assert not failures, f"{len(failures)} problem(s):\n" + "\n".join(dict.fromkeys(failures))


def _fuzz_as(role, world, operations, reliability, failures) -> None:
    from schemathesis.generation import GenerationMode

    user = world.users[role]
    auth = {"Authorization": f"Token {user.api_token}"}
    foreign_ids = {"recording": world.foreign_recording.pk, "hold": world.foreign_hold.pk}

    statuses: dict[int, int] = {}
    for operation in operations:
        strategies = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
        if _id_param(operation):
            for which in ("own", "foreign"):
                ids = _ids_for(world, which) if "/holds/" not in operation.path else {
                    "id": world.hold.pk if which == "own" else world.foreign_hold.pk}
                strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=ids))

        @settings(max_examples=examples(4), deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(*strategies))
        def run(case):
            reliability.tally()
            response = case.call(headers=auth)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            where = f"{role} {case.method} {case.formatted_path}"
            text = response.content.decode("utf-8", "replace") if response.content else ""
            if response.status_code >= 500:
                known = KNOWN_5XX.get((case.method.upper(), operation.path))
                if known:
                    reliability.finding(f"{case.method.upper()} {operation.path} → {response.status_code} (known, "
                                        f"reported): {known}")
                else:
                    failures.append(f"{where} → {response.status_code}: {text[:200]}")
                return
            for marker in FOREIGN_MARKERS:
                if marker in text:
                    failures.append(f"{where} → {response.status_code} leaks {marker!r}")
            pk = case.path_parameters.get("id") if case.path_parameters else None
            foreign = pk == foreign_ids["hold"] if "/holds/" in operation.path else pk == foreign_ids["recording"]
            if foreign and response.status_code < 400:
                failures.append(f"{where} → {response.status_code}: the other organisation's object answered")
            if 400 <= response.status_code < 500 and response.status_code != 405 and not text.strip():
                failures.append(f"{where} → {response.status_code} without any message")
            if 400 <= response.status_code < 500 and "json" in response.headers.get("Content-Type", ""):
                json.loads(text)  # an error body that says something, in valid JSON

        run()
    reliability.figure("statuses", {str(k): v for k, v in sorted(statuses.items())})
