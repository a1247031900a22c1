"""The evidence bucket, ready and write-once, before any Témoin process starts (compose `migrate`).

Creates the bucket with Object Lock when it is missing, turns versioning on and sets the one-day
default COMPLIANCE retention (the safety net of docs/deployment.md), as deploy/minio-init.sh does
for MinIO; the same on any S3 server with Object Lock (Ceph RGW, MinIO, others). Then runs the
store check of /sante/: exit 1 when the bucket is unreachable or not write-once, so that compose
starts nothing that could write evidence. The embedded local store is only checked.

    python deploy/store-init.py
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> int:
    import django

    django.setup()
    from django.conf import settings

    from config.ops.health import health_report
    from evidence.integrations.store import get_store

    if settings.STORE_BACKEND == "s3":
        try:
            get_store().ensure_bucket()
        except Exception as exc:  # noqa: BLE001 - botocore's errors (only evidence/integrations imports boto)
            print(f"store-init: bucket {settings.S3_BUCKET} could not be made write-once: {exc}", file=sys.stderr)
            return 1
    store = health_report(only=["store"]).components[0]
    print(f"store-init: {store.status} — {store.message}")
    return 0 if store.up else 1


if __name__ == "__main__":
    raise SystemExit(main())
