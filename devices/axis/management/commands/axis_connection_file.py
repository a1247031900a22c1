"""Print the connection file an Axis body worn manager imports to use Témoin as content destination.

The credentials it holds are created for the organisation by this command and shown only here:
keep the output like a password (the connection file is the key to the organisation's uploads).
"""
import base64
import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from accounts.models import Organisation
from devices.axis import tokens
from devices.axis.models import AxisCredential

MAX_BYTES = 64 * 1024  # specification: "The maximum size of the connection file is 64 kB"


def _application_version() -> str:
    try:
        from importlib.metadata import version

        return version("temoin")
    except Exception:  # noqa: BLE001 - not installed as a package: the API version is ours too
        return settings.SPECTACULAR_SETTINGS.get("VERSION", "0")


def _certificate(path: str) -> str:
    """A PEM or DER X.509 certificate file → base64 of the DER bytes, as the connection file wants."""
    data = Path(path).read_bytes()
    if b"-----BEGIN CERTIFICATE-----" in data:
        body = data.split(b"-----BEGIN CERTIFICATE-----", 1)[1].split(b"-----END CERTIFICATE-----", 1)[0]
        return "".join(body.decode().split())
    return base64.b64encode(data).decode()


class Command(BaseCommand):
    help = ("Create Axis credentials for an organisation and print the connection file (JSON) to import "
            "in AXIS Body Worn Manager.")

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organisation slug")
        parser.add_argument("--url", action="append", default=[],
                            help="public base URL of Témoin as the system controller reaches it, e.g. "
                                 "https://temoin.example.fr (repeatable, up to 10; default TEMOIN_PUBLIC_URL "
                                 "or http://127.0.0.1:8000)")
        parser.add_argument("--site-name", default="", help="SiteName shown in the manager (default: organisation name)")
        parser.add_argument("--certificate", action="append", default=[],
                            help="X.509 certificate (PEM or DER) of Témoin's HTTPS endpoint (repeatable)")
        parser.add_argument("--container-type", choices=["mp4", "mkv"], default="mp4")
        parser.add_argument("--ntp", action="store_true", help="ContentDestinationAsNTPServer: true")
        parser.add_argument("--revoke-previous", action="store_true",
                            help="revoke the organisation's earlier Axis credentials (their tokens stop working)")

    def handle(self, *args, org, url, site_name, certificate, container_type, ntp, revoke_previous, **options):
        organisation = Organisation.objects.filter(slug=org).first()
        if organisation is None:
            raise CommandError(f"no organisation {org!r}")
        bases = url or [getattr(settings, "TEMOIN_PUBLIC_URL", "") or "http://127.0.0.1:8000"]
        if len(bases) > 10:
            raise CommandError("at most 10 token URIs")
        for base in bases:
            if not base.startswith(("http://", "https://")):
                raise CommandError(f"--url {base!r}: give the scheme (https://…)")
            if base.startswith("http://") and not certificate:
                self.stderr.write(f"warning: {base} is plain HTTP; use HTTPS with --certificate in production")
        try:
            certificates = [_certificate(path) for path in certificate]
        except OSError as exc:
            raise CommandError(f"certificate unreadable: {exc}") from exc
        site = (site_name or organisation.name)[:64]
        previous = list(AxisCredential.objects.filter(organisation=organisation, active=True))
        credential, key = tokens.credential_create(organisation=organisation, site_name=site)
        if revoke_previous:
            for old in previous:
                tokens.credential_revoke(credential=old)
        auth_path = reverse("axis-auth")
        document = {
            "ConnectionFileVersion": "1.0",
            "SiteName": site,
            "ApplicationName": "Témoin",
            "ApplicationVersion": _application_version()[:64],
            "ContentDestinationAsNTPServer": bool(ntp),
            "AuthenticationTokenURI": [base.rstrip("/") + auth_path for base in bases],
            "BlobAPIKey": key,
            "BlobAPIUserName": credential.username,
            "ContainerType": container_type,
            "FullStoreAndReadSupport": False,
            # Content encryption is not supported: Témoin must read the clips to make playback copies.
            "WantEncryption": False,
        }
        if certificates:
            document["HTTPSCertificate"] = certificates
        text = json.dumps(document, ensure_ascii=False, indent=2)
        if len(text.encode()) > MAX_BYTES:
            raise CommandError("the connection file would exceed 64 kB (too many or too large certificates)")
        self.stdout.write(text)
        if previous and not revoke_previous:
            self.stderr.write(f"note: {len(previous)} earlier Axis credential(s) of {org} remain valid "
                              f"(--revoke-previous to revoke them)")
