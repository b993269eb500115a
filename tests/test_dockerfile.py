"""The Dockerfile, .dockerignore and deploy/ without a Docker engine: the build's own steps run
here, the image would contain every package and migration, and the compose file wires the
migrate step before web and worker."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

from bot.config import parse

ROOT = Path(__file__).resolve().parents[1]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stage(name: str) -> list[tuple[str, str]]:
    """The instructions of one build stage."""
    found, current = [], None
    for word, rest in instructions():
        if word == "FROM":
            current = rest.split(" AS ")[-1].strip()
            continue
        if current == name:
            found.append((word, rest))
    return found


def test_two_stages_on_the_slim_base():
    bases = [rest for word, rest in instructions() if word == "FROM"]
    assert bases == ["python:3.11-slim AS build", "python:3.11-slim AS runtime"]


def test_runtime_is_non_root_with_healthcheck_and_serve_by_default():
    runtime = dict((w, r) for w, r in stage("runtime") if w in ("USER", "ENTRYPOINT", "CMD", "HEALTHCHECK"))
    assert runtime["USER"] == "10001:10001"
    assert runtime["ENTRYPOINT"] == '["planloop"]'
    assert runtime["CMD"] == '["serve"]'
    assert runtime["HEALTHCHECK"].endswith('CMD ["python", "-m", "bot.ops.healthcheck"]')
    runs = " ".join(r for w, r in stage("runtime") if w == "RUN")
    assert "useradd --system --uid 10001" in runs


def test_the_requirements_step_lists_exactly_the_runtime_dependencies(tmp_path):
    """Run the build stage's first RUN (its python one-liner) on a copy of pyproject.toml."""
    run = next(r for w, r in stage("build") if w == "RUN" and "tomllib" in r)
    python_part = run.split(" > /tmp/requirements.txt")[0]
    argv = shlex.split(python_part)
    assert argv[:2] == ["python", "-c"]
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    out = subprocess.run(
        [sys.executable, "-c", argv[2]], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.split()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert out == project["dependencies"] + project["optional-dependencies"]["postgres"]
    assert any(r.startswith("psycopg") for r in out) and any(r.startswith("gunicorn") for r in out)


def test_every_package_is_copied_and_not_ignored():
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]["packages"][
        "find"
    ]["include"]
    copied = {r.split()[0] for w, r in stage("build") if w == "COPY"}
    ignore = (ROOT / ".dockerignore").read_text("utf-8").splitlines()
    for pattern in packages:
        name = pattern.rstrip("*")
        assert name in copied, f"{name} is not copied into the build stage"
        assert f"!{name}/" in ignore, f"{name} is excluded by .dockerignore"
    assert "*" in ignore and "**/*.db" in ignore  # a local SQLite file never lands in the image
    assert "examples" in {r.split()[0] for w, r in stage("runtime") if w == "COPY"}


def test_the_wheel_carries_migrations_and_static_files(tmp_path):
    """Build what the build stage builds, from exactly what its COPY lines bring in (so a file
    the image needs but the Dockerfile forgets fails here): `db upgrade` needs the migrations."""
    src = tmp_path / "src"
    src.mkdir()
    for word, rest in stage("build"):
        if word == "COPY":
            name = rest.split()[0]
            origin = ROOT / name
            if origin.is_dir():
                shutil.copytree(origin, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy(origin, src / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            ".",
        ],
        cwd=src,
        check=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, "PIP_NO_INDEX": "1"},
    )
    (wheel,) = tmp_path.glob("planloop-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    versions = sorted(p.name for p in (ROOT / "storage" / "migrations" / "versions").glob("*.py"))
    for needed in (
        "storage/migrations/env.py",
        "storage/migrations/script.py.mako",
        "bot/web/static/sim.html",
        "bot/console/templates/base.html",
        "bot/ops/serve.py",
        "bot/ops/healthcheck.py",
        *(f"storage/migrations/versions/{v}" for v in versions),
    ):
        assert needed in names, needed
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "planloop = bot.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint not installed (.ci/run installs it)")
def test_hadolint_is_clean():
    result = subprocess.run(
        ["hadolint", "--failure-threshold", "info", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- deploy/


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text("utf-8"))


def test_compose_services(compose):
    services = compose["services"]
    assert set(services) == {"db", "migrate", "web", "worker"}
    assert services["web"]["deploy"]["replicas"] == 2
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["web"]["command"][0] == "serve" and services["worker"]["command"] == ["worker"]
    assert services["migrate"]["command"] == ["db", "upgrade"] and services["migrate"]["restart"] == "no"
    for name in ("web", "worker"):
        needs = services[name]["depends_on"]
        assert needs["migrate"] == {"condition": "service_completed_successfully"}
        assert needs["db"] == {"condition": "service_healthy"}
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"


def test_compose_postgres_has_a_volume_and_healthcheck(compose):
    db = compose["services"]["db"]
    assert db["image"].startswith("postgres:")
    assert "pgdata:/var/lib/postgresql/data" in db["volumes"] and "pgdata" in compose["volumes"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])


def test_compose_config_and_secrets_come_from_file_and_env(compose):
    web, worker = compose["services"]["web"], compose["services"]["worker"]
    for svc in (web, worker, compose["services"]["migrate"]):
        env = svc["environment"]
        assert env["PLANLOOP_CONFIG"] == "/etc/planloop/planloop.toml"
        assert "${POSTGRES_PASSWORD:?" in env["PLANLOOP_DATABASE_URL"]
        assert env["PLANLOOP_SECRET_KEY"].startswith("${PLANLOOP_SECRET_KEY:?")
        assert "./planloop.toml:/etc/planloop/planloop.toml:ro" in svc["volumes"]
        assert svc["read_only"] is True
    assert worker["environment"]["PLANLOOP_HEALTHCHECK_URL"] == "http://127.0.0.1:9100/healthz"
    assert compose["services"]["migrate"]["healthcheck"] == {"disable": True}


def test_example_config_parses_with_the_compose_environment():
    data = tomllib.loads((ROOT / "deploy" / "planloop.toml.example").read_text("utf-8"))
    env = {
        "PLANLOOP_DATABASE_URL": "postgresql+psycopg://planloop:pw@db:5432/planloop",
        "PLANLOOP_SECRET_KEY": "vExb5JuV_czKxZS0p-hDWNIgfPEeCPHkEzIkVmJknLA=",
        "FEISHU_APP_SECRET": "a",
        "FEISHU_ENCRYPT_KEY": "b",
        "FEISHU_VERIFICATION_TOKEN": "c",
    }
    settings = parse(data, env)
    assert settings.database_url == env["PLANLOOP_DATABASE_URL"]
    assert [k.get() for k in settings.secret_keys] == [env["PLANLOOP_SECRET_KEY"]]
    assert [b.id for b in settings.bots] == ["feishu-main"]
