"""`manage.py axis_connection_file --org SLUG`: the JSON the Axis manager imports."""
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import CustodyEvent
from devices.axis.models import AxisCredential

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args) -> tuple[dict, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("axis_connection_file", *args, stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue()


def test_the_connection_file_has_every_attribute_of_the_specification(org):
    document, _err = run("--org", org.slug, "--url", "https://temoin.example.fr")

    assert document["ConnectionFileVersion"] == "1.0"
    assert document["SiteName"] == org.name and document["ApplicationName"] == "Témoin"
    assert document["ApplicationVersion"]
    assert document["AuthenticationTokenURI"] == ["https://temoin.example.fr/axis/auth/v1.0"]
    assert document["ContainerType"] in ("mp4", "mkv")
    assert document["WantEncryption"] is False and "PublicKey" not in document
    assert document["FullStoreAndReadSupport"] is False
    assert document["ContentDestinationAsNTPServer"] is False
    assert len(json.dumps(document).encode()) <= 64 * 1024


def test_the_key_is_shown_only_in_the_connection_file(org):
    document, _err = run("--org", org.slug)

    credential = AxisCredential.objects.get(username=document["BlobAPIUserName"])
    assert credential.organisation == org
    assert document["BlobAPIKey"] not in credential.key_sha256 and len(document["BlobAPIKey"]) <= 64
    event = CustodyEvent.objects.get(action="axis.credential_created")
    assert document["BlobAPIKey"] not in json.dumps(event.details)


def test_a_new_connection_file_can_revoke_the_previous_credentials(org):
    first, _ = run("--org", org.slug)
    second, err = run("--org", org.slug)
    assert "remain valid" in err
    third, _ = run("--org", org.slug, "--revoke-previous")

    active = set(AxisCredential.objects.filter(active=True).values_list("username", flat=True))
    assert active == {third["BlobAPIUserName"]}
    assert first["BlobAPIUserName"] != second["BlobAPIUserName"]


def test_a_certificate_is_embedded_as_base64_der(org, tmp_path):
    pem = tmp_path / "cert.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nTUlJQmR1bW15\nY2VydA==\n-----END CERTIFICATE-----\n")

    document, _ = run("--org", org.slug, "--url", "https://temoin.example.fr", "--certificate", str(pem))

    assert document["HTTPSCertificate"] == ["TUlJQmR1bW15Y2VydA=="]


def test_an_unknown_organisation_is_an_error():
    with pytest.raises(CommandError):
        run("--org", "nowhere")
