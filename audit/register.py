"""The register of consultations, extractions and erasures (LEGAL.md rule 7: CSI R241-14, LIL 101):
which custody actions are register entries, and of which kind. Imports nothing of the audit app,
so that models (``CustodyEvent.register_kind``) and selectors both read it without a cycle.
"""
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

# Kinds of register entries, and the custody actions each covers (written by the services of the
# consultation, extraction/export/share and erasure features).
REGISTER_KINDS = {
    "consultation": _("consultation"),
    "extraction": _("extraction"),
    "erasure": _("effacement"),
}


def register_kind_q(kind: str) -> Q:
    if kind == "consultation":
        return Q(action="recording.consulted")
    if kind == "extraction":
        return (Q(action="recording.extracted") | Q(action__startswith="extraction.") | Q(action__startswith="export.")
                | Q(action__startswith="share."))
    if kind == "erasure":
        return Q(action="recording.erased")
    if kind == "":
        return register_kind_q("consultation") | register_kind_q("extraction") | register_kind_q("erasure")
    raise ValueError(f"unknown register kind {kind!r}; one of {', '.join(REGISTER_KINDS)}")


def register_kind_of(action: str) -> str:
    if action == "recording.consulted":
        return "consultation"
    if action == "recording.extracted" or action.startswith(("extraction.", "export.", "share.")):
        return "extraction"
    if action == "recording.erased":
        return "erasure"
    return ""
