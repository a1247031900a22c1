"""Issue 20: with English chosen, the pages the browser tests visit (tests/daily/, tests/browser/,
tests/interventions/test_browser.py), and the mayor's yearly summary, the password change and the
deactivation confirmation, show no French word, as each role reads them; the custody actions, the
register and the PDFs asked for in English are in English, and the packages for courts stay French.

Server side (Django's client, real PostgreSQL, real templates): the visible text of each page is
read with an HTML parser, without the data typed by users (names, references), and checked for
French letters and for common French words that carry no accent ("Enregistrements").
"""
from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from audit.models import CustodyEvent
from evidence.access.services import CONSULTATION_MOTIFS
from tests.auth import sign_in
from tests.evidence.test_api import make_recording
from tests.test_i18n import FRENCH_LETTERS, choose_language

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 11, 20, 21, 14, tzinfo=dt.timezone.utc)

# Common words of the French interface with no accented letter, that English never uses as words.
FRENCH_WORDS = {
    "enregistrement", "enregistrements", "effacement", "effacements", "conservation", "conservations",
    "demande", "demandes", "revue", "agent", "agents", "porteur", "tableau", "bord", "bilan", "registre",
    "journal", "mot", "passe", "compte", "utilisateurs", "utilisateur", "aucun", "aucune", "afficher",
    "rechercher", "filtrer", "valider", "annuler", "enregistrer", "supprimer", "consulter", "motifs",
    "vignettes", "lecture", "mois", "jours", "heure", "heures", "semaine", "oui", "les", "des", "une", "pour",
    "avec", "sans", "dans", "sont", "aux", "du", "au", "et", "ou", "le", "la", "sur", "par", "pas", "qui",
    "que", "votre", "vos", "nous", "vous", "cette", "ces", "tout", "tous", "toutes", "suivant", "suivante",
    "suivantes", "voir", "retour", "nouveau", "nouvelle", "jusqu", "depuis", "avant", "apres", "intervention",
    "caméra", "camera", "cameras", "extraction", "extractions", "partage", "partages", "floutage", "habilitations",
    "habilitation", "fermer", "ouvrir", "connexion", "deconnexion", "signet", "commentaire", "commentaires",
    "traçabilité", "empreinte", "empreintes", "donnees", "personnes", "filmees", "raison", "date", "statut",
}
# "intervention", "extraction", "date", "camera" are English too: they are checked only in phrases
# below, never alone.
ENGLISH_TOO = {"intervention", "extraction", "extractions", "date", "camera", "cameras", "agent", "agents",
               "journal", "conservation", "revue", "raison"}
FRENCH_ONLY_WORDS = FRENCH_WORDS - ENGLISH_TOO
WORD = re.compile(r"[A-Za-zÀ-ÿœŒ]+(?:['’][A-Za-zÀ-ÿ]+)?")


class _VisibleText(HTMLParser):
    """The text a person sees or hears: text nodes, and the alt, title, aria-label, placeholder and
    button values; not scripts, styles, nor elements that declare another language (the switcher)."""

    SILENT = {"script", "style", "template", "noscript"}
    VOID = {"input", "br", "img", "meta", "link", "hr", "source", "track", "wbr", "area", "col", "embed"}
    SPOKEN = ("alt", "title", "aria-label", "placeholder")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.texts: list[str] = []

    def _hidden(self) -> bool:
        return any(tag in self.SILENT or own_lang for tag, own_lang in self.stack)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        own_lang = tag != "html" and "lang" in attrs
        if not self._hidden() and not own_lang and tag != "meta":
            for name in self.SPOKEN:
                if attrs.get(name):
                    self.texts.append(attrs[name])
            if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
                self.texts.append(attrs["value"])
        if tag not in self.VOID:
            self.stack.append((tag, own_lang))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if any(open_tag == tag for open_tag, _ in self.stack):
            while self.stack and self.stack.pop()[0] != tag:
                pass

    def handle_data(self, data):
        text = " ".join(data.split())
        if text and not self._hidden():
            self.texts.append(text)


def visible_texts(html: str) -> list[str]:
    parser = _VisibleText()
    parser.feed(html)
    return parser.texts


def french_left(html: str, data: tuple[str, ...] = ()) -> list[str]:
    """Visible texts still in French, once the data typed by users and the product's name are removed."""
    found = []
    for text in visible_texts(html):
        bare = text
        for value in sorted(data, key=len, reverse=True):
            bare = bare.replace(value, " ")
        bare = bare.replace("Témoin", " ")
        words = {w.lower() for w in WORD.findall(bare)}
        if FRENCH_LETTERS.search(bare) or words & FRENCH_ONLY_WORDS:
            found.append(text)
    return found


