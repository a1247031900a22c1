"""Issue 20: a package is for a French court or a French data subject: started by a user whose
interface is in English, its custody reports and README are still in French."""
from __future__ import annotations

import pytest
from django.conf import settings

from evidence.disclosure.models import Export

from .helpers import api, download, extract_zip
from .test_package import _pdf_text

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_package_started_from_an_english_interface_keeps_its_reports_in_french(
        recordings, users, tmp_path, local_store, monkeypatch):
    from audit import pdf

    monkeypatch.setattr(pdf, "_fonts", ("Helvetica", "Helvetica-Bold", "Courier"))  # text readable in the PDF
    client = api(users["legal"])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    # Celery runs eagerly in the tests: the build runs inside this request, whose language is English.
    response = client.post("/api/exports/", {"recordings": [r.pk for r in recordings], "purpose": "judicial",
                                             "recipient": "Parquet de Chambéry", "motif": "PV 2026/01234",
                                             "redaction": "none"}, format="json")
    assert response.status_code == 201, response.content
    detail = client.get(f"/api/exports/{response.json()['id']}/").json()
    assert detail["status"] == "ready", detail
    root = extract_zip(download(client, detail["download_url"]), tmp_path / "unzipped")

    for r in recordings:
        text = _pdf_text((root / f"reports/tracabilite-{r.pk}.pdf").read_bytes())
        assert "Rapport de traçabilité" in text and "Identifiants" in text and "extraction" in text
        assert "Custody report" not in text and "Identifiers" not in text
    assert Export.objects.get().status == "ready"
