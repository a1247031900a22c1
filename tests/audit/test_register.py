"""The registre des consultations, extractions et effacements (CSI R241-14): who reads it, its
filters, its CSV and PDF exports, and GET /api/register/."""
from __future__ import annotations

from tests.auth import sign_in

import csv
import datetime as dt
import io

import pytest
from django.db import transaction
from django.test import Client
from rest_framework.test import APIClient

from accounts.services import organisation_create
from audit import pdf
from audit.models import CustodyEvent
from audit.services import custody_event_append
from devices.services import camera_register

from .helpers import make_recording

pytestmark = pytest.mark.django_db
UTC = dt.timezone.utc


def at(day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, 0, tzinfo=UTC)


@pytest.fixture
def people(make_user):
    return {role: make_user(f"u-{role}", role=role, matricule=f"{role[:2].upper()}01")
            for role in ("officer", "supervisor", "legal", "dpo", "mayor", "admin")}


@pytest.fixture
def entries(people, camera, officer):
    """Two consultations, an extraction, an export, a share, an erasure; and entries that are not
    register entries (a hold). One consultation of another organisation."""
    rec = make_recording(camera=camera, wearer=officer)
    other_rec = make_recording(camera=camera, wearer=officer)
    sup, lawyer = people["supervisor"], people["legal"]
    rows = [
        ("recording.consulted", rec, sup, "Contrôle hiérarchique", [], at(2)),
        ("recording.consulted", other_rec, lawyer, "Plainte n° 2026-118", [], at(5)),
        ("recording.extracted", rec, lawyer, "Réquisition judiciaire", ["Tribunal judiciaire de Chambéry"], at(6)),
        ("export.created", rec, lawyer, "Procédure disciplinaire", ["Conseil de discipline"], at(7)),
        ("share.created", rec, lawyer, "Procédure disciplinaire", ["Me Lefèvre, avocat"], at(8)),
        ("recording.erased", other_rec, None, "", [], at(9)),
        ("hold.placed", rec, lawyer, "PV 2026/77", [], at(10)),
    ]
    with transaction.atomic():
        for action, recording, actor, motif, recipients, when in rows:
            custody_event_append(action=action, subject=recording, actor=actor, motif=motif, recipients=recipients,
                                 now=when, actor_label="" if actor else "system:retention")
        elsewhere = organisation_create(slug="annecy", name="Police municipale d'Annecy")
        cam = camera_register(serial="BWC-9000", organisation=elsewhere)
        custody_event_append(action="recording.consulted", subject=make_recording(camera=cam), motif="ailleurs",
                             actor_label="user:annecy", now=at(4))
    return {"rec": rec, "other": other_rec}


def client_for(user) -> Client:
    c = Client()
    sign_in(c, user)
    return c


def api(user) -> APIClient:
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {user.api_token}")
    return c


@pytest.mark.parametrize("role, status", [("mayor", 200), ("dpo", 200), ("legal", 200), ("officer", 403),
                                          ("supervisor", 403), ("admin", 403)])
def test_only_the_mayor_the_dpo_and_legal_staff_read_the_register(role, status, people, entries):
    assert client_for(people[role]).get("/registre/").status_code == status
    assert api(people[role]).get("/api/register/").status_code == status


def test_the_register_lists_consultations_extractions_and_erasures_of_the_organisation_only(people, entries):
    page = client_for(people["mayor"]).get("/registre/")
    body = page.content.decode()

    assert page.context["page"].paginator.count == 6
    assert "Réquisition judiciaire" in body and "Tribunal judiciaire de Chambéry" in body
    assert "ailleurs" not in body  # another organisation's consultation
    assert "PV 2026/77" not in body  # a hold is not a register entry
    assert "Registre des consultations, extractions et effacements" in body


@pytest.mark.parametrize("kind, actions", [
    ("consultation", {"recording.consulted"}),
    ("extraction", {"recording.extracted", "export.created", "share.created"}),
    ("erasure", {"recording.erased"}),
])
def test_the_api_filters_by_kind(kind, actions, people, entries):
    response = api(people["dpo"]).get(f"/api/register/?kind={kind}")

    data = response.json()
    assert {r["action"] for r in data["results"]} == actions
    assert data["count"] == len(data["results"]) and {r["kind"] for r in data["results"]} == {kind}


def test_the_api_entries_carry_author_date_motif_and_recipients(people, entries):
    data = api(people["legal"]).get("/api/register/?kind=extraction").json()

    share = next(r for r in data["results"] if r["action"] == "share.created")
    assert share["author"] == "user:u-legal" and share["author_username"] == "u-legal"
    assert share["motif"] == "Procédure disciplinaire" and share["recipients"] == ["Me Lefèvre, avocat"]
    assert share["occurred_at"].startswith("2026-11-08T") and share["recording"] == entries["rec"].pk


