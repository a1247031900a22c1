"""compose.yaml read the way Docker Compose reads it, for the rehearsal without Docker.

What compose gives a service's process, in order of precedence (lowest first): the image's ENV
(Dockerfile), its ``env_file``, its ``environment``, each value interpolated from ``.env``
(``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``$$``). Paths and ports
inside a container are then translated to this host (``Host``): there is one filesystem and one
network namespace here, where compose would have one per container.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class MissingVariable(ValueError):
    pass


def interpolate(value: str, variables: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, argument = match.group(2), match.group(3) or ""
        present = name in variables
        current = variables.get(name, "")
        if operator in (":-", "-"):
            use_default = not current if operator == ":-" else not present
            return interpolate(argument, variables) if use_default else current
        if operator in (":?", "?"):
            if (not current) if operator == ":?" else (not present):
                raise MissingVariable(f"required variable {name} is missing a value: {argument}")
            return current
        return current

    return _VARIABLE.sub(replace, value)


def interpolate_tree(node, variables: dict[str, str]):
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, list):
        return [interpolate_tree(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, variables) for key, value in node.items()}
    return node


def read_env_file(path: Path) -> dict[str, str]:
    """compose's env-file format: VAR=value lines, # comments, optional quotes."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):]
        name, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def image_env() -> dict[str, str]:
    """ENV of the image's last stage."""
    stages: list[list[tuple[str, str]]] = []
    for keyword, arguments in dockerfile_instructions():
        if keyword == "FROM":
            stages.append([])
        elif stages:
            stages[-1].append((keyword, arguments))
    env = {}
    for keyword, arguments in stages[-1]:
        if keyword == "ENV":
            env.update(word.split("=", 1) for word in shlex.split(arguments))
    return env


def image_workdir() -> str:
    return [arguments for keyword, arguments in dockerfile_instructions() if keyword == "WORKDIR"][-1]


def argv(command) -> list[str]:
    if isinstance(command, str):
        return shlex.split(command)
    return [str(word) for word in command]


def healthcheck_argv(test) -> list[str]:
    if isinstance(test, str):
        return ["/bin/sh", "-c", test]
    if test[0] == "CMD":
        return [str(word) for word in test[1:]]
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", str(test[1])]
    raise ValueError(f"unsupported healthcheck {test!r}")


@dataclass
class Host:
    """Where a container's paths and ports are on this host."""

    paths: dict[str, Path] = field(default_factory=dict)
    ports: dict[str, str] = field(default_factory=dict)  # "0.0.0.0:8000" → "127.0.0.1:41234"

    def word(self, word: str) -> str:
        for container, host in self.ports.items():
            word = word.replace(container, host)
        key, equals, rest = word.partition("=")
        if equals and rest.startswith("/") and not key.startswith("/"):  # --schedule=/var/lib/…
            return f"{key}={self._path(rest)}"
        return self._path(word)

    def _path(self, word: str) -> str:
        for container in sorted(self.paths, key=len, reverse=True):
            if word == container or word.startswith(container + "/"):
                return str(self.paths[container]) + word[len(container):]
        return word

    def value(self, value: str) -> str:
        return " ".join(self.word(part) for part in value.split(" "))


class Compose:
    def __init__(self, project_dir: Path, dotenv: dict[str, str]):
        self.project_dir = project_dir
        self.variables = dotenv
        self.document = interpolate_tree(yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8")), dotenv)
        self.services = self.document["services"]
        self.profiles = set(filter(None, dotenv.get("COMPOSE_PROFILES", "").split(",")))

    def enabled(self, name: str) -> bool:
        profiles = self.services[name].get("profiles") or []
        return not profiles or bool(set(profiles) & self.profiles)

    def environment(self, name: str, *, image: dict[str, str]) -> dict[str, str]:
        service = self.services[name]
        env = dict(image)
        env_files = service.get("env_file") or []
        for entry in [env_files] if isinstance(env_files, str) else env_files:
            path = entry if isinstance(entry, str) else entry["path"]
            env.update(read_env_file(self.project_dir / path))
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        env.update({key: "" if value is None else str(value) for key, value in environment.items()})
        return env

    def mounts(self, name: str) -> list[tuple[str, str]]:
        """(source, target): a named volume's name, or a bind source resolved in the project."""
        found = []
        for volume in self.services[name].get("volumes") or []:
            if isinstance(volume, str):
                source, target = volume.split(":")[:2]
            else:
                source, target = str(volume["source"]), str(volume["target"])
            if source.startswith((".", "/")):
                source = str((self.project_dir / source).resolve())
            found.append((source, target))
        return found
