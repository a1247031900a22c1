"""Issue 23: per-recording grants in our own table, django-guardian gone. The migration keeps every
grant of a deployment that ran with guardian (same person, recording, expiry, author and motif) and
removes the AnonymousUser account guardian had created."""
from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.utils import timezone

from accounts.models import User
from evidence.access.selectors import recordings_visible_to
from tests.conftest import migrate_to
from evidence.models import Recording, RecordingGrant

from .test_api import make_recording

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE, AFTER = ("evidence", "0006_interventions"), ("evidence", "0007_recording_grant")


@pytest.fixture(autouse=True)
def _latest_schema_afterwards():
    """The test leaves the database at 0007: the tests after it need every later migration (0008…)."""
    yield
    migrate_to()


def test_grants_made_under_guardian_survive_the_migration_and_still_expire(camera, officer, make_user):
    chef = make_user("chef", role="supervisor")
    investigator = make_user("enqueteur.roux", matricule="M077")
    granted = make_recording(camera=camera, wearer=officer)
    make_recording(camera=camera, wearer=officer)  # not granted
    until = timezone.now() + dt.timedelta(days=10)

    migrate_to(BEFORE)  # the tables as a deployment with django-guardian had them
    perm, _ = Permission.objects.get_or_create(
        codename="view_recording_granted", content_type=ContentType.objects.get_for_model(Recording),
        defaults={"name": "voir l'enregistrement (habilitation nominative)"})
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO evidence_recordinguserobjectpermission "
                       "(user_id, permission_id, content_object_id, expires_at, granted_by_id, motif) "
                       "VALUES (%s, %s, %s, %s, %s, %s)",
                       [investigator.pk, perm.pk, granted.pk, until, chef.pk, "Enquête PV 2026/31"])
    User.objects.create(username="AnonymousUser", password="!")  # guardian's post-migrate account
    migrate_to(AFTER)

    grant = RecordingGrant.objects.get()
    assert (grant.user_id, grant.recording_id, grant.granted_by_id, grant.motif) == (
        investigator.pk, granted.pk, chef.pk, "Enquête PV 2026/31")
    assert abs(grant.expires_at - until) < dt.timedelta(seconds=1)
    assert not User.objects.filter(username="AnonymousUser").exists()
    assert list(recordings_visible_to(user=investigator).values_list("pk", flat=True)) == [granted.pk]
    RecordingGrant.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert not recordings_visible_to(user=investigator).exists()  # expiry holds, whatever backend asks


def test_no_object_permission_backend_can_answer_past_a_grants_expiry(settings):
    assert not any("guardian" in b for b in settings.AUTHENTICATION_BACKENDS)
    assert "guardian" not in settings.INSTALLED_APPS
