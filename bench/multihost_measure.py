"""What bench/multihost.py (issue 19) samples during the shift change, and its final checks."""
from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path

import load as load_bench  # bench/load.py: /proc sampling, PostgreSQL helper


# --- sampling ---------------------------------------------------------------------------------------

class Sampler(threading.Thread):
    """Every second: queue depths (Redis), clips verified and cameras released (PostgreSQL), CPU per
    process group (/proc), machine CPU and the disk (/proc/stat, /proc/diskstats)."""

    def __init__(self, stack, since: dt.datetime):
        super().__init__(name="sampler", daemon=True)
        self.stack, self.since = stack, since
        self.queues = [f"dock.{h}" for h in stack.hosts] + ["media"]
        self.stop = threading.Event()
        self.samples: list[dict] = []
        self.device = load_bench.disk_device(stack.workdir)

    def groups(self, table) -> dict[str, int]:
        subtree = load_bench.subtree_ticks(table)
        out: dict[str, int] = {}
        for role, proc in list(self.stack.rig.procs.items()):
            key = role.split("-")[0] if role.startswith(("dockd-", "worker-hote")) else role
            key = {"worker": "dock workers", "dockd": "dockd"}.get(key, key)
            out[key] = out.get(key, 0) + subtree(proc.pid)
        # The shared Ceph cluster (other users' requests included): the gateway apart from the OSD
        # and monitor, since they scale apart (gateways per request load, OSDs per replica and disk).
        for label, comms in (("ceph radosgw", ("radosgw",)), ("ceph osd+mon", ("ceph-osd", "ceph-mon"))):
            out[label] = sum(t for _p, c, t in table.values() if c in comms)
        out["bench (users, sampler)"] = table.get(os.getpid(), (0, "", 0))[2]
        return out

    def run(self) -> None:
        import redis

        r = redis.Redis.from_url(self.stack.rig.redis_url)
        db = load_bench.pg(self.stack.rig.database_url)
        prev = None
        while not self.stop.is_set():
            t = time.time()
            table = load_bench.proc_table()
            with r.pipeline(transaction=False) as pipe:
                for q in self.queues:
                    pipe.llen(q)
                depths = dict(zip(self.queues, pipe.execute()))
            verified, released = db.execute(
                "SELECT (SELECT count(*) FROM devices_offloaditem i JOIN devices_offloadsession s ON s.id = i.session_id "
                "        WHERE s.started_at >= %s AND i.status = 'verified'),"
                "       (SELECT count(*) FROM devices_offloadsession WHERE started_at >= %s AND finished_at IS NOT NULL)",
                [self.since, self.since]).fetchone()
            now = {"t": t, "groups": self.groups(table), "cpu": load_bench.cpu_stat(),
                   "disk": load_bench.disk_stat(self.device), "queues": depths, "verified": verified,
                   "released": released}
            if prev is not None:
                d = load_bench.Sampler._delta(prev, {**now, "pg": []})
                d.update(verified=verified, released=released)
                self.samples.append(d)
            prev = now
            self.stop.wait(max(0.0, 1.0 - (time.time() - t)))
        db.close()


# --- checks -------------------------------------------------------------------------------------------

def checks(stack, db, since: dt.datetime, expected: dict[str, str], master: Path) -> dict:
    """Every shift clip → one recording with the baseline's digest, locked in the store; custody intact."""
    rows = db.execute(
        "SELECT i.path, i.status, i.wiped, r.sha256, r.size, r.store_key, r.store_version_id, c.serial "
        "FROM devices_offloaditem i JOIN devices_offloadsession s ON s.id = i.session_id "
        "JOIN devices_camera c ON c.id = s.camera_id LEFT JOIN evidence_recording r ON r.id = i.recording_id "
        "WHERE s.started_at >= %s", [since]).fetchall()
    recordings = db.execute("SELECT count(*) FROM evidence_recording WHERE ingested_at >= %s", [since]).fetchone()[0]
    want = {}
    for path, digest in expected.items():
        rel = Path(path).relative_to(master)  # slotK/DCIM/...
        want[rel.name] = digest
    matched = sum(1 for r in rows if r[3] and want.get(Path(r[0]).name) == r[3])
    locked, store_errors = 0, []
    if not stack.args.local_store:
        import boto3

        s3 = boto3.client("s3", endpoint_url=stack.rig.s3_url, aws_access_key_id=stack.args.s3_access_key,
                          aws_secret_access_key=stack.args.s3_secret_key, region_name="us-east-1")
        for r in rows:
            if not r[5]:
                continue
            try:
                head = s3.head_object(Bucket=stack.env["S3_BUCKET"], Key=r[5], VersionId=r[6])
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                store_errors.append(f"{r[5]}: {exc}")
                continue
            if head.get("ObjectLockMode") == "COMPLIANCE" and head["ContentLength"] == r[4]:
                locked += 1
    custody = stack.manage("custody", "verify", check=False)
    left = sum(1 for root in stack.dock_roots.values() for _ in root.rglob("*.mp4"))
    return {
        "items": len(rows), "verified": sum(1 for r in rows if r[1] == "verified"),
        "wiped": sum(1 for r in rows if r[2]), "recordings": recordings, "sha256_match": matched,
        "locked_in_store": locked if not stack.args.local_store else None, "store_errors": store_errors[:5],
        "left_on_cameras": left, "custody_ok": custody.returncode == 0,
        "custody": (custody.stdout.strip().splitlines() or custody.stderr.strip().splitlines() or ["?"])[-1][:200],
    }
