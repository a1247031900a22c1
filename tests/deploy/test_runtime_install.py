"""The production install starts: runtime dependencies only, production settings, PostgreSQL.

The image installs requirements.lock and nothing else; CI installs the test extras on top, which
once hid a runtime import of a test-only package (werkzeug): `migrate` failed in compose and
nothing started. Here the lock alone is installed (tests/deploy/runtime.py) and the first commands
of a deployment run on it, with DJANGO_DEBUG=false.
"""
from __future__ import annotations

import subprocess

import pytest

from .runtime import ROOT, base_env, drop_database, runtime_venv, scratch_database, secret_key

pytestmark = pytest.mark.services

# Django's deployment checks that stay, on purpose: HSTS is not forced on the commune's other
# host names (W005) nor submitted to browsers' preload lists (W021): neither is Témoin's to decide.
ACCEPTED_DEPLOY_WARNINGS = {"security.W005", "security.W021"}


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    venv = runtime_venv()
    database = scratch_database("runtime")
    data = tmp_path_factory.mktemp("runtime-data")
    env = base_env(venv) | {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secret_key(),
        "DJANGO_ALLOWED_HOSTS": "temoin.ville-exemple.fr",
        "DATABASE_URL": database,
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "TEMOIN_DATA_DIR": str(data),
        "HOME": str(data),
    }

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(venv / "bin" / args[0]), *args[1:]], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    run.venv, run.data = venv, data
    yield run
    drop_database(database)


def test_the_runtime_install_has_no_test_tool(production):
    listed = production("python", "-m", "pip", "list", "--format=freeze").stdout.lower()
    for tool in ("pytest", "moto", "playwright", "hypothesis"):
        assert f"\n{tool}==" not in f"\n{listed}", f"{tool} is in the runtime install: the lock pulls it in"


def test_migrate_runs_on_the_runtime_install(production):
    production("python", "manage.py", "migrate", "--noinput")
    plan = production("python", "manage.py", "migrate", "--plan").stdout
    assert "No planned migration operations" in plan


def test_the_deployment_checks_pass_with_production_settings(production):
    proc = production("python", "manage.py", "check", "--deploy")
    warnings = {word.strip("():") for word in proc.stderr.split() if word.startswith("(security.")}
    assert warnings <= ACCEPTED_DEPLOY_WARNINGS, proc.stderr


def test_the_custody_key_is_created_and_its_public_half_exported(production):
    production("python", "manage.py", "migrate", "--noinput")
    out = production("python", "manage.py", "custody", "export-key").stdout

    assert "BEGIN PUBLIC KEY" in out
    assert (production.data / "keys" / "custody-ed25519.pem").is_file()


def test_the_web_entry_point_loads_under_gunicorn(production):
    # --check-config imports the application, as the arbiter does before forking its workers.
    production("gunicorn", "--check-config", "config.wsgi:application")


def test_the_worker_entry_point_loads_every_task(production):
    code = ("from config.celery import app; app.loader.import_default_modules(); "
            "print('\\n'.join(sorted(app.tasks)))")
    tasks = set(production("python", "-c", code).stdout.split())
    from django.conf import settings

    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled <= tasks, f"beat schedules tasks no worker would know: {sorted(scheduled - tasks)}"
    assert {"evidence.pull_clip", "evidence.process_recording"} <= tasks


def test_every_module_of_the_project_imports_on_the_runtime_install(production):
    # Also the modules no command above reaches (a view, a redaction detector, a PDF report):
    # an import of an undeclared package anywhere fails here, not in production.
    code = """
import importlib, pkgutil, django
django.setup()
failed = []
for top in ("config", "accounts", "devices", "evidence", "audit"):
    package = importlib.import_module(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        if ".migrations." in info.name or info.name.endswith(".migrations"):
            continue
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
print("\\n".join(failed))
raise SystemExit(1 if failed else 0)
"""
    production("python", "-c", code)


def test_static_files_collect_with_hashed_names_and_compressed_copies(production):
    production("python", "manage.py", "collectstatic", "--noinput")
    static = production.data / "static"
    manifest = static / "staticfiles.json"
    assert manifest.is_file()
    import json

    paths = json.loads(manifest.read_text())["paths"]
    hashed = paths["temoin/temoin.css"]  # the stylesheet of every page (templates/base.html)
    assert hashed != "temoin/temoin.css" and hashed.startswith("temoin/temoin.") and hashed.endswith(".css")
    assert (static / hashed).is_file() and (static / f"{hashed}.gz").is_file()
