"""Static checks of the production deployment: compose.yaml, Dockerfile, deploy/minio-init.sh.

There is no Docker engine on the development machines, so these tests read the files; the
services themselves are run by tests/deploy/test_compose_rehearsal.py. They catch the drift that breaks a deployment without anyone noticing: a management
command renamed in the code but not in compose, a queue name that no worker consumes, a bucket
created without Object Lock, a secret that silently defaults to an empty string.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shlex
from pathlib import Path

import pytest
import yaml

from .deploy.compose import dockerfile_instructions as _dockerfile_instructions

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
MINIO_INIT = ROOT / "deploy" / "minio-init.sh"

PRODUCTION_SERVICES = {
    "postgres",
    "redis",
    "minio",
    "minio-init",
    "migrate",
    "web",
    "worker-media",
    "dock-worker",
    "dockd",
    "beat",
    "proxy",
}
# Every service that runs the Témoin code and so needs a migrated database.
TEMOIN_SERVICES = {"web", "worker-media", "dock-worker", "dockd", "beat"}
SECRETS = {
    "DJANGO_SECRET_KEY",
    "POSTGRES_PASSWORD",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
}
SKIPPED_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", "var"}


# --- helpers ----------------------------------------------------------------------------------
def _load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict:
    return _load_compose()


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _argv(service: dict) -> list[str]:
    """The service's command as a list of words, whichever form compose.yaml uses."""
    command = service.get("command") or []
    if isinstance(command, str):
        return shlex.split(command)
    return [str(word) for word in command]


def _option(argv: list[str], short: str, long: str) -> str | None:
    """Value of a command-line option given as `-Q x`, `-Qx`, `--queues x` or `--queues=x`."""
    for index, word in enumerate(argv):
        if word in (short, long):
            return argv[index + 1] if index + 1 < len(argv) else None
        if word.startswith(long + "="):
            return word.split("=", 1)[1]
        if word.startswith(short) and not word.startswith("--") and len(word) > len(short):
            return word[len(short):]
    return None


def _queues(argv: list[str]) -> list[str]:
    value = _option(argv, "-Q", "--queues")
    return value.split(",") if value else []


def _celery_services(services: dict) -> dict[str, list[str]]:
    return {name: _argv(s) for name, s in services.items() if _argv(s)[:1] == ["celery"]}


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _mounts(service: dict) -> list[dict]:
    """Volumes as {source, target, propagation}, from the short or the long syntax."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            mode = parts[2] if len(parts) > 2 else ""
            propagation = next(
                (m for m in mode.split(",") if m in {"shared", "rshared", "slave", "rslave",
                                                      "private", "rprivate"}),
                None,
            )
            mounts.append({"source": parts[0], "target": parts[1], "propagation": propagation})
        else:
            mounts.append(
                {
                    "source": str(volume.get("source")),
                    "target": str(volume.get("target")),
                    "propagation": (volume.get("bind") or {}).get("propagation"),
                }
            )
    return mounts


def _dependencies(service: dict) -> dict[str, str]:
    depends_on = service.get("depends_on") or {}
    if isinstance(depends_on, list):
        return {name: "service_started" for name in depends_on}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in depends_on.items()}


def _required(service: dict, dependency: str) -> bool:
    spec = (service.get("depends_on") or {}).get(dependency) or {}
    return spec.get("required", True) if isinstance(spec, dict) else True


def _manage_py_subcommands() -> set[str]:
    """Every `manage.py <subcommand>` that the deployment runs: compose commands and Dockerfile."""
    command_lines = [_argv(service) for service in _load_compose()["services"].values()]
    command_lines += [
        shlex.split(arguments)
        for keyword, arguments in _dockerfile_instructions()
        if keyword in {"RUN", "CMD", "ENTRYPOINT"} and "manage.py" in arguments
        and not arguments.startswith("[")
    ]
    # `sh -c "python manage.py migrate && python manage.py custody export-key"`: look inside.
    command_lines += [shlex.split(word) for words in command_lines for word in words
                      if "manage.py" in word and " " in word]
    subcommands = set()
    for words in command_lines:
        for index, word in enumerate(words[:-1]):
            if word.endswith("manage.py"):
                subcommands.add(words[index + 1])
    return subcommands


def _django_builtin_commands() -> set[str]:
    """Commands shipped by Django itself (core and contrib), found in the installed package."""
    spec = importlib.util.find_spec("django")
    assert spec and spec.submodule_search_locations, "Django is not installed"
    django_dir = Path(next(iter(spec.submodule_search_locations)))
    return {
        path.stem
        for path in django_dir.glob("**/management/commands/*.py")
        if not path.stem.startswith("_")
    }


def _project_commands() -> set[str]:
    """Commands defined in this repository: */management/commands/<name>.py."""
    found = set()
    for directory, subdirs, files in os.walk(ROOT):
        subdirs[:] = [d for d in subdirs if d not in SKIPPED_DIRS and not d.startswith(".")]
        path = Path(directory)
        if path.name == "commands" and path.parent.name == "management":
            found |= {f[:-3] for f in files if f.endswith(".py") and not f.startswith("_")}
    return found


def _minio_init_script() -> str:
    return MINIO_INIT.read_text(encoding="utf-8")


def _script_lines() -> list[str]:
    """The script's lines, comments dropped, with `$VAR`/`${VAR}` of simple assignments expanded."""
    text = _minio_init_script()
    assignments = dict(re.findall(r'^([A-Z_]+)="?([^"$\n]*)"?\s*$', text, flags=re.MULTILINE))
    lines = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        for name, value in assignments.items():
            line = line.replace("${%s}" % name, value).replace('"$%s"' % name, value)
            line = line.replace("$%s" % name, value)
        lines.append(line)
    return lines


