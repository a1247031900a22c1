"""Build of the optional C extension only; the project's metadata is in pyproject.toml.

audit._chainscan (the custody-chain reader, docs/custody.md §4) needs a C compiler, libpq-dev and
libssl-dev. Without them the build of the extension fails, the install goes on, and verification
uses the Python reader. TEMOIN_BUILD_EXTENSIONS=0 skips it (the Docker image builds it in a stage of
its own).
"""
import os
import shutil
import subprocess

from setuptools import Extension, setup


def pg_config(flag: str, default: str) -> str:
    exe = shutil.which("pg_config")
    if exe:
        try:
            out = subprocess.run([exe, flag], capture_output=True, text=True, check=True, timeout=30).stdout.strip()
            if out:
                return out
        except (OSError, subprocess.SubprocessError):
            pass
    return default


ext_modules = []
if os.environ.get("TEMOIN_BUILD_EXTENSIONS", "1") != "0":
    libdir = pg_config("--libdir", "")
    ext_modules.append(Extension(
        "audit._chainscan",
        sources=["audit/_chainscan.c"],
        include_dirs=[pg_config("--includedir", "/usr/include/postgresql")],
        library_dirs=[libdir] if libdir else [],
        libraries=["pq", "crypto"],
        extra_compile_args=["-O2", "-std=c11", "-Wall"],
        optional=True,
    ))

setup(ext_modules=ext_modules)
