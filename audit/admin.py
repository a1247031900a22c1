"""Django admin: the custody log and its checkpoints read-only; alerts can be acknowledged."""
from django.contrib import admin

from . import services
from .models import Alert, Checkpoint, CustodyEvent, Verification


class ReadOnlyAdmin(admin.ModelAdmin):
    # CSI R241-14: nobody edits the journal de traçabilité, not even from the admin.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CustodyEvent)
class CustodyEventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "occurred_at", "actor_label", "action", "subject_type", "subject_id", "recording_id")
    list_filter = ("action",)
    search_fields = ("actor_label", "subject_id", "hash")
    exclude = ("canonical",)


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ("seq", "created_at", "reason", "count", "purge_through_seq", "tsa_time", "store_key")
    exclude = ("tsa_token",)


@admin.register(Verification)
class VerificationAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "ok", "mode", "events", "problem_kind", "problem_seq", "triggered_by")
    list_filter = ("ok", "mode")


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "seq", "problem_kind", "occurrences", "last_seen_at", "acknowledged_at")
    list_filter = ("kind", ("acknowledged_at", admin.EmptyFieldListFilter))
    readonly_fields = ("created_at", "last_seen_at", "occurrences", "kind", "seq", "problem_kind", "message",
                       "verification", "acknowledged_at", "acknowledged_by")
    fields = readonly_fields + ("acknowledgement",)
    actions = ["acknowledge"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Acquitter les alertes sélectionnées")
    def acknowledge(self, request, queryset):
        for alert in queryset.filter(acknowledged_at__isnull=True):
            services.alert_acknowledge(alert=alert, by=request.user, note="acquittée depuis l'administration")