# --- compose.yaml: shape ------------------------------------------------------------------------
def test_compose_file_parses_and_uses_the_compose_spec_without_a_version_key(compose):
    assert isinstance(compose, dict)
    assert "version" not in compose, "the Compose spec has no `version:`; compose v2 warns on it"
    assert isinstance(compose.get("services"), dict)


def test_compose_defines_every_production_service(services):
    missing = PRODUCTION_SERVICES - set(services)
    assert not missing, f"compose.yaml lacks the services {sorted(missing)}"


def test_backing_services_have_healthchecks(services):
    for name in ("postgres", "redis", "minio"):
        healthcheck = services[name].get("healthcheck") or {}
        assert healthcheck.get("test"), f"{name} has no healthcheck, so nothing can wait for it"
        assert not healthcheck.get("disable"), f"{name}'s healthcheck is disabled"


def test_postgres_runs_version_16(services):
    assert services["postgres"]["image"].split(":")[0].endswith("postgres")
    assert services["postgres"]["image"].split(":")[1].startswith("16")


def test_postgres_and_minio_keep_their_data_in_named_volumes(compose, services):
    named = set(compose.get("volumes") or {})
    for name, target in (("postgres", "/var/lib/postgresql/data"), ("minio", "/data")):
        sources = {m["source"] for m in _mounts(services[name]) if m["target"] == target}
        assert sources, f"{name} does not persist {target}"
        assert sources <= named, f"{name} stores {target} outside a named volume: {sources}"


def test_compose_shares_one_environment_between_temoin_services(services):
    reference = _environment(services["web"])
    for name in TEMOIN_SERVICES | {"migrate"}:
        env = _environment(services[name])
        for key in ("DATABASE_URL", "CELERY_BROKER_URL", "S3_ENDPOINT_URL", "S3_BUCKET",
                    "DJANGO_SECRET_KEY"):
            assert env.get(key) == reference.get(key), f"{name} has a different {key}"


@pytest.mark.parametrize("name", sorted(TEMOIN_SERVICES | {"proxy"}))
def test_every_long_running_service_has_a_healthcheck(services, name):
    healthcheck = services[name].get("healthcheck") or {}
    assert healthcheck.get("test") and not healthcheck.get("disable"), f"{name} has no healthcheck"


def test_the_web_healthcheck_asks_the_health_endpoint_not_a_tcp_port(services):
    words = " ".join(str(w) for w in services["web"]["healthcheck"]["test"])
    assert "/api/health/" in words and "config.ops.health" in words


@pytest.mark.parametrize("name", ["worker-media", "dock-worker"])
def test_worker_healthchecks_ping_their_own_worker(services, name):
    words = " ".join(str(w) for w in services[name]["healthcheck"]["test"])
    node = _option(_argv(services[name]), "-n", "--hostname").replace("%h", "$$HOSTNAME")
    assert "inspect ping" in words and f"-d {node}" in words


def test_every_temoin_service_reads_temoin_env(services):
    for name in TEMOIN_SERVICES | {"migrate"}:
        env_file = services[name].get("env_file")
        assert env_file == "temoin.env", f"{name}: env_file {env_file!r}"