def test_the_checker_sees_french_without_accents_and_leaves_data_and_the_switcher_alone():
    page = ('<html lang="en"><head><title>Recordings</title><script>var x = "Enregistrements";</script></head>'
            '<body><nav><a href="/">Enregistrements</a><button name="language" value="fr" lang="fr">Français'
            '</button></nav><h1>Recordings</h1><input type="submit" value="Rechercher">'
            '<img alt="Vignette de la vidéo"><p>Police municipale de Chambéry</p><p>Erased after 1 mois</p></body></html>')

    assert french_left(page, data=("Police municipale de Chambéry",)) == [
        "Enregistrements", "Rechercher", "Vignette de la vidéo", "Erased after 1 mois"]
    assert french_left("<p>Recordings to complete · Sign out · Retention hold</p>") == []


# --- The scene: what the browser tests set up, in one organisation -------------------------------

@pytest.fixture
def scene(org, camera, officer, make_user, local_store):
    from audit.services import custody_event_append
    from evidence.access import services as access
    from evidence.disclosure.access_requests import access_request_register
    from evidence.interventions.services import intervention_create
    from evidence.retention.holds import hold_place

    users = {role: make_user(name, role=role) for role, name in (
        ("supervisor", "chef.bernard"), ("legal", "juriste.petit"), ("mayor", "maire"), ("dpo", "dpo.moreau"),
        ("admin", "admin.tech"))}
    users["officer"] = officer
    tagged = make_recording(camera=camera, wearer=officer, started_at=T0, intervention="PM-2026-0500",
                            playback_key="playback/1.mp4", track=[[45.5646, 5.9178, T0.timestamp()]])
    untagged = make_recording(camera=camera, wearer=officer, started_at=T0 + dt.timedelta(hours=1))
    untagged.trigger_reason = ""
    untagged.save(update_fields=["trigger_reason"])
    with transaction.atomic():
        intervention_create(by=users["supervisor"], reference="PM-2026-0500", recordings=[tagged])
        hold_place(by=users["legal"], procedure="judicial", reference="PV 2026/1234", recording=tagged,
                   motif="PV 2026/1234")
        access.consultation_open(recording=tagged, by=users["legal"], motif="PV 2026/77")
        access_request_register(by=users["dpo"], requester_name="Jane Doe", identity_checked=True,
                                identity_check_method="ID card", received_on=timezone.localdate(),
                                description="Market square", window_start=T0 - dt.timedelta(hours=1),
                                window_end=T0 + dt.timedelta(hours=1))
        custody_event_append(action="recording.erased", recording=tagged, organisation=tagged.organisation,
                             actor=None, subject=tagged, details={"reason": "retention"})
    from evidence.disclosure.models import AccessRequest

    return {"users": users, "tagged": tagged, "untagged": untagged, "access_request": AccessRequest.objects.get()}


def english_client(user=None) -> Client:
    client = Client(raise_request_exception=True)
    if user is not None:
        sign_in(client, user)
    choose_language(client, "en")
    return client


def pages_by_role(scene) -> dict[str, list[str]]:
    rec, ar = scene["tagged"].pk, scene["access_request"].pk
    return {
        "officer": ["/", "/?hold=held", "/?sort=started_at", f"/enregistrements/{rec}/", "/a-completer/",
                    "/tableau-de-bord/", "/interventions/", f"/enregistrements/{rec}/tracabilite/",
                    f"/enregistrements/{rec}/lecture/",
                    "/mon-compte/mot-de-passe/"],
        "supervisor": ["/revue/", "/conservations/", "/effacements/", "/interventions/", "/interventions/PM-2026-0500/",
                       f"/enregistrements/{rec}/", f"/enregistrements/{rec}/tracabilite/"],
        "legal": ["/registre/", "/conservations/"],
        "mayor": ["/registre/", "/demandes-acces/", "/conservations/", "/bilan-annuel/", "/utilisateurs/habilitations/",
                  "/journal/"],
        "dpo": ["/demandes-acces/", f"/demandes-acces/{ar}/", "/registre/", "/journal/", "/conformite/"],
        "admin": ["/utilisateurs/", "/journal/"],
    }


def _data(scene) -> tuple[str, ...]:
    """What users typed or the deployment is named: shown as it was written, in any language."""
    org = scene["tagged"].organisation
    return (org.name, org.slug, "PV 2026/1234", "PV 2026/77", "PM-2026-0500", "Market square", "Jane Doe",
            *(u.username for u in scene["users"].values()))


