"""The four invariants every fault test checks after recovery (issue #8), in one place.

1. Every clip is either verified in the store or still on the camera.
2. No duplicate recording.
3. The custody chain verifies.
4. Nothing was wiped from a camera unless verified in the store first.
"""
from __future__ import annotations

from collections import Counter

INVARIANTS = [
    "every clip verified in the store (read back, hash equal, locked until its retention end) or still on the camera",
    "no duplicate recording (one live recording per clip, per content and per store key)",
    "custody chain verifies (audit.verification.verify_chain, full mode)",
    "nothing wiped from a camera unverified (each wipe follows recording.verified in the custody log)",
]


class InvariantBroken(AssertionError):
    pass


def check(rig) -> dict:
    """Assert the four invariants on the rig's database, store and cameras; return figures."""
    from audit.verification import verify_chain
    from audit.models import CustodyEvent
    from devices.models import OffloadItem
    from evidence.models import Recording
    from evidence.ingest.services import VERIFIED_STATUSES

    problems: list[str] = []
    store = rig.store
    recordings = list(Recording.objects.select_related("camera").order_by("pk"))
    verified = [r for r in recordings if r.status in VERIFIED_STATUSES]
    events = list(CustodyEvent.objects.filter(action__in=["recording.verified", "recording.released_from_device"])
                  .values_list("seq", "action", "recording_id"))
    verified_seq = {rid: seq for seq, action, rid in events if action == "recording.verified"}
    released = [(seq, rid) for seq, action, rid in events if action == "recording.released_from_device"]

    def verified_in_store(serial: str, sha: str) -> Recording | None:
        for rec in verified:
            if rec.camera.serial != serial or rec.sha256 != sha:
                continue
            try:
                back_sha, back_size = store.digest(rec.store_key, rec.store_version_id)
                info = store.head(rec.store_key, rec.store_version_id)
            except Exception as exc:  # noqa: BLE001 - reported as a broken invariant
                problems.append(f"recording {rec.pk}: store object {rec.store_key} unreadable: {exc}")
                continue
            if (back_sha, back_size) != (rec.sha256, rec.size):
                problems.append(f"recording {rec.pk}: store holds {back_sha}/{back_size}, not {rec.sha256}/{rec.size}")
            elif info.mode != "COMPLIANCE" or info.retain_until is None or info.retain_until < rec.retain_until:
                problems.append(f"recording {rec.pk}: {rec.store_key} not locked until {rec.retain_until}")
            elif rec.pk not in verified_seq:
                problems.append(f"recording {rec.pk}: verified without a recording.verified custody event")
            else:
                return rec
        return None

    # 1. Verified in the store, or still on the camera (the same bytes).
    on_camera = in_store = 0
    for cam in rig.cameras:
        present = cam.current_files()
        for rel, clip in cam.clips.items():
            if present.get(rel) == clip.sha256:
                on_camera += 1
                if verified_in_store(cam.serial, clip.sha256):
                    in_store += 1
            elif verified_in_store(cam.serial, clip.sha256):
                in_store += 1
            else:
                problems.append(f"{cam.serial}:{rel} ({clip.sha256[:12]}) is neither on the camera nor verified "
                                f"in the store — LOST (on camera now: {present.get(rel, 'nothing')[:12]})")

    # 2. No duplicate recording.
    live = [r for r in recordings if r.status not in (Recording.Status.DUPLICATE, Recording.Status.ERASED)]
    for (cam, sha), n in Counter((r.camera_id, r.sha256) for r in verified).items():
        if n > 1:
            problems.append(f"{n} verified recordings of camera {cam} hold the same content {sha[:12]}")
    for ident, n in Counter((r.camera_id, r.source_path, r.source_size, r.source_mtime_ns) for r in live).items():
        if n > 1:
            problems.append(f"{n} recordings for the same clip {ident[1]} of camera {ident[0]}")
    for key, n in Counter(r.store_key for r in recordings).items():
        if n > 1:
            problems.append(f"{n} recordings share the store key {key}")
    for rec in recordings:
        if rec.status == Recording.Status.DUPLICATE and (rec.duplicate_of is None
                                                        or rec.duplicate_of.status not in VERIFIED_STATUSES):
            problems.append(f"recording {rec.pk} is a duplicate of nothing verified")

    # 3. The custody chain verifies.
    report = verify_chain(full=True)
    if not report.ok:
        problems.append(f"custody chain: {report.summary()}")

    # 4. Nothing wiped unverified: each wipe is logged after the recording's verification.
    wiped = list(OffloadItem.objects.filter(wiped=True).select_related("recording"))
    for item in wiped:
        if not item.safe_to_wipe:
            problems.append(f"offload item {item.pk} ({item.path}) wiped with status {item.status}")
        if item.recording is None or item.recording.status not in VERIFIED_STATUSES + (Recording.Status.DUPLICATE,):
            problems.append(f"offload item {item.pk} ({item.path}) wiped but its recording is not verified")
    for seq, rid in released:
        if rid not in verified_seq and not _duplicate_verified(rid, verified_seq):
            problems.append(f"custody #{seq}: recording {rid} released from the camera, never verified")
        elif rid in verified_seq and seq < verified_seq[rid]:
            problems.append(f"custody #{seq}: recording {rid} released from the camera before its verification")
    wiped_files = sum(1 for cam in rig.cameras for rel, clip in cam.clips.items()
                      if cam.current_files().get(rel) != clip.sha256)
    if problems:
        raise InvariantBroken("invariants broken after recovery:\n  - " + "\n  - ".join(problems[:30]))
    return {"clips": sum(len(c.clips) for c in rig.cameras), "verified_in_store": in_store,
            "still_on_camera": on_camera, "wiped_from_cameras": wiped_files,
            "recordings": len(recordings), "custody_events": report.events}


def _duplicate_verified(recording_id, verified_seq) -> bool:
    from evidence.models import Recording

    rec = Recording.objects.filter(pk=recording_id).first()
    return bool(rec and rec.duplicate_of_id and rec.duplicate_of_id in verified_seq)
