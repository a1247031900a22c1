"""Shares with an external recipient: one export only, expiry, download limit, revocation; every
view and every download logged with the recipient (CSI R241-14)."""
from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import CustodyEvent
from evidence.disclosure import shares
from evidence.disclosure.models import Export, Share

from .helpers import api

pytestmark = pytest.mark.django_db(transaction=True)

RECIPIENT = "Maître Dupont, avocat de M. X"


@pytest.fixture
def export(recordings, users):
    response = api(users["legal"]).post("/api/exports/", {
        "recordings": [recordings[0].pk], "purpose": "judicial", "recipient": "Tribunal judiciaire de Chambéry",
        "motif": "Communication à la défense", "redaction": "none"}, format="json")
    export = Export.objects.get(pk=response.json()["id"])
    assert export.status == "ready"
    return export


def _share(user, export, expires_at=None, max_downloads=2):
    expires_at = expires_at or timezone.now() + dt.timedelta(days=3)
    return api(user).post(f"/api/exports/{export.pk}/shares/", {
        "recipient": RECIPIENT, "expires_at": expires_at.isoformat(), "max_downloads": max_downloads}, format="json")


def _path(url: str) -> str:
    return url.split("testserver", 1)[1]


def _logged(action):
    return list(CustodyEvent.objects.filter(action=action).order_by("seq"))


def test_share_page_shows_only_that_export_and_every_view_and_download_is_logged(export, users, local_store):
    response = _share(users["legal"], export)
    assert response.status_code == 201 and set(response.json()) >= {"id", "url"}
    url = _path(response.json()["url"])
    visitor = Client()  # no account

    page = visitor.get(url)
    data = visitor.get(url + "telecharger/")

    assert page.status_code == 200
    html = page.content.decode()
    assert export.sha256 in html and "Télécharger" in html
    assert "<nav" not in html and "Enregistrements" not in html and "Se déconnecter" not in html
    assert data.status_code == 200 and data["Content-Type"] == "application/zip"
    with local_store.local_path(export.store_key) as p:
        assert b"".join(data.streaming_content) == p.read_bytes()
    (created,) = _logged("share.created")
    (viewed,) = _logged("share.viewed")
    (downloaded,) = _logged("share.downloaded")
    assert created.recipients == viewed.recipients == downloaded.recipients == [RECIPIENT]
    assert downloaded.details["download"] == 1 and downloaded.details["sha256"] == export.sha256
    assert Share.objects.get().downloads == 1


def test_share_stops_after_its_download_limit(export, users):
    url = _path(_share(users["legal"], export, max_downloads=2).json()["url"])
    visitor = Client()

    statuses = [visitor.get(url + "telecharger/").status_code for _ in range(3)]
    page = visitor.get(url)

    assert statuses == [200, 200, 410]
    assert page.status_code == 410 and "nombre de téléchargements autorisés est atteint" in page.content.decode()
    assert len(_logged("share.downloaded")) == 2
    refused = _logged("share.refused")
    assert len(refused) == 1 and refused[0].details["refused"] == "exhausted" and refused[0].recipients == [RECIPIENT]
    assert _logged("share.viewed")[-1].details["refused"] == "exhausted"


def test_share_stops_after_expiry(export, users):
    created = timezone.now() - dt.timedelta(days=2)
    share, token = shares.share_create(export=export, by=users["legal"], recipient=RECIPIENT,
                                         expires_at=created + dt.timedelta(days=1), max_downloads=5, now=created)
    visitor = Client()

    page = visitor.get(f"/partage/{token}/")
    data = visitor.get(f"/partage/{token}/telecharger/")

    assert page.status_code == data.status_code == 410
    assert "date de validité du lien est dépassée" in page.content.decode()
    assert _logged("share.refused")[0].details["refused"] == "expired"


def test_expiry_boundary_with_injected_time(export, users):
    share, _token = shares.share_create(export=export, by=users["legal"], recipient=RECIPIENT,
                                          expires_at=timezone.now() + dt.timedelta(hours=1), max_downloads=5)
    shares.share_download_begin(share=share, now=share.expires_at - dt.timedelta(microseconds=1))
    with pytest.raises(shares.ShareUnavailable) as exc:
        shares.share_download_begin(share=share, now=share.expires_at)
    assert exc.value.reason == "expired"
    assert [e.action for e in CustodyEvent.objects.filter(action__in=["share.downloaded", "share.refused"])
            .order_by("seq")] == ["share.downloaded", "share.refused"]


def test_share_stops_after_revocation(export, users):
    response = _share(users["legal"], export)
    url, share_id = _path(response.json()["url"]), response.json()["id"]
    visitor = Client()
    assert visitor.get(url).status_code == 200

    revoked = api(users["legal"]).post(f"/api/shares/{share_id}/revoke/", {"motif": "erreur de destinataire"},
                                       format="json")

    assert revoked.status_code == 200
    page = visitor.get(url)
    assert page.status_code == 410 and "révoqué" in page.content.decode()
    assert visitor.get(url + "telecharger/").status_code == 410
    (event,) = _logged("share.revoked")
    assert event.motif == "erreur de destinataire" and event.recipients == [RECIPIENT]
    assert api(users["legal"]).post(f"/api/shares/{share_id}/revoke/", {}, format="json").status_code == 400


