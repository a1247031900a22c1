"""The fleet page (flotte): cameras, their issue to agents, docks and slots. Thin views."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import registry, selectors, services
from .forms import CameraForm, DockForm, RetireForm
from .models import Camera, Dock

HISTORY_ROWS = 50


def _require_fleet_access(user) -> None:
    # ARCHITECTURE.md §1: the technical administrator manages cameras and docks; the head of service
    # issues cameras to the agents. Other roles get a 403: the page exists, its content is not theirs.
    if not selectors.fleet_access(user=user):
        raise PermissionDenied(_("La gestion de la flotte est réservée à l'administrateur technique "
                                 "et au responsable de service."))


@login_required
@require_GET
def fleet(request):
    _require_fleet_access(request.user)
    now = timezone.now()
    cameras = list(selectors.fleet_cameras_for(user=request.user, now=now))
    history = selectors.assignments_visible_to(user=request.user)
    camera_filter = request.GET.get("camera", "")
    if camera_filter.isdigit():
        history = history.filter(camera_id=int(camera_filter))
    return render(request, "devices/fleet.html", {
        "cameras": cameras, "now": now,
        "not_docked": sum(1 for c in cameras if c.not_docked),
        "wearers": list(selectors.wearers_for(user=request.user)),
        "history": list(history[:HISTORY_ROWS]), "camera_filter": camera_filter,
        "slots": list(selectors.dock_slots_for(user=request.user)),
        "docks": list(selectors.docks_visible_to(user=request.user).order_by("name")),
        "threshold_hours": int(selectors.NOT_DOCKED_AFTER.total_seconds() // 3600),
    })


def _camera(request, pk: int) -> Camera:
    _require_fleet_access(request.user)
    try:
        return selectors.camera_for_fleet(user=request.user, pk=pk)
    except Camera.DoesNotExist as exc:
        raise Http404(_("Caméra introuvable.")) from exc


@login_required
@require_POST
def camera_check_out(request, pk: int):
    """Plain form (works without JavaScript): issue the camera to an agent, logged."""
    camera = _camera(request, pk)
    officer_id = request.POST.get("officer", "")
    officer = selectors.wearers_for(user=request.user).filter(pk=officer_id).first() if officer_id.isdigit() else None
    if officer is None:
        messages.error(request, _("Caméra %(serial)s : choisissez l'agent à qui la remettre.") % {"serial": camera.serial})
        return redirect("fleet")
    try:
        services.camera_check_out(camera=camera, officer=officer, by=request.user)
    except services.CustodyRefused as exc:
        messages.error(request, _("Sortie refusée : %(reason)s") % {"reason": exc})
    else:
        messages.success(request, _("Caméra %(serial)s remise à %(officer)s.") % {"serial": camera.serial,
                                                                                   "officer": officer})
    return redirect("fleet")


@login_required
@require_POST
def camera_check_in(request, pk: int):
    """Plain form: record the camera's return, logged. Dock it so that its recordings are offloaded."""
    camera = _camera(request, pk)
    try:
        assignment = services.camera_check_in(camera=camera, by=request.user)
    except services.CustodyRefused as exc:
        messages.error(request, _("Retour refusé : %(reason)s") % {"reason": exc})
    else:
        messages.success(request, _("Retour de la caméra %(serial)s enregistré (%(officer)s).")
                         % {"serial": camera.serial, "officer": assignment.officer})
    return redirect("fleet")


# --- The register: cameras and docks added, edited, retired, brought back ---------------------

def _dock(request, pk: int) -> Dock:
    _require_fleet_access(request.user)
    try:
        return selectors.dock_for_fleet(user=request.user, pk=pk)
    except Dock.DoesNotExist as exc:
        raise Http404(_("Station d'accueil introuvable.")) from exc


