"""Server-rendered pages. Thin: every read goes through the selectors."""
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from devices.models import OffloadSession

from .models import Recording
from .selectors import recordings_visible_to


@login_required
def recording_list(request):
    qs = recordings_visible_to(user=request.user)
    status = request.GET.get("status", "")
    camera = request.GET.get("camera", "").strip()
    if status in Recording.Status.values:
        qs = qs.filter(status=status)
    if camera:
        qs = qs.filter(camera__serial__icontains=camera)
    page = Paginator(qs.order_by("-started_at", "-id"), 50).get_page(request.GET.get("page"))
    sessions = (OffloadSession.objects.filter(organisation_id=request.user.organisation_id)
                .select_related("camera", "dock")[:5] if request.user.organisation_id else [])
    return render(request, "evidence/recording_list.html", {
        "page": page, "statuses": Recording.Status.choices, "status": status, "camera": camera,
        "sessions": sessions,
    })


@login_required
def recording_detail(request, pk: int):
    recording = get_object_or_404(recordings_visible_to(user=request.user), pk=pk)
    events = recording.custody_events.order_by("seq")
    return render(request, "evidence/recording_detail.html", {"r": recording, "events": events})