def test_unknown_token_is_410_and_says_nothing(export):
    page = Client().get("/partage/not-a-token/")
    assert page.status_code == 410 and "inconnu" in page.content.decode()


@pytest.mark.parametrize("field,value,message", [
    ("recipient", "", "destinataire"),
    ("expires_at", "2020-01-01T00:00:00+00:00", "futur"),
    ("expires_at", "2027-01-01T00:00:00", "fuseau"),
    ("max_downloads", 0, "entre 1 et"),
])
def test_share_parameters_are_checked(export, users, field, value, message):
    body = {"recipient": RECIPIENT, "expires_at": (timezone.now() + dt.timedelta(days=1)).isoformat(),
            "max_downloads": 3, field: value}
    response = api(users["legal"]).post(f"/api/exports/{export.pk}/shares/", body, format="json")
    assert response.status_code == 400 and message in response.json()[field][0]


@pytest.mark.parametrize("role,expected", [("officer", 404), ("supervisor", 201), ("legal", 201), ("dpo", 404),
                                           ("mayor", 403), ("admin", 404)])
def test_share_role_matrix(export, users, role, expected):
    assert _share(users[role], export).status_code == expected


def test_other_organisation_cannot_share_or_revoke(export, users, other_org_users):
    share_id = _share(users["legal"], export).json()["id"]
    assert _share(other_org_users["legal"], export).status_code == 404
    assert api(other_org_users["legal"]).post(f"/api/shares/{share_id}/revoke/", {}, format="json").status_code == 404


def test_share_of_an_erased_package_says_it_is_gone(export, users, time_machine):
    from evidence.retention.sweep import retention_sweep

    url = _path(_share(users["legal"], export).json()["url"])
    shared_at = timezone.now()
    time_machine.move_to(export.retain_until + dt.timedelta(seconds=1))
    assert retention_sweep().exports_erased == [export.pk]  # erased with its recording
    time_machine.move_to(shared_at)  # while the link itself is still valid

    page = Client().get(url)
    data = Client().get(url + "telecharger/")

    assert page.status_code == data.status_code == 410
    assert "ne sont plus disponibles" in page.content.decode()
    assert _logged("share.refused")[0].details["refused"] == "gone"


@pytest.mark.parametrize("ranges", [
    ["bytes=-{size}", "bytes=-{size}"],
    ["bytes=00-", "bytes=00-"],
    ["BYTES=0-", "BYTES=0-"],
    ["bytes=1-", "bytes=0-0", "bytes=1-"],
    ["bytes=0-{half}", "bytes={half1}-", "bytes=-1"],
    ["bytes=0-0,1-", "bytes=0-"],
    ["", "bytes=-1"],
])
def test_a_share_of_one_download_yields_at_most_one_package_whatever_the_ranges(export, users, ranges):
    """Issue 17 finding 1: the limit is on bytes; every Range form is counted by what it serves."""
    url = _path(_share(users["legal"], export, max_downloads=1).json()["url"]) + "telecharger/"
    size, visitor, served = export.size, Client(), 0
    for header in ranges:
        header = header.format(size=size, half=size // 2, half1=size // 2 + 1)
        response = visitor.get(url, **({"HTTP_RANGE": header} if header else {}))
        if response.status_code in (200, 206):
            served += len(b"".join(response.streaming_content))
        else:
            assert response.status_code in (410, 416), (header, response.status_code)

    assert served <= size
    share = Share.objects.get()
    assert share.bytes_served == served and share.downloads == (1 if served else 0)
    downloaded = _logged("share.downloaded")
    assert sum(e.details["bytes"] for e in downloaded) == served
    assert all(e.motif == "Communication à la défense" and e.recipients == [RECIPIENT] for e in downloaded)


def test_a_resumed_download_costs_only_its_remaining_bytes(export, users):
    url = _path(_share(users["legal"], export, max_downloads=1).json()["url"]) + "telecharger/"
    visitor = Client()
    first = visitor.get(url, HTTP_RANGE="bytes=0-99")
    rest = visitor.get(url, HTTP_RANGE="bytes=100-")
    again = visitor.get(url, HTTP_RANGE="bytes=0-0")

    assert first.status_code == rest.status_code == 206 and again.status_code == 410
    assert len(b"".join(first.streaming_content)) + len(b"".join(rest.streaming_content)) == export.size
    assert Share.objects.get().downloads == 1
    assert [e.details["range"] for e in _logged("share.downloaded")] == [
        f"bytes 0-99/{export.size}", f"bytes 100-{export.size - 1}/{export.size}"]
    assert _logged("share.refused")[-1].details["refused"] == "exhausted"


def test_a_share_link_is_rate_limited_per_client_address(export, users, settings):
    """Issue 17: a public link cannot be hammered (tokens guessed, a package pulled in a loop)."""
    settings.TEMOIN_RATE_SHARE_DOWNLOAD = 3
    url = _path(_share(users["legal"], export, max_downloads=5).json()["url"])
    visitor, elsewhere = Client(REMOTE_ADDR="203.0.113.7"), Client(REMOTE_ADDR="203.0.113.8")

    statuses = [visitor.get(url).status_code for _ in range(3)] + [visitor.get(url + "telecharger/").status_code]

    assert statuses == [200, 200, 200, 429]
    assert elsewhere.get(url).status_code == 200  # another address is not blocked
    assert len(_logged("share.downloaded")) == 0  # the refused download served nothing and counted nothing
