"""docker-compose.yml is valid and wired as the README says, checked without a Docker engine.

``docker compose config`` validates against the Compose specification without a daemon, but
needs the compose plugin: where it is installed it runs too. The structural checks always run:
a YAML load (with the ``<<`` merges resolved, as compose does) and the relations the README's
commands rely on (services, images, healthcheck, start order, commands, the examples' queues).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SERVICE_KEYS = {
    "build", "image", "environment", "ports", "volumes", "healthcheck", "depends_on", "command",
    "restart", "working_dir", "profiles", "stop_signal", "stop_grace_period",
}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def load() -> dict[str, Any]:
    """Load the compose file as compose reads it (YAML merge keys applied)."""
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _compose_plugin(), reason="the docker compose plugin is not installed")
def test_docker_compose_config_accepts_the_file() -> None:
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "--profile", "examples", "config", "--quiet"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


def test_every_service_has_known_keys_an_image_and_valid_dependencies() -> None:
    data = load()
    assert set(data) <= {"services", "volumes", "x-python"}
    services = data["services"]
    assert set(services) == {"postgres", "migrate", "worker", "examples"}
    for name, svc in services.items():
        assert set(svc) <= SERVICE_KEYS, f"{name}: unknown keys {set(svc) - SERVICE_KEYS}"
        assert isinstance(svc.get("image"), str) and ":" in svc["image"], f"{name}: no image tag"
        for dep, spec in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert spec["condition"] in CONDITIONS
        for volume in svc.get("volumes") or []:
            source = volume.split(":")[0]
            assert source == "." or source in (data.get("volumes") or {}), volume
        command = svc.get("command")
        assert command is None or isinstance(command, str)


def test_postgres_is_a_current_major_with_pgtap_and_a_healthcheck() -> None:
    pg = load()["services"]["postgres"]
    dockerfile = pg["build"]["dockerfile_inline"]
    found = re.search(r"^FROM postgres:(\d+)", dockerfile, re.M)
    assert found is not None, dockerfile
    major = int(found.group(1))
    assert major >= 16
    assert f"postgresql-{major}-pgtap" in dockerfile
    assert f"postgresql-{major}-plpgsql-check" in dockerfile
    assert pg["image"].endswith(f":{major}")
    check = pg["healthcheck"]
    assert check["test"][0] == "CMD-SHELL" and "pg_isready" in check["test"][1]
    assert pg["ports"] == ["5432:5432"]
    password = pg["environment"]["POSTGRES_PASSWORD"]
    # The URL the README gives for `make test` from the host matches the server's credentials.
    readme_url = f"postgresql://postgres:{password}@127.0.0.1:5432/postgres"
    assert readme_url in (ROOT / "README.md").read_text()


def test_the_python_services_install_the_schema_then_serve_the_examples_queues() -> None:
    services = load()["services"]
    url = "postgresql://postgres:postgres@postgres:5432/postgres"
    for name in ("migrate", "worker", "examples"):
        assert services[name]["environment"]["DATABASE_URL"] == url
        assert "pip install -q /src/python" in services[name]["command"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"].endswith('&& singularity-workflow migrate"')
    for name in ("worker", "examples"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    worker = services["worker"]["command"]
    example = (ROOT / "examples" / "distributed.py").read_text()
    # The worker serves exactly the queues and resource examples/distributed.py declares.
    queues = set(re.findall(r'queue="(\w+)"', example))
    assert queues == set(re.findall(r"--queue (\w+)", worker)) == {"cpu_workers", "gpu_workers"}
    assert "--resource gpu" in worker and "--import examples.distributed" in worker
    for script in re.findall(r"python (examples/\S+\.py)", services["examples"]["command"]):
        assert (ROOT / script).exists(), script


def test_the_readme_commands_name_services_that_exist() -> None:
    services = set(load()["services"])
    readme = (ROOT / "README.md").read_text()
    used = re.findall(r"docker compose (?:up -d|run --rm) (\w+)", readme)
    assert used, "the README shows no docker compose command"
    assert set(used) <= services
