"""Issue 15: the wearer reads what was done with their recording, without third parties' names nor
the motifs and recipients of procedures others started; the full report stays with supervisor,
legal staff, DPO and mayor."""
from __future__ import annotations

import pytest
from django.test import Client

from tests.auth import sign_in

from .helpers import api

pytestmark = pytest.mark.django_db(transaction=True)

MOTIF = "Enquête administrative visant l'agent Martin"
RECIPIENT = "Conseil de discipline de Chambéry"


def test_the_wearer_sees_what_was_done_without_who_asked_why_nor_for_whom(recordings, users):
    rec = recordings[0]
    assert rec.wearer == users["officer"]
    response = api(users["legal"]).post(f"/api/recordings/{rec.pk}/extractions/", {
        "purpose": "disciplinary", "recipient": RECIPIENT, "motif": MOTIF}, format="json")
    assert response.status_code == 201, response.content

    wearer = sign_in(Client(), users["officer"])
    page = wearer.get(f"/enregistrements/{rec.pk}/tracabilite/")
    pdf = wearer.get(f"/enregistrements/{rec.pk}/tracabilite.pdf")
    full = sign_in(Client(), users["supervisor"]).get(f"/enregistrements/{rec.pk}/tracabilite/").content.decode()

    assert page.status_code == 200 and pdf.status_code == 200
    text = page.content.decode()
    for secret in (MOTIF, RECIPIENT, users["legal"].username, "Enquête administrative"):
        assert secret not in text, secret
    assert "service juridique" in text and "réservé aux personnes habilitées" in text
    assert "Version de l&#x27;agent" in text or "Version de l'agent" in text
    assert MOTIF.replace("'", "&#x27;") in full and RECIPIENT in full and users["legal"].username in full
