"""Finding 7 of issue 17: what an anonymous visitor learns of the routes. DEBUG's 404 page (make run)
listed every route; the OpenAPI schema and its documentation were public."""
from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_debug_404_page_lists_no_route(settings, officer):
    settings.DEBUG = True  # as under make run
    client = Client(raise_request_exception=False)

    for path in ("/nulle-part/", "/api/nothing-here/", "/enregistrements/abc/"):
        response = client.get(path)
        body = response.content.decode()
        assert response.status_code == 404, path
        assert "Page introuvable" in body, path
        for route in ("api/schema", "registre/export.csv", "axis/", "URLconf", "metrics"):
            assert route not in body, (path, route)


def test_the_api_schema_and_its_documentation_need_a_signed_in_user(officer):
    anonymous = Client(raise_request_exception=False)

    assert anonymous.get("/api/schema/").status_code == 401
    docs = anonymous.get("/api/docs/")
    assert docs.status_code == 302 and docs["Location"].startswith("/connexion/")
    token = Client(HTTP_AUTHORIZATION=f"Token {officer.api_token}")
    assert token.get("/api/schema/").status_code == 200
