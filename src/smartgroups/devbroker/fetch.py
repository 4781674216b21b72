"""Fetch the Kafka broker jars from Maven Central once, into a cache outside the repository.

Contract: :func:`ensure_jars` returns a directory holding ``kafka_2.13-4.1.1.jar`` and its runtime
dependencies (plus the log4j2 binding). The first call runs Maven
(``maven-dependency-plugin:3.6.1:copy-dependencies`` on the packaged ``pom.xml``); every later call
sees the jar and returns at once, offline. Maven copies into a scratch directory that is renamed
into place only on success, so an interrupted fetch never leaves a cache that looks complete.
Concurrent callers (two pytest sessions) serialize on a lock file.

On failure :class:`~smartgroups.errors.BrokerError` carries the tail of Maven's output. The
operator's next step: check network access to Maven Central (or a mirror in ``~/.m2/settings.xml``),
or point ``SMARTGROUPS_KAFKA_LIBS`` at a directory that already has the jars, or skip the local
broker altogether by setting ``KAFKA_BOOTSTRAP_SERVERS``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from smartgroups.errors import BrokerError

KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
LIBS_ENV = "SMARTGROUPS_KAFKA_LIBS"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies"
FETCH_TIMEOUT_S = 900.0
_TAIL_LINES = 40


def default_libs_dir(env: Mapping[str, str] | None = None) -> Path:
    """The jar cache: ``$SMARTGROUPS_KAFKA_LIBS`` or ``~/.cache/smartgroups/kafka-4.1.1``."""
    env = os.environ if env is None else env
    override = env.get(LIBS_ENV, "").strip()
    if override:
        return Path(override).expanduser().absolute()
    return Path.home() / ".cache" / "smartgroups" / f"kafka-{KAFKA_VERSION}"


def marker_jar(libs_dir: Path) -> Path:
    """The jar whose presence means the cache is complete."""
    return libs_dir / f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}.jar"


def has_jars(libs_dir: Path) -> bool:
    """True when ``libs_dir`` is a complete cache (no Maven needed)."""
    return marker_jar(libs_dir).is_file()


def maven_command(pom: Path, output_dir: Path) -> list[str]:
    """The Maven invocation that copies the broker's runtime jars into ``output_dir``."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven (mvn) is not on PATH, and the Kafka jars are not cached yet. Install Maven 3.8+ "
            f"and a JDK 17+, or set {LIBS_ENV} to a directory holding the Kafka {KAFKA_VERSION} "
            "jars, or set KAFKA_BOOTSTRAP_SERVERS to use an existing broker."
        )
    return [
        mvn,
        "-B",
        "-q",
        "-f",
        str(pom),
        DEPENDENCY_PLUGIN,
        "-DincludeScope=runtime",
        f"-DoutputDirectory={output_dir}",
    ]


def ensure_jars(libs_dir: Path | None = None, *, timeout_s: float = FETCH_TIMEOUT_S) -> Path:
    """Return a complete jar directory, running Maven only when the cache is missing.

    Raises :class:`BrokerError` (with Maven's output tail) when Maven fails or times out.
    """
    libs_dir = default_libs_dir() if libs_dir is None else libs_dir
    if has_jars(libs_dir):
        return libs_dir
    libs_dir.parent.mkdir(parents=True, exist_ok=True)
    with (libs_dir.parent / f".{libs_dir.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if has_jars(libs_dir):  # another process fetched while we waited for the lock
            return libs_dir
        _fetch_into(libs_dir, timeout_s)
    return libs_dir


def _fetch_into(libs_dir: Path, timeout_s: float) -> None:
    scratch = Path(tempfile.mkdtemp(prefix=f".{libs_dir.name}-", dir=libs_dir.parent))
    try:
        pom = scratch / "pom.xml"
        pom.write_bytes(resources.files("smartgroups.devbroker").joinpath("pom.xml").read_bytes())
        jars = scratch / "jars"
        command = maven_command(pom, jars)
        try:
            done = subprocess.run(
                command,
                cwd=scratch,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(
                f"Maven did not fetch the Kafka jars within {timeout_s:.0f} s; check access to "
                f"Maven Central, or set {LIBS_ENV} to a directory that has them."
            ) from exc
        if done.returncode != 0 or not has_jars(jars):
            output = (done.stdout + done.stderr).strip().splitlines()[-_TAIL_LINES:]
            raise BrokerError(
                f"Maven could not fetch the Kafka {KAFKA_VERSION} jars (exit {done.returncode}): "
                f"check access to Maven Central or set {LIBS_ENV}.\n"
                f"command: {' '.join(command)}\n" + "\n".join(output)
            )
        if libs_dir.exists():  # a partial directory left by something else: replace it
            shutil.rmtree(libs_dir)
        jars.rename(libs_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