def _submit(request, form, call, *, template: str, context: dict, success: str, anchor: str = ""):
    """Validate ``form``, run the service ``call(data)``; on a refusal, the page again with what was typed."""
    if request.method == "POST" and form.is_valid():
        try:
            result = call(form.cleaned_data)
        except registry.FleetError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, success % {"name": result})
            return redirect(reverse("fleet") + anchor.format(pk=result.pk))
    return render(request, template, {**context, "form": form}, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def camera_create(request):
    _require_fleet_access(request.user)
    form = CameraForm(request.POST or None)
    return _submit(request, form, lambda d: registry.camera_create(by=request.user, **d),
                   template="devices/register_form.html", anchor="#camera-{pk}",
                   context={"title": _("Enregistrer une caméra individuelle"), "submit": _("Enregistrer la caméra")},
                   success=_("Caméra %(name)s enregistrée."))


@login_required
@require_http_methods(["GET", "POST"])
def camera_edit(request, pk: int):
    camera = _camera(request, pk)
    form = CameraForm(request.POST or None, editing=True, initial={"model": camera.model, "firmware": camera.firmware})
    return _submit(request, form, lambda d: registry.camera_update(camera=camera, by=request.user, **d),
                   template="devices/register_form.html", anchor="#camera-{pk}",
                   context={"title": _("Modifier la caméra %(serial)s") % {"serial": camera.serial},
                            "submit": _("Enregistrer les modifications")},
                   success=_("Caméra %(name)s modifiée."))


@login_required
@require_http_methods(["GET", "POST"])
def camera_retire(request, pk: int):
    """A confirmation page with the reason, then the camera is out of service (logged)."""
    camera = _camera(request, pk)
    form = RetireForm(request.POST or None)
    return _submit(request, form, lambda d: registry.camera_retire(camera=camera, by=request.user, **d),
                   template="devices/retire_confirm.html", anchor="#camera-{pk}",
                   context={"title": _("Retirer du service la caméra %(serial)s ?") % {"serial": camera.serial},
                            "explain": _("Elle ne pourra plus être remise à un agent et ses enregistrements ne seront "
                                         "plus déchargés tant qu'elle n'est pas remise en service. Son historique "
                                         "reste au journal de traçabilité."),
                            "submit": _("Confirmer le retrait")},
                   success=_("Caméra %(name)s retirée du service."))


@login_required
@require_POST
def camera_reinstate(request, pk: int):
    camera = _camera(request, pk)
    try:
        registry.camera_reinstate(camera=camera, by=request.user)
    except registry.FleetError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Caméra %(serial)s remise en service.") % {"serial": camera.serial})
    return redirect(reverse("fleet") + f"#camera-{camera.pk}")


@login_required
@require_http_methods(["GET", "POST"])
def dock_create(request):
    _require_fleet_access(request.user)
    form = DockForm(request.POST or None, initial={"name": request.GET.get("nom", "")[:50]})
    return _submit(request, form, lambda d: registry.dock_create(by=request.user, **d),
                   template="devices/register_form.html", anchor="#dock-{pk}",
                   context={"title": _("Enregistrer une station d'accueil"), "submit": _("Enregistrer la station")},
                   success=_("Station d'accueil %(name)s enregistrée."))


@login_required
@require_http_methods(["GET", "POST"])
def dock_edit(request, pk: int):
    dock = _dock(request, pk)
    form = DockForm(request.POST or None, editing=True, initial={"label": dock.label})
    return _submit(request, form,
                   lambda d: registry.dock_update(dock=dock, by=request.user, label=d["label"], add_slots=d["slots"]),
                   template="devices/register_form.html", anchor="#dock-{pk}",
                   context={"title": _("Modifier la station d'accueil %(name)s") % {"name": dock.name},
                            "slots": list(dock.slots.order_by("name").values_list("name", flat=True)),
                            "submit": _("Enregistrer les modifications")},
                   success=_("Station d'accueil %(name)s modifiée."))


@login_required
@require_http_methods(["GET", "POST"])
def dock_retire(request, pk: int):
    dock = _dock(request, pk)
    form = RetireForm(request.POST or None)
    return _submit(request, form, lambda d: registry.dock_retire(dock=dock, by=request.user, **d),
                   template="devices/retire_confirm.html", anchor="#dock-{pk}",
                   context={"title": _("Retirer du service la station %(name)s ?") % {"name": dock.name},
                            "explain": _("Les caméras posées sur cette station ne seront plus déchargées (ni "
                                         "vidées) tant qu'elle n'est pas remise en service. Son historique reste "
                                         "au journal de traçabilité."),
                            "submit": _("Confirmer le retrait")},
                   success=_("Station d'accueil %(name)s retirée du service."))


@login_required
@require_POST
def dock_reinstate(request, pk: int):
    dock = _dock(request, pk)
    try:
        registry.dock_reinstate(dock=dock, by=request.user)
    except registry.FleetError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Station d'accueil %(name)s remise en service.") % {"name": dock.name})
    return redirect(reverse("fleet") + f"#dock-{dock.pk}")
