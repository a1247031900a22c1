"""Once per docking (LEGAL.md rule 2, CSI R241-11 III: transfer as soon as the agents return, and
no clip read twice into two recordings): whether a camera seen on a dock slot is a new docking.

A docking is named ``<dock>/<slot>/<inode>/<mtime>`` of the camera's DEVICE.json; a camera unplugged
and docked again keeps that identity (its files keep their inode and time), so a new docking gets a
time suffix, once the previous session of that identity has settled.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from devices.models import OffloadSession


@dataclass(frozen=True)
class Docking:
    verdict: str  # "offload": start a session under ``name``; "done": already offloaded; "wait": retry later
    name: str = ""


def docking_decide(*, dock: str, slot: str, identity: tuple, again: bool = False,
                   now: dt.datetime | None = None) -> Docking:
    name = f"{dock}/{slot}/{identity[0]}/{identity[1]}"
    previous = OffloadSession.objects.filter(Q(docking=name) | Q(docking__startswith=f"{name}@"))
    if again:
        # Unplugged and docked again: a new docking, so that the clips it still holds are offloaded,
        # once its previous session settled.
        if previous.filter(status=OffloadSession.Status.RUNNING).exists():
            return Docking("wait")
        return Docking("offload", f"{name}@{(now or timezone.now()):%Y%m%dT%H%M%S.%f}")
    if previous.exists():
        return Docking("done")  # dockd restarted while the camera stayed docked
    return Docking("offload", name)
