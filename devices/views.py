"""The fleet page (flotte): cameras, their issue to agents, docks and slots. Thin views."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from . import selectors, services
from .models import Camera

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
