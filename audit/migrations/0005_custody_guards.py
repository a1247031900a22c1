"""The database refuses UPDATE, DELETE and TRUNCATE on the custody log and its checkpoints
(CSI R241-14), except the three-year purge; on PostgreSQL a CHECK ties every entry's columns to its
canonical bytes. The SQL, per database, is in audit/guards.py."""
from django.db import migrations


def install(apps, schema_editor):
    from audit import guards

    guards.install(schema_editor)


def uninstall(apps, schema_editor):
    from audit import guards

    guards.uninstall(schema_editor)


class Migration(migrations.Migration):

    dependencies = [("audit", "0004_custody_canonical_backfill")]

    operations = [migrations.RunPython(install, uninstall)]
