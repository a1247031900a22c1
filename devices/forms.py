"""Forms of the fleet page: what was typed stays in the form when the register refuses it."""
from django import forms
from django.utils.translation import gettext_lazy as _


class CameraForm(forms.Form):
    serial = forms.CharField(label=_("Numéro de série"), max_length=64,
                             help_text=_("Tel qu'il figure sur la caméra (DEVICE.json) : il ne pourra plus être modifié."))
    model = forms.CharField(label=_("Modèle"), max_length=100, required=False)
    firmware = forms.CharField(label=_("Micrologiciel (facultatif)"), max_length=100, required=False,
                               help_text=_("Mis à jour automatiquement à chaque déchargement."))

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            # The serial names the camera's recordings and its custody history: never edited.
            del self.fields["serial"]


class DockForm(forms.Form):
    name = forms.CharField(label=_("Identifiant technique"), max_length=50,
                           help_text=_("Celui de la station dans sa configuration (TEMOIN_DOCK_NAME) : "
                                       "minuscules, chiffres, « - » et « _ ». Il ne pourra plus être modifié."))
    label = forms.CharField(label=_("Nom de la station"), max_length=200, required=False,
                            help_text=_("Par exemple : Poste central, rez-de-chaussée."))
    slots = forms.CharField(label=_("Emplacements"), required=False, widget=forms.Textarea(attrs={"rows": 3}),
                            help_text=_("Un nom par ligne ou séparés par des virgules (slot-1, slot-2…)."))

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["name"]
            self.fields["slots"].label = _("Emplacements à ajouter")


class RetireForm(forms.Form):
    reason = forms.CharField(label=_("Motif du retrait (inscrit au journal de traçabilité)"), max_length=1000,
                             widget=forms.Textarea(attrs={"rows": 3}))
