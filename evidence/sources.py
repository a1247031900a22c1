"""Where a recording comes from and the legal regime of its images (issue 22)."""
from django.db import models
from django.utils.translation import gettext_lazy as _


class Source(models.TextChoices):
    # Where a recording came from (issue 22): a docked body-worn camera, an Axis body worn system,
    # or a partner's upload under a requisition.
    CAMERA = "camera", _("caméra individuelle")
    AXIS = "axis", _("système Axis")
    REQUISITION = "requisition", _("réquisition")


class Regime(models.TextChoices):
    # The legal regime of the images: body-worn cameras (CSI L241-1/2, R241-8 ff.) or
    # videoprotection (CSI L251-1 ff.; retention fixed by the prefectoral authorisation, L252-5).
    BODY_WORN = "body_worn", _("caméras individuelles")
    VIDEOPROTECTION = "videoprotection", _("vidéoprotection")