@pytest.mark.parametrize("role", ["officer", "supervisor", "legal", "mayor", "dpo", "admin"])
def test_every_page_a_role_visits_is_in_english_once_english_is_chosen(scene, role):
    client = english_client(scene["users"][role])
    found = {}
    for path in pages_by_role(scene)[role]:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        page = response.content.decode()
        assert '<html lang="en">' in page, path
        if left := french_left(page, _data(scene)):
            found[path] = left
    assert found == {}


def test_the_sign_in_page_is_in_english():
    assert french_left(english_client().get("/connexion/").content.decode()) == []


def test_the_deactivation_confirmation_is_in_english(scene):
    admin = scene["users"]["admin"]
    client = english_client(admin)

    page = client.post("/utilisateurs/", {"action": "deactivate", "user": scene["users"]["officer"].pk})

    html = page.content.decode()
    assert page.status_code == 200 and 'name="confirm" value="1"' in html  # asked, not done yet
    assert "Deactivate the account agent.martin?" in html
    assert french_left(html, _data(scene)) == []

    done = client.post("/utilisateurs/", {"action": "deactivate", "user": scene["users"]["officer"].pk,
                                          "confirm": "1", "motif": "left the service"}, follow=True)
    assert "Account agent.martin deactivated. It can be reactivated from this page." in done.content.decode()
    assert french_left(done.content.decode(), _data(scene)) == []


def test_the_password_change_answers_in_english(scene):
    client = english_client(scene["users"]["officer"])

    refused = client.post("/mon-compte/mot-de-passe/", {"current": "wrong", "new": "x" * 12, "confirm": "y" * 12})
    changed = client.post("/mon-compte/mot-de-passe/", {
        "current": "Témoin-demo-2026", "new": "another-long-passphrase-26", "confirm": "another-long-passphrase-26",
        "next": "/"}, follow=True)

    assert "Refused: the current password is wrong." in refused.content.decode()
    assert "Password changed." in changed.content.decode()
    assert french_left(refused.content.decode(), _data(scene)) == []
    assert french_left(changed.content.decode(), _data(scene)) == []


def test_the_messages_after_the_browser_tests_actions_are_in_english(scene):
    # What the browser tests do: tag (refused, then saved), place a hold, comment, correct a clock.
    rec, untagged = scene["tagged"], scene["untagged"]
    officer = english_client(scene["users"]["officer"])
    chef = english_client(scene["users"]["supervisor"])
    pages = {}

    pages["tag refused"] = officer.post(f"/enregistrements/{untagged.pk}/etiquettes/", {
        "trigger_reason": "risk_of_incident", "subject_notified": "false", "next": "/a-completer/"}, follow=True)
    pages["tag saved"] = officer.post(f"/enregistrements/{untagged.pk}/etiquettes/", {
        "trigger_reason": "incident", "subject_notified": "true", "next": "/a-completer/"}, follow=True)
    pages["hold placed"] = chef.post(f"/enregistrements/{rec.pk}/conservations/", {
        "procedure": "judicial", "reference": "PV 2026/1234", "motif": "PV 2026/1234"}, follow=True)
    pages["hold refused"] = chef.post(f"/enregistrements/{rec.pk}/conservations/", {
        "procedure": "judicial", "reference": ""}, follow=True)
    pages["comment"] = chef.post(f"/enregistrements/{rec.pk}/commentaires/", {"at": "1", "text": "PV 2026/77"},
                                 follow=True)
    pages["clock"] = chef.post("/interventions/PM-2026-0500/horloge/", {
        "camera": rec.camera.serial, "seconds": "2", "motif": "PV 2026/77"}, follow=True)
    pages["player"] = officer.post(f"/enregistrements/{rec.pk}/lecture/", {
        "motif_choice": CONSULTATION_MOTIFS[0], "motif_detail": "PV 2026/77"})
    pages["thumbnails"] = officer.post("/a-completer/", {"action": "thumbnails"})
    pages["interventions consulted"] = chef.post("/interventions/PM-2026-0500/consultation/", {
        "motif_choice": CONSULTATION_MOTIFS[1], "motif_detail": "PV 2026/77"})

    texts = {name: " ".join(visible_texts(p.content.decode())) for name, p in pages.items()}
    assert f"Recording no. {untagged.pk}: say why the people filmed were not informed." in texts["tag refused"]
    assert f"Recording no. {untagged.pk}: tags saved." in texts["tag saved"]
    assert "Hold for a procedure saved." in texts["hold placed"] and "Hold refused: " in texts["hold refused"]
    assert "Comment added." in texts["comment"] and "Clock correction entered in the custody log." in texts["clock"]
    assert "<video" in pages["player"].content.decode()
    # The motif chosen in English is logged as offered: in French, the register's language.
    assert CustodyEvent.objects.filter(action="recording.consulted", actor=scene["users"]["officer"],
                                       motif=f"{CONSULTATION_MOTIFS[0]} — PV 2026/77").exists()
    # The logged motif is quoted back as the register keeps it (in French): data, like a typed motif.
    logged = (f"{CONSULTATION_MOTIFS[0]} — PV 2026/77", f"{CONSULTATION_MOTIFS[1]} — PV 2026/77")
    found = {name: left for name, p in pages.items()
             if (left := french_left(p.content.decode(), _data(scene) + logged))}
    assert found == {}


