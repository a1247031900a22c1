"""The data a page's map needs (templates/_place_map.html, static/maps/place_map.js).

Leaflet is the bundle of the locked npm package (config/static/vendor/leaflet, `make assets`); the
tiles come from TEMOIN_MAP_TILES (IGN's Géoplateforme by default, empty for none) and the page works
without them (static/maps/background.js). The intervention page uses the same bundle and settings.
"""
from django.conf import settings
from django.utils.translation import gettext as _


def _point(value) -> list[float] | None:
    try:
        lat, lon = float(value[0]), float(value[1])
    except (TypeError, ValueError, IndexError, KeyError):
        return None
    return [lat, lon] if -90 <= lat <= 90 and -180 <= lon <= 180 else None


def recording_map(recording) -> dict | None:
    """Where a recording was made: its GPS track and its location (or the track's first point)."""
    track = [p for p in (_point(q) for q in (recording.track or [])) if p]
    location = _point(recording.location) if recording.location else None
    if not track and not location:
        return None
    return {**_base(), "track": track, "location": location, "aria_label": _("Lieu de l'enregistrement"),
            "track_label": _("Trace GPS de la caméra"), "location_label": _("Lieu de l'enregistrement")}


def access_request_map(access_request) -> dict | None:
    """The place the requester describes and the radius searched around it."""
    place = _point(access_request.place) if access_request.place else None
    if not place:
        return None
    return {**_base(), "place": place, "radius": access_request.radius_m or 50,
            "aria_label": _("Lieu et rayon de la demande d'accès"), "place_label": _("Lieu décrit par le demandeur")}


def _base() -> dict:
    return {"tiles": settings.TEMOIN_MAP_TILES, "attribution": settings.TEMOIN_MAP_ATTRIBUTION}
