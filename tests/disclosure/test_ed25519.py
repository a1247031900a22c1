"""verify.py's pure-Python Ed25519 (RFC 8032) agrees with the `cryptography` package."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import evidence.disclosure

VERIFY = Path(evidence.disclosure.__file__).parent / "verifier" / "verify.py"


@pytest.fixture(scope="module")
def verify():
    spec = importlib.util.spec_from_file_location("temoin_verify", VERIFY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _raw(public) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_rfc8032_test_vector_1(verify):
    # RFC 8032 section 7.1, TEST 1 (empty message).
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    signature = bytes.fromhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                              "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
    assert verify.ed25519_verify(public, b"", signature)
    assert not verify.ed25519_verify(public, b"x", signature)


@pytest.mark.parametrize("length", [0, 1, 31, 64, 1000, 70_000])
def test_valid_signatures_from_cryptography_verify(verify, length):
    key = Ed25519PrivateKey.generate()
    message = os.urandom(length)
    assert verify.ed25519_verify(_raw(key.public_key()), message, key.sign(message))


def test_altered_message_signature_or_key_is_refused_like_cryptography(verify):
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    message = b'{"seq":42,"hash":"abc"}'
    signature = key.sign(message)
    public = _raw(key.public_key())
    for i in range(0, 64, 7):
        bad = bytearray(signature)
        bad[i] ^= 0x01
        assert not verify.ed25519_verify(public, message, bytes(bad))
    assert not verify.ed25519_verify(public, message + b" ", signature)
    assert not verify.ed25519_verify(_raw(other.public_key()), message, signature)
    # s >= L (malleability) and wrong lengths are refused.
    high_s = signature[:32] + (int.from_bytes(signature[32:], "little") + verify._L).to_bytes(32, "little")
    assert not verify.ed25519_verify(public, message, high_s)
    assert not verify.ed25519_verify(public[:31], message, signature)
    assert not verify.ed25519_verify(public, message, signature[:63])


def test_public_key_is_read_from_the_pem_cryptography_writes(verify):
    key = Ed25519PrivateKey.generate().public_key()
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert verify.public_key_from_pem(pem) == _raw(key)
    with pytest.raises(ValueError):
        verify.public_key_from_pem(pem.replace("MCow", "MCox"))


def test_verify_py_imports_only_the_standard_library():
    import ast
    import sys

    tree = ast.parse(VERIFY.read_text())
    modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert modules <= set(sys.stdlib_module_names), modules
