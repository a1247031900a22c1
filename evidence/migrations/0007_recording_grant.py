"""Per-recording grants in our own table (issue 23): django-guardian is no longer installed.

Its backend ignored a grant's expiry and its post-migrate hook created an ``AnonymousUser`` account;
the grant rows are kept (same ids, same expiry, motif and author), renamed, without the
``permission`` column guardian's base required (there was only ever one).
"""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models.deletion import ProtectedError


def drop_guardian_anonymous_user(apps, schema_editor):
    """The account guardian's post-migrate hook created: never an organisation's, never signed in."""
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    for user in User.objects.filter(username="AnonymousUser", organisation__isnull=True, last_login__isnull=True):
        try:
            user.delete()
        except ProtectedError:  # referenced somewhere: left in place, inactive
            User.objects.filter(pk=user.pk).update(is_active=False)


class Migration(migrations.Migration):

    dependencies = [
        ('evidence', '0006_interventions'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterUniqueTogether(name='recordinguserobjectpermission', unique_together=set()),
        migrations.RemoveField(model_name='recordinguserobjectpermission', name='permission'),
        migrations.RenameModel(old_name='RecordingUserObjectPermission', new_name='RecordingGrant'),
        migrations.RenameField(model_name='recordinggrant', old_name='content_object', new_name='recording'),
        migrations.AlterField(
            model_name='recordinggrant', name='user',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='recording_grants',
                                    to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterModelOptions(name='recordinggrant', options={}),
        migrations.AddConstraint(
            model_name='recordinggrant',
            constraint=models.UniqueConstraint(fields=('user', 'recording'), name='one_grant_per_user_and_recording'),
        ),
        migrations.AlterModelOptions(name='recording', options={'ordering': ['-started_at', '-id']}),
        migrations.RunPython(drop_guardian_anonymous_user, migrations.RunPython.noop),
    ]