def test_the_api_is_paginated_and_rejects_unknown_kinds(people, entries):
    with transaction.atomic():
        for i in range(60):
            custody_event_append(action="recording.consulted", subject=entries["rec"], actor=people["supervisor"],
                                 motif=f"contrôle {i}")
    first = api(people["mayor"]).get("/api/register/?kind=consultation").json()
    second = api(people["mayor"]).get("/api/register/?kind=consultation&page=2").json()

    assert first["count"] == 62 and len(first["results"]) == 50 and len(second["results"]) == 12
    assert api(people["mayor"]).get("/api/register/?kind=other").status_code == 400


def test_the_page_filters_by_period_author_recording_and_kind(people, entries):
    c = client_for(people["mayor"])

    def seqs(query):
        return {r["seq"] for r in c.get(f"/registre/?{query}").context["rows"]}

    all_entries = {e.seq: e for e in CustodyEvent.objects.all()}
    by_action = lambda *actions: {s for s, e in all_entries.items() if e.action in actions  # noqa: E731
                                  and e.organisation_id == people["mayor"].organisation_id}
    assert seqs("du=2026-11-05&au=2026-11-06") == by_action("recording.consulted", "recording.extracted") - {
        s for s, e in all_entries.items() if e.occurred_at < at(5)}
    assert seqs("auteur=u-supervisor") == {s for s, e in all_entries.items() if e.actor_label == "user:u-supervisor"}
    assert seqs(f"enregistrement={entries['other'].pk}") == {
        s for s, e in all_entries.items() if e.recording_id == entries["other"].pk and e.action != "hold.placed"}
    assert seqs("nature=erasure") == by_action("recording.erased")
    assert c.get("/registre/?du=pas-une-date").context["page"].paginator.count == 0


def test_the_csv_export_has_every_entry_and_is_itself_logged(people, entries):
    response = client_for(people["dpo"]).get("/registre/export.csv?nature=extraction")

    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert response["Content-Type"].startswith("text/csv")
    assert rows[0][:4] == ["n°", "date et heure", "fuseau", "auteur"]
    assert {r[6] for r in rows[1:]} == {"recording.extracted", "export.created", "share.created"}
    assert any("Me Lefèvre, avocat" in r[9] for r in rows[1:])
    logged = CustodyEvent.objects.get(action="register.exported")
    assert logged.actor == people["dpo"] and logged.details["format"] == "csv" and logged.details["entries"] == 3


def test_the_pdf_export_renders_french_text_with_an_embedded_unicode_font(people, entries):
    response = client_for(people["mayor"]).get("/registre/export.pdf")

    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    regular, _, _ = pdf.fonts()
    if regular == "DejaVuSans":
        from reportlab.pdfbase import pdfmetrics

        assert b"DejaVuSans" in response.content
        face = pdfmetrics.getFont(regular).face
        assert all(ord(ch) in face.charToGlyph for ch in "éèàçôœ«»—°")
    assert CustodyEvent.objects.filter(action="register.exported", details__format="pdf").exists()


def test_a_motif_or_recipient_written_as_a_formula_reaches_the_csv_as_text(people, camera, officer):
    """OWASP CSV injection: the DPO, legal staff and mayor open this file in a spreadsheet."""
    rec = make_recording(camera=camera, wearer=officer)
    hostile = '=HYPERLINK("http://evil.example/","voir")'
    with transaction.atomic():
        custody_event_append(action="recording.consulted", subject=rec, actor=people["officer"], motif=hostile,
                             now=at(3))
        custody_event_append(action="recording.extracted", subject=rec, actor=people["legal"], motif="+1+cmd|' /C calc'!A0",
                             recipients=["@SUM(1+1)*cmd|' /C calc'!A0"], now=at(4))
        custody_event_append(action="recording.consulted", subject=rec, actor=people["officer"],
                             motif="\t-2+3", now=at(5))

    response = client_for(people["dpo"]).get("/registre/export.csv")

    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    motifs = {r[8] for r in rows[1:]}
    assert "'" + hostile in motifs and hostile not in motifs
    assert "'+1+cmd|' /C calc'!A0" in motifs and "'\t-2+3" in motifs
    assert any(r[9] == "'@SUM(1+1)*cmd|' /C calc'!A0" for r in rows[1:])
    # No cell of any row starts with a character a spreadsheet reads as a formula.
    assert not [c for r in rows for c in r if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert all(line.startswith('"') for line in text.splitlines()[1:] if line)