def _settings_variables() -> set[str]:
    text = (ROOT / "config" / "settings.py").read_text(encoding="utf-8")
    return set(re.findall(r'env(?:\.[a-z_]+)?\(\s*"([A-Z][A-Z0-9_]+)"', text))


def _example_variables() -> set[str]:
    text = (ROOT / "deploy" / "temoin.env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^#?\s?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


def test_every_setting_reaches_the_containers_through_compose_or_temoin_env(services):
    # Compose sets some; every other setting is documented in temoin.env's example, which the
    # containers read (env_file). A setting in neither could not be changed in production.
    set_by_compose = set(_environment(services["web"])) | set(_environment(services["dockd"]))
    not_for_production = {"CELERY_TASK_ALWAYS_EAGER", "TEMOIN_STORE", "TEMOIN_STORE_ROOT",
                          "TEMOIN_STORE_VERIFY_FROM_DISK", "TEMOIN_STATIC_ROOT", "TEMOIN_CUSTODY_KEY"}
    missing = _settings_variables() - set_by_compose - _example_variables() - not_for_production
    assert not missing, f"settings no deployment can set: {sorted(missing)}"


def test_temoin_env_is_never_overridden_by_compose(services):
    # environment wins over env_file: a variable in both would silently ignore the operator's value.
    for name in TEMOIN_SERVICES | {"migrate"}:
        overlap = set(_environment(services[name])) & _example_variables()
        assert not overlap, f"{name} sets {sorted(overlap)}, which temoin.env documents"


def test_the_proxy_serves_https_in_front_of_web_with_the_documented_certificates(services):
    proxy = services["proxy"]
    assert proxy.get("profiles") == ["proxy"]
    assert _dependencies(proxy).get("web") == "service_healthy"
    mounts = {m["target"]: m["source"] for m in _mounts(proxy)}
    assert (ROOT / mounts["/etc/caddy/Caddyfile"]).resolve() == (ROOT / "deploy" / "caddy" / "Caddyfile")
    assert "TEMOIN_TLS_DIR" in mounts["/certs"] and "deploy/tls" in mounts["/certs"]
    assert (ROOT / "deploy" / "tls" / "README.md").is_file()
    published = {str(port).split(":")[-1] for port in proxy["ports"]}
    assert published == {"443", "80"}


def test_production_settings_turn_debug_off_and_point_at_the_services(services):
    env = _environment(services["web"])
    assert env["DJANGO_DEBUG"].lower() == "false"
    assert env["DATABASE_URL"].startswith("postgres://")
    assert "redis://" in env["CELERY_BROKER_URL"]
    assert "minio:9000" in env["S3_ENDPOINT_URL"]
    assert env["TEMOIN_DATA_DIR"] == "/var/lib/temoin"


@pytest.mark.parametrize("variable", sorted(SECRETS))
def test_secrets_have_no_default_so_a_misconfigured_deploy_fails_loudly(variable):
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    uses = re.findall(r"\$\{%s(?![A-Z0-9_])([^}]*)\}" % variable, text)
    assert uses, f"compose.yaml never reads {variable}"
    for modifier in uses:
        assert modifier.startswith(":?"), (
            f"${{{variable}{modifier}}} must be ${{{variable}:?message}}: no default, no empty value"
        )


# --- compose.yaml: order of start ---------------------------------------------------------------
def test_web_waits_for_migrations_and_the_locked_bucket(services):
    dependencies = _dependencies(services["web"])
    assert dependencies.get("migrate") == "service_completed_successfully"
    assert dependencies.get("minio-init") == "service_completed_successfully"
    assert dependencies.get("postgres") == "service_healthy"
    assert dependencies.get("redis") == "service_healthy"


def test_minio_is_optional_and_the_bucket_is_checked_whichever_s3_server_holds_it(services):
    # MinIO only with the `minio` profile (Ceph RGW or another S3 server otherwise); then the
    # dependency on minio-init is dropped, and `migrate` (which every service waits for) makes and
    # checks the locked bucket itself.
    assert services["minio"].get("profiles") == ["minio"] == services["minio-init"].get("profiles")
    for name in TEMOIN_SERVICES | {"migrate"}:
        if "minio-init" in (services[name].get("depends_on") or {}):
            assert not _required(services[name], "minio-init"), name
    words = " ".join(_argv(services["migrate"]))
    assert "deploy/store-init.py" in words and (ROOT / "deploy" / "store-init.py").is_file()
    assert words.index("migrate") < words.index("custody export-key") < words.index("store-init.py")


@pytest.mark.parametrize("name", sorted(TEMOIN_SERVICES))
def test_every_temoin_service_waits_for_the_migrations(services, name):
    assert _dependencies(services[name]).get("migrate") == "service_completed_successfully"


@pytest.mark.parametrize("name", ["migrate", "minio-init"])
def test_one_shot_jobs_are_not_restarted(services, name):
    assert str(services[name].get("restart", "no")) == "no"


def test_migrations_wait_for_a_healthy_database(services):
    assert _dependencies(services["migrate"]).get("postgres") == "service_healthy"


def test_bucket_setup_waits_for_a_healthy_minio(services):
    assert _dependencies(services["minio-init"]).get("minio") == "service_healthy"


# --- compose.yaml: commands ---------------------------------------------------------------------
def test_compose_runs_migrations_and_dockd_through_manage_py():
    assert {"migrate", "dockd"} <= _manage_py_subcommands()


@pytest.mark.parametrize("subcommand", sorted(_manage_py_subcommands()))
def test_every_manage_py_subcommand_used_in_deployment_exists(subcommand):
    if subcommand in _django_builtin_commands():
        return
    assert subcommand in _project_commands(), (
        f"`manage.py {subcommand}` is run by compose.yaml or the Dockerfile, but no "
        f"*/management/commands/{subcommand}.py exists in the repository"
    )


def test_web_serves_the_wsgi_application_with_gunicorn(services):
    argv = _argv(services["web"])
    assert argv[0] == "gunicorn"
    assert "config.wsgi:application" in argv


def test_celery_services_use_the_config_app(services):
    celery = _celery_services(services)
    assert {"worker-media", "dock-worker", "beat"} <= set(celery)
    for name, argv in celery.items():
        assert _option(argv, "-A", "--app") == "config", f"{name} does not run `celery -A config`"


def test_media_worker_consumes_the_media_queue(services):
    argv = _argv(services["worker-media"])
    assert "worker" in argv
    assert _queues(argv) == ["media"]


def test_dock_worker_consumes_only_its_own_dock_queue(services):
    argv = _argv(services["dock-worker"])
    assert "worker" in argv
    queues = _queues(argv)
    assert len(queues) == 1 and queues[0].startswith("dock."), queues
    assert "TEMOIN_DOCK_NAME" in queues[0], "the dock queue must follow TEMOIN_DOCK_NAME"


def test_no_worker_off_the_dock_host_consumes_a_dock_queue(services):
    for name, argv in _celery_services(services).items():
        if name != "dock-worker":
            assert not any(q.startswith("dock.") for q in _queues(argv)), (
                f"{name} would pull clips from a dock whose volumes it cannot read"
            )


def test_dockd_watches_the_same_dock_as_the_dock_worker(services):
    argv = _argv(services["dockd"])
    index = argv.index("dockd")
    assert argv[index + 1] == "/docks"
    dock_name = _option(argv, "--dock", "--dock")
    assert dock_name, "dockd runs without --dock"
    assert _queues(_argv(services["dock-worker"])) == [f"dock.{dock_name}"]
    assert (_environment(services["dockd"]).get("TEMOIN_DOCK_NAME")
            == _environment(services["dock-worker"]).get("TEMOIN_DOCK_NAME"))


def test_dock_worker_and_dockd_mount_the_same_host_dock_directory(services):
    def dock_sources(name):
        return {m["source"] for m in _mounts(services[name]) if m["target"] == "/docks"}

    assert dock_sources("dock-worker"), "dock-worker does not mount /docks"
    assert dock_sources("dock-worker") == dock_sources("dockd")
    assert all("TEMOIN_DOCK_ROOT" in source for source in dock_sources("dockd"))


@pytest.mark.parametrize("name", ["dock-worker", "dockd"])
def test_cameras_mounted_after_start_reach_the_dock_containers(services, name):
    mount = next(m for m in _mounts(services[name]) if m["target"] == "/docks")
    assert mount["propagation"] in {"rslave", "rshared", "slave", "shared"}, (
        "without slave/shared propagation a camera mounted on the host after the container "
        "started stays invisible inside it"
    )


def test_exactly_one_beat_is_defined(services):
    beats = [name for name, argv in _celery_services(services).items() if "beat" in argv]
    assert beats == ["beat"]


# --- deploy/minio-init.sh -----------------------------------------------------------------------
def test_minio_init_job_runs_the_script_from_the_repository(services):
    job = services["minio-init"]
    assert "minio/mc" in job["image"]
    mounted = {m["target"]: m["source"] for m in _mounts(job)}
    entrypoint = job.get("entrypoint") or []
    words = shlex.split(entrypoint) if isinstance(entrypoint, str) else [str(w) for w in entrypoint]
    script_targets = [w for w in words if w in mounted]
    assert script_targets, "minio-init does not run a mounted script"
    source = mounted[script_targets[0]]
    assert (ROOT / source).resolve() == MINIO_INIT.resolve()
    assert MINIO_INIT.is_file()


def test_minio_init_script_creates_the_bucket_with_object_lock():
    make_bucket = [line for line in _script_lines() if line.startswith("mc mb ")]
    assert make_bucket, "the script never creates the bucket"
    assert all("--with-lock" in line for line in make_bucket)


def test_minio_init_script_is_safe_to_rerun():
    make_bucket = [line for line in _script_lines() if line.startswith("mc mb ")]
    assert all("--ignore-existing" in line for line in make_bucket)


def test_minio_init_script_enables_versioning():
    assert any(line.startswith("mc version enable ") for line in _script_lines())


def test_minio_init_script_sets_a_default_compliance_retention():
    settings = [line for line in _script_lines() if line.startswith("mc retention set ")]
    assert settings, "the script sets no retention"
    assert any("--default" in line and "COMPLIANCE" in line.split() for line in settings)


def test_default_retention_never_exceeds_the_legal_month():
    # CSI R241-13: erasure one month after recording. A COMPLIANCE lock cannot be shortened, so a
    # bucket default longer than the shortest month would make the legal erasure impossible.
    settings = [line.split() for line in _script_lines()
                if line.startswith("mc retention set ") and "--default" in line]
    assert settings
    for words in settings:
        validity = words[words.index("COMPLIANCE") + 1].strip('"')
        match = re.fullmatch(r"(\d+)([dDyY])", validity)
        assert match, f"unreadable retention validity {validity!r}"
        days = int(match.group(1)) * (365 if match.group(2) in "yY" else 1)
        assert 1 <= days <= 28, f"default retention of {days} days exceeds the legal month"


def test_minio_init_script_stops_at_the_first_error():
    assert any(line.startswith("set -") and "e" in line.split()[1] for line in _script_lines())


# --- Dockerfile ---------------------------------------------------------------------------------
def test_dockerfile_builds_on_python_3_11_slim_bookworm():
    bases = [arguments for keyword, arguments in _dockerfile_instructions() if keyword == "FROM"]
    assert bases and bases[-1].split()[0] == "python:3.11-slim-bookworm"


def test_dockerfile_installs_ffmpeg():
    runs = [arguments for keyword, arguments in _dockerfile_instructions() if keyword == "RUN"]
    assert any(re.search(r"apt-get install\b.*\bffmpeg\b", run) for run in runs)


def test_dockerfile_installs_the_project_with_pip():
    runs = [arguments for keyword, arguments in _dockerfile_instructions() if keyword == "RUN"]
    assert any(re.search(r"pip install\b[^&|;]*\s\.(\s|$)", run) for run in runs)


def test_dockerfile_runs_as_an_unprivileged_user():
    users = [arguments for keyword, arguments in _dockerfile_instructions() if keyword == "USER"]
    assert users, "the image runs as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_dockerfile_serves_with_gunicorn_by_default():
    commands = [arguments for keyword, arguments in _dockerfile_instructions() if keyword == "CMD"]
    assert commands and "gunicorn" in commands[-1] and "config.wsgi:application" in commands[-1]


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image():
    patterns = {line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    assert {".env", ".git", ".venv", "temoin.env", "deploy/tls"} <= patterns


def test_the_image_creates_the_keys_directory_owned_by_its_user():
    # A new named volume mounted on /var/lib/temoin/keys starts as a copy of the image's directory:
    # without it, the volume is root's and `migrate` cannot create the custody signing key.
    runs = " ".join(arguments for keyword, arguments in _dockerfile_instructions() if keyword == "RUN")
    assert re.search(r"install -d -o temoin -g temoin -m 07\d0 /var/lib/temoin/keys", runs)


def test_the_image_collects_static_files_with_debug_off():
    runs = [arguments for keyword, arguments in _dockerfile_instructions() if keyword == "RUN"]
    assert any("DJANGO_DEBUG=false" in run and "collectstatic" in run for run in runs)
