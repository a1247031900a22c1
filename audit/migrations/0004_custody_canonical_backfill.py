"""Store the canonical bytes of entries written before they were kept (issue 3).

Only where the columns still rebuild the entry's hash: an entry that does not stays without them,
and verification rebuilds it from its columns and reports it. Runs before the append-only guards
(0005) are installed, which would refuse these UPDATEs.
"""
from django.db import migrations

from audit.chain import FULL_COLUMNS, canonical_from_row, custody_event_hash


def backfill(apps, schema_editor):
    CustodyEvent = apps.get_model("audit", "CustodyEvent")
    rows = CustodyEvent.objects.using(schema_editor.connection.alias).filter(canonical__isnull=True)
    for values in rows.order_by("seq").values_list(*FULL_COLUMNS).iterator(chunk_size=2000):
        row = dict(zip(FULL_COLUMNS, values))
        canonical = canonical_from_row(row)
        if custody_event_hash(row["prev_hash"], canonical) == row["hash"]:
            CustodyEvent.objects.using(schema_editor.connection.alias).filter(seq=row["seq"]).update(
                canonical=canonical)


class Migration(migrations.Migration):

    dependencies = [("audit", "0003_custody_checkpoints_alerts")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