# --- Custody actions in English, French by default -------------------------------------------

def test_the_custody_actions_are_english_on_the_register_and_the_recordings_custody_page(scene):
    rec = scene["tagged"].pk
    english = english_client(scene["users"]["legal"])
    french = sign_in(Client(), scene["users"]["legal"])

    def text(client, path):
        return " ".join(visible_texts(client.get(path).content.decode()))

    register_en = text(english, "/registre/")
    custody_en = text(english, f"/enregistrements/{rec}/tracabilite/")
    register_fr = text(french, "/registre/")

    assert "consultation" in register_en and "erasure" in register_en and "effacement" not in register_en
    assert "hold for a procedure" in custody_en and "conservation pour procédure" not in custody_en
    assert "Intact: the " in custody_en and "Body-worn camera" in custody_en
    assert "effacement" in register_fr and "erasure" not in register_fr


# --- PDFs ---------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _readable_pdfs(monkeypatch):
    # reportlab's standard fonts keep the text readable in the PDF's streams (tests/disclosure/test_package.py).
    from audit import pdf

    monkeypatch.setattr(pdf, "_fonts", ("Helvetica", "Helvetica-Bold", "Courier"))


def pdf_text(body: bytes) -> str:
    from tests.disclosure.test_package import _pdf_text

    assert body.startswith(b"%PDF")
    return _pdf_text(body)


def test_the_custody_report_pdf_follows_the_readers_language(scene):
    rec = scene["tagged"].pk
    english = english_client(scene["users"]["legal"]).get(f"/enregistrements/{rec}/tracabilite.pdf")
    french = sign_in(Client(), scene["users"]["legal"]).get(f"/enregistrements/{rec}/tracabilite.pdf")

    en, fr = pdf_text(english.content), pdf_text(french.content)
    assert "Custody report" in en and "hold for a procedure" in en and "Identifiers" in en
    assert "Rapport de traçabilité" not in en and "conservation pour procédure" not in en
    assert "Rapport de traçabilité" in fr and "conservation pour procédure" in fr and "Custody report" not in fr


def test_the_register_exports_follow_the_readers_language(scene):
    english = english_client(scene["users"]["mayor"])
    french = sign_in(Client(), scene["users"]["mayor"])

    pdf_en = pdf_text(english.get("/registre/export.pdf").content)
    pdf_fr = pdf_text(french.get("/registre/export.pdf").content)
    csv_en = b"".join(english.get("/registre/export.csv").streaming_content).decode()

    assert "Register of consultations" in pdf_en and "erasure" in pdf_en and "effacement" not in pdf_en
    assert "Registre des consultations" in pdf_fr and "effacement" in pdf_fr
    assert csv_en.splitlines()[0].startswith('\ufeff"no.";"date and time";"time zone";"author";"type"')
    assert ';"erasure";"recording.erased";' in csv_en and "effacement" not in csv_en


def test_the_yearly_summary_pdf_follows_the_readers_language(scene):
    year = T0.year
    english = english_client(scene["users"]["mayor"]).get(f"/bilan-annuel/?annee={year}&format=pdf")
    french = sign_in(Client(), scene["users"]["mayor"]).get(f"/bilan-annuel/?annee={year}&format=pdf")

    en, fr = pdf_text(english.content), pdf_text(french.content)
    assert f"Yearly summary {year}" in en and "Recordings" in en and "November" in en
    assert "Bilan annuel" not in en and "Enregistrements" not in en
    assert f"Bilan annuel {year}" in fr and "novembre" in fr


def test_the_compliance_report_pdf_follows_the_readers_language(scene):
    from audit.compliance.services import compliance_audit_run

    compliance_audit_run()
    english = english_client(scene["users"]["dpo"]).get("/conformite/rapport.pdf")
    french = sign_in(Client(), scene["users"]["dpo"]).get("/conformite/rapport.pdf")

    assert english.status_code == 200 and french.status_code == 200
    en, fr = pdf_text(english.content), pdf_text(french.content)
    assert "Compliance report" in en and "Rules checked" in en and "Rapport de conformité" not in en
    assert "Rapport de conformité" in fr and "Règles vérifiées" in fr
