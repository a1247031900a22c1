"""English through Django's i18n (issue #4): French stays the default, English is chosen with set_language.

The catalogue is committed compiled (locale/en/LC_MESSAGES/django.mo) because gettext may be missing
on a user's machine; the last tests keep the .po complete and the .mo in step with it.
"""
from __future__ import annotations

import ast
import gettext
import re
import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.test import Client, RequestFactory

from tests.auth import sign_in
from tests.evidence.test_api import make_recording

LOCALE_DIR = Path(settings.BASE_DIR) / "locale" / "en" / "LC_MESSAGES"
PO_PATH = LOCALE_DIR / "django.po"
MO_PATH = LOCALE_DIR / "django.mo"
PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|%%")
FRENCH_LETTERS = re.compile(r"[àâçéèêëîïôùûüœÀÂÇÉÈÊÎÔÙÛŒ]")
PRODUCT_NAME = "Témoin"


# --- Reading the catalogue (a small PO reader: polib is not a dependency) ---------------------

def po_entries(path: Path | None = None) -> list[dict]:
    """Entries of a PO file: msgctxt, msgid, msgid_plural, msgstr ({plural form: text}), flags.

    Obsolete entries (``#~``) are left out: gettext ignores them.
    """
    path = path or PO_PATH
    entries = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8").strip()):
        entry = {"msgctxt": None, "msgid": None, "msgid_plural": None, "msgstr": {}, "flags": set()}
        current = None
        lines = block.splitlines()
        if all(line.startswith("#") for line in lines):
            continue  # an obsolete entry (#~) or a lone comment
        for line in lines:
            if line.startswith("#,"):
                entry["flags"].update(flag.strip() for flag in line[2:].split(","))
            elif line.startswith("#"):
                continue
            elif match := re.match(r"(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?) (\".*\")$", line):
                key, index, value = match.group(1), match.group(2), ast.literal_eval(match.group(3))
                if key.startswith("msgstr"):
                    current = ("msgstr", int(index or 0))
                    entry["msgstr"][current[1]] = value
                else:
                    current = (key, None)
                    entry[key] = value
            elif line.startswith('"'):
                value = ast.literal_eval(line)
                if current[0] == "msgstr":
                    entry["msgstr"][current[1]] += value
                else:
                    entry[current[0]] += value
            else:
                raise AssertionError(f"unexpected line in {path.name}: {line!r}")
        entries.append(entry)
    return entries


def message_entries() -> list[dict]:
    return [e for e in po_entries() if e["msgid"]]


def french_only_msgids() -> set[str]:
    """Source strings whose English translation differs: seeing one on an English page is a miss."""
    return {e["msgid"] for e in message_entries()
            if not e["msgid_plural"] and e["msgstr"].get(0) and e["msgstr"][0] != e["msgid"]}


# --- Reading pages -------------------------------------------------------------------------

