"""The deployment's Ed25519 key that signs custody checkpoints.

The private key lives at ``settings.CUSTODY_SIGNING_KEY`` (PEM, PKCS#8, mode 0600), created on first
use. The public key is published on /journal/cle-publique/, by ``manage.py custody export-key`` and
in every signed checkpoint document, so that anyone can check a checkpoint without trusting us.
"""
from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from django.conf import settings


class SigningKeyError(Exception):
    pass


def _path() -> Path:
    return Path(settings.CUSTODY_SIGNING_KEY)


def private_key(*, create: bool = True) -> Ed25519PrivateKey | None:
    """The signing key, created (0600, directory 0700) when absent and ``create`` is true."""
    path = _path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if not create:
            return None
        return _create(path)
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an Ed25519 private key")
    return key


def _create(path: Path) -> Ed25519PrivateKey:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    # Written whole to a private temporary file, then linked into place: link() fails if the key
    # exists, so two processes starting at once never each keep their own key, and no reader ever
    # sees a half-written file (the live probe's first burst read one: MalformedFraming).
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".custody-key-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return private_key(create=False)
    finally:
        os.unlink(tmp)
    return key


def public_key() -> Ed25519PublicKey | None:
    """The public half, or None when no key was ever created (nothing signed yet)."""
    key = private_key(create=False)
    return key.public_key() if key is not None else None


def public_key_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, hex: the fingerprint printed everywhere."""
    return hashlib.sha256(public_key_raw(key)).hexdigest()


def sign(data: bytes) -> tuple[str, Ed25519PublicKey]:
    key = private_key(create=True)
    return base64.b64encode(key.sign(data)).decode(), key.public_key()


def verify(key: Ed25519PublicKey, data: bytes, signature_b64: str) -> bool:
    try:
        key.verify(base64.b64decode(signature_b64, validate=True), data)
        return True
    except (InvalidSignature, ValueError):
        return False
