"""The custody signing key is created once, whole, even when many processes need it at once."""
import multiprocessing
import stat

from audit.integrations import signing


def _public_raw(path, queue):
    from django.conf import settings

    settings.CUSTODY_SIGNING_KEY = path
    key = signing.private_key()
    queue.put(signing.public_key_raw(key.public_key()).hex())


def test_concurrent_first_uses_share_one_whole_key(tmp_path, settings):
    path = tmp_path / "keys" / "custody-ed25519.pem"
    settings.CUSTODY_SIGNING_KEY = path
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_public_raw, args=(path, queue)) for _ in range(12)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 12  # no process read a half-written key
    keys = {queue.get(timeout=5) for _ in procs}
    assert len(keys) == 1 and keys == {signing.public_key_raw(signing.public_key()).hex()}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["custody-ed25519.pem"]  # no temporary left