class _HeadingText(HTMLParser):
    """Texts shown in headings, table headers, labels, buttons, options, navigation and the title.

    Text inside an element that declares its own ``lang`` (the switcher's "Français") is meant to be
    in that language and is left out.
    """

    WATCHED = {"title", "h1", "h2", "h3", "th", "label", "button", "option", "nav", "legend", "caption"}
    VOID = {"input", "br", "img", "meta", "link", "hr", "source", "track", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack: list[tuple[str, bool]] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append((tag, tag != "html" and "lang" in dict(attrs)))

    def handle_endtag(self, tag):
        if any(open_tag == tag for open_tag, _ in self.stack):
            while self.stack and self.stack.pop()[0] != tag:
                pass

    def handle_data(self, data):
        text = " ".join(data.split())
        tags = {tag for tag, _ in self.stack}
        other_language = any(own_lang for _, own_lang in self.stack)
        if text and self.WATCHED & tags and not other_language:
            self.texts.append(text)


def heading_texts(html: str) -> list[str]:
    parser = _HeadingText()
    parser.feed(html)
    return parser.texts


def untranslated(html: str) -> list[str]:
    """Heading texts still in French: a known French source string, or French letters."""
    french = french_only_msgids()
    found = []
    for text in heading_texts(html):
        bare = text.replace(PRODUCT_NAME, "").strip(" —·:()←→↑↓▶")
        if bare in french or FRENCH_LETTERS.search(bare):
            found.append(text)
    return found


def choose_language(client: Client, code: str, next_url: str = "/"):
    response = client.post("/i18n/setlang/", {"language": code, "next": next_url})
    assert response.status_code == 302 and response["Location"] == next_url
    return response


@pytest.fixture
def recording(camera, officer, local_store):
    return make_recording(camera=camera, wearer=officer, intervention="PM-2026-0042")


# --- French by default ---------------------------------------------------------------------

@pytest.mark.django_db
def test_login_page_is_in_french_by_default():
    page = Client().get("/connexion/").content.decode()

    assert '<html lang="fr">' in page
    assert "<h1>Connexion</h1>" in page and "Mot de passe" in page and "Se connecter" in page
    assert "Sign in" not in page and "Password" not in page


@pytest.mark.django_db
def test_a_french_browser_gets_the_french_recordings_list(officer, recording):
    client = sign_in(Client(HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9"), officer)

    page = client.get("/").content.decode()

    assert '<html lang="fr">' in page
    assert "Enregistrements" in page and "Se déconnecter" in page and "stocké et vérifié" in page
    assert "Recordings" not in page and "Sign out" not in page


@pytest.mark.django_db
def test_an_english_browser_still_gets_french_until_english_is_chosen():
    # English is an explicit choice: the browser's Accept-Language (headless Chromium sends en-US)
    # does not change the interface, whose legal wording is authoritative in French.
    client = Client(HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")

    before = client.get("/connexion/").content.decode()
    choose_language(client, "en", "/connexion/")
    after = client.get("/connexion/").content.decode()

    assert '<html lang="fr">' in before and "Se connecter" in before
    assert '<html lang="en">' in after and "Sign in" in after


# --- English on request --------------------------------------------------------------------

@pytest.mark.django_db
def test_choosing_english_translates_the_login_page():
    client = Client()
    choose_language(client, "en", "/connexion/")

    page = client.get("/connexion/").content.decode()

    assert '<html lang="en">' in page
    assert "<h1>Sign in</h1>" in page
    assert "Username" in page and "Password" in page
    assert "Access restricted to authorised persons (CSI R241-12). Every consultation is logged." in page
    assert untranslated(page) == []


@pytest.mark.django_db
def test_choosing_english_translates_the_officers_recordings_list(officer, recording):
    client = sign_in(Client(), officer)
    choose_language(client, "en")

    page = client.get("/").content.decode()

    assert '<html lang="en">' in page
    assert "<title>Recordings — Témoin</title>" in page
    assert "Recordings" in page and "To complete" in page and "Sign out" in page
    assert "Trigger reason" in page and "Erasure date" in page and "Wearer" in page
    # Values from the models' choices are translated too, not only the template's own strings.
    assert "stored and verified" in page and "not reviewed" in page
    assert untranslated(page) == []


@pytest.mark.django_db
def test_french_can_be_chosen_again_after_english(officer, recording):
    client = sign_in(Client(), officer)
    choose_language(client, "en")
    choose_language(client, "fr")

    page = client.get("/").content.decode()

    assert '<html lang="fr">' in page and "Se déconnecter" in page and "Sign out" not in page


@pytest.mark.django_db
def test_an_unknown_language_is_refused_and_french_stays():
    client = Client()
    client.post("/i18n/setlang/", {"language": "de", "next": "/connexion/"})

    page = client.get("/connexion/").content.decode()

    assert '<html lang="fr">' in page and "Se connecter" in page


# --- The switcher ----------------------------------------------------------------------------

def _render_switcher(language: str, path: str = "/effacements/?page=2") -> str:
    from django.utils import translation

    request = RequestFactory().get(path)
    with translation.override(language):
        return render_to_string("_language.html", request=request)


def test_the_switcher_is_a_plain_form_offering_the_other_language():
    french = _render_switcher("fr")

    assert 'action="/i18n/setlang/"' in french and 'method="post"' in french
    assert 'name="csrfmiddlewaretoken"' in french
    assert '<input type="hidden" name="next" value="/effacements/?page=2">' in french
    assert 'value="en" lang="en"' in french and ">English</button>" in french
    assert 'value="fr"' not in french  # the language in use is not offered again
    # No script at all: the Content-Security-Policy forbids inline scripts.
    assert "<script" not in french and "onclick" not in french and "onchange" not in french

    english = _render_switcher("en")
    assert 'value="fr" lang="fr"' in english and ">Français</button>" in english and 'value="en"' not in english


@pytest.mark.django_db
def test_the_switchers_own_form_switches_the_language_and_returns_to_the_page(officer):
    client = sign_in(Client(), officer)
    html = _render_switcher("fr", "/effacements/")
    fields = dict(re.findall(r'name="(next|language)" value="([^"]*)"', html))

    response = client.post("/i18n/setlang/", fields)

    assert response.status_code == 302 and response["Location"] == "/effacements/"
    assert "Upcoming erasures" in client.get("/effacements/").content.decode()


@pytest.mark.django_db
def test_every_page_offers_the_language_switcher(officer):
    # base.html includes templates/_language.html in its header, for visitors and signed-in users.
    anonymous = Client().get("/connexion/").content.decode()
    signed_in = sign_in(Client(), officer).get("/").content.decode()

    for page in (anonymous, signed_in):
        assert 'action="/i18n/setlang/"' in page and 'name="language" value="en"' in page


# --- The catalogue itself ----------------------------------------------------------------------

def test_every_string_of_the_catalogue_is_translated():
    entries = message_entries()

    assert len(entries) > 500  # the whole UI, not a sample
    empty = [e["msgid"] for e in entries if not all(e["msgstr"].get(i) for i in range(2 if e["msgid_plural"] else 1))]
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e["flags"]]
    assert empty == [], f"{len(empty)} strings without translation (run makemessages, translate): {empty[:10]}"
    # compilemessages leaves fuzzy entries out: they would show in French.
    assert fuzzy == [], f"{len(fuzzy)} fuzzy translations to check: {fuzzy[:10]}"


def test_translations_keep_every_placeholder():
    # A lost or misspelt %(name)s raises KeyError when the message is formatted.
    broken = []
    for e in message_entries():
        if "python-format" not in e["flags"]:
            continue
        if e["msgid_plural"]:
            # A plural form may leave the count out ("one recording"), never bring in an unknown name.
            known = set(PLACEHOLDER.findall(e["msgid"])) | set(PLACEHOLDER.findall(e["msgid_plural"]))
            broken += [(e["msgid"], form) for form in e["msgstr"].values()
                       if not set(PLACEHOLDER.findall(form)) <= known]
        elif sorted(PLACEHOLDER.findall(e["msgstr"][0])) != sorted(PLACEHOLDER.findall(e["msgid"])):
            broken.append((e["msgid"], e["msgstr"][0]))
    assert broken == []


def test_the_compiled_catalogue_matches_the_po_file():
    # Compare contents, not modification times: a fresh clone gives both files the checkout time.
    entries = [e for e in po_entries() if "fuzzy" not in e["flags"] or not e["msgid"]]
    with MO_PATH.open("rb") as fh:
        data = fh.read()
        fh.seek(0)
        compiled = gettext.GNUTranslations(fh)
    magic, _revision, count = struct.unpack("<III", data[:12])
    assert magic == 0x950412DE

    stale = []
    for e in entries:
        if not e["msgid"]:
            continue
        context = e["msgctxt"]
        if e["msgid_plural"]:
            got = [compiled.npgettext(context, e["msgid"], e["msgid_plural"], n) if context
                   else compiled.ngettext(e["msgid"], e["msgid_plural"], n) for n in (1, 2)]
            want = [e["msgstr"][0], e["msgstr"][1]]
        else:
            got = compiled.pgettext(context, e["msgid"]) if context else compiled.gettext(e["msgid"])
            want = e["msgstr"][0]
        if got != want:
            stale.append(e["msgid"])
    assert stale == [], f"django.mo is older than django.po (run compilemessages): {stale[:10]}"
    assert count == len(entries), "django.mo and django.po hold different sets of strings (run compilemessages)"
