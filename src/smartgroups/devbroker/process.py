"""Start, find and stop one local single-node KRaft broker (a plain ``java`` process).

Contract of :func:`ensure_broker`:

* It returns only when a real client call succeeds (:func:`~.probe.broker_answers`).
* It is a no-op when the pid file of ``run_dir`` names a broker that still runs and answers.
* When the JVM exits before it is ready, it raises :class:`BrokerError` at once, with the tail of
  ``broker.log``; when the JVM does not become ready within ``ready_timeout_s`` it kills it and
  raises the same way.
* The data survive :meth:`Broker.stop`; the next start in the same ``run_dir`` skips formatting.

:func:`stop_broker` sends SIGTERM (controlled shutdown), waits up to ``timeout_s`` and then sends
SIGKILL. Operator's next steps on failure are in each error message; ``broker.log`` in the run
directory has the full story, and ``rm -rf <run_dir>`` (``make clean`` for ``var/``) starts over.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from smartgroups.devbroker import cds
from smartgroups.devbroker import config as cfg
from smartgroups.devbroker.fetch import ensure_jars
from smartgroups.devbroker.pidfile import (
    PidRecord,
    is_alive,
    live_record,
    remove_pid_file,
    write_pid_file,
)
from smartgroups.devbroker.probe import broker_answers
from smartgroups.errors import BrokerError

RUN_DIR_ENV = "SMARTGROUPS_KAFKA_DIR"
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
FORMAT_TIMEOUT_S = 120.0
LOG_TAIL_LINES = 40
_POLL_S = 0.1


@dataclass
class Broker:
    """A running broker. ``started`` is False when an already running one was reused."""

    bootstrap: str
    pid: int
    run_dir: Path
    started: bool
    start_seconds: float
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)
    _cds_partial: Path | None = field(default=None, repr=False, compare=False)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop it (SIGTERM, SIGKILL after ``timeout_s``) and remove its pid file."""
        clean = _terminate(self.pid, self._process, timeout_s)
        cds.finish(self._cds_partial, clean_exit=clean)
        remove_pid_file(cfg.BrokerConfig(0, 0, self.run_dir).pid_file)


def default_run_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$SMARTGROUPS_KAFKA_DIR`` or ``var/kafka`` under the current directory (the repo root)."""
    env = os.environ if env is None else env
    override = env.get(RUN_DIR_ENV, "").strip()
    base = Path(override).expanduser() if override else Path("var") / "kafka"
    return base.absolute()


def find_java(env: Mapping[str, str] | None = None) -> str:
    """``$JAVA_HOME/bin/java`` or ``java`` on PATH; :class:`BrokerError` when there is none."""
    env = os.environ if env is None else env
    home = env.get("JAVA_HOME", "").strip()
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise BrokerError(
            "java is not on PATH: install a JDK 17+ (Kafka 4.x needs it) or set JAVA_HOME, "
            "or set KAFKA_BOOTSTRAP_SERVERS to use an existing broker."
        )
    return java


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``path`` (empty when it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def ensure_broker(
    port: int | None = None,
    run_dir: Path | None = None,
    *,
    libs_dir: Path | None = None,
    java: str | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
    die_with_parent: bool = False,
    proxied: tuple[int, int] | None = None,
    sasl_ssl: cfg.SaslSsl | None = None,
) -> Broker:
    """Return a running, answering broker on ``127.0.0.1:port``, starting one when needed.

    ``port`` defaults to ``$KAFKA_PORT`` or 9092; ``run_dir`` (config, data, log, pid file) to
    :func:`default_run_dir`. ``die_with_parent`` asks Linux to SIGTERM the JVM when the calling
    thread's process dies (test fixtures: no orphaned broker after a killed pytest); call it from
    the main thread then, since the signal follows the thread that spawned the JVM.
    ``proxied`` adds a second listener advertised at a proxy's port
    (:class:`~.config.BrokerConfig`); ``sasl_ssl`` a SASL_SSL one (:class:`~.config.SaslSsl`:
    certificates made in ``run_dir/tls`` on first use, SCRAM users created when the storage is
    formatted, so only in a new ``run_dir``).
    """
    began = time.monotonic()
    port = cfg.port_from_env(os.environ) if port is None else port
    run_dir = (default_run_dir() if run_dir is None else run_dir).absolute()
    conf = cfg.BrokerConfig(port=port, controller_port=0, run_dir=run_dir)

    running = live_record(conf.pid_file, conf.server_properties)
    if running is not None:
        return _reuse(running, conf, began, ready_timeout_s)
    if cfg.port_accepts(port):
        raise BrokerError(
            f"port {port} is taken by another process, not by a broker of {run_dir}. If that is a "
            f"Kafka broker, set KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{port} and skip this one; "
            f"otherwise choose another port with KAFKA_PORT."
        )

    libs = ensure_jars(libs_dir)
    java = find_java() if java is None else java
    conf = cfg.BrokerConfig(
        port=port,
        controller_port=cfg.free_port(
            avoid=frozenset({port, *(proxied or ()), *([sasl_ssl.port] if sasl_ssl else [])})
        ),
        run_dir=run_dir,
        proxied=proxied,
        sasl_ssl=sasl_ssl,
    )
    prepare_run_dir(conf)
    classpath = str(libs / "*")  # java expands the wildcard itself
    if not (conf.log_dir / "meta.properties").is_file():
        format_storage(java, classpath, conf)
    cds_flags, cds_partial = cds.jvm_flags(java, libs)
    process = _spawn(java, classpath, conf, die_with_parent, cds_flags)
    write_pid_file(
        conf.pid_file,
        PidRecord(
            process.pid,
            conf.port,
            conf.controller_port,
            time.time(),
            cds_partial=str(cds_partial or ""),
        ),
    )
    try:
        wait_ready(process, conf, ready_timeout_s)
    except BaseException:
        _terminate(process.pid, process, STOP_TIMEOUT_S)
        cds.finish(cds_partial, clean_exit=False)
        remove_pid_file(conf.pid_file)
        raise
    return Broker(
        bootstrap=conf.bootstrap,
        pid=process.pid,
        run_dir=run_dir,
        started=True,
        start_seconds=time.monotonic() - began,
        _process=process,
        _cds_partial=cds_partial,
    )


def stop_broker(run_dir: Path | None = None, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stop the broker of ``run_dir`` if one runs; True when there was one to stop."""
    run_dir = (default_run_dir() if run_dir is None else run_dir).absolute()
    conf = cfg.BrokerConfig(port=0, controller_port=0, run_dir=run_dir)
    record = live_record(conf.pid_file, conf.server_properties)
    if record is None:
        return False
    clean = _terminate(record.pid, None, timeout_s)
    cds.finish(Path(record.cds_partial) if record.cds_partial else None, clean_exit=clean)
    remove_pid_file(conf.pid_file)
    return True


def broker_status(run_dir: Path | None = None) -> PidRecord | None:
    """The pid record of the broker of ``run_dir`` while its process runs, else ``None``."""
    run_dir = (default_run_dir() if run_dir is None else run_dir).absolute()
    conf = cfg.BrokerConfig(port=0, controller_port=0, run_dir=run_dir)
    return live_record(conf.pid_file, conf.server_properties)


def prepare_run_dir(conf: cfg.BrokerConfig) -> None:
    """Write server.properties and log4j2.properties for ``conf`` (the data dir is kept)."""
    conf.run_dir.mkdir(parents=True, exist_ok=True)
    conf.server_properties.write_text(
        cfg.render_properties(
            cfg.server_properties(conf),
            header="Written by smartgroups.devbroker at each start; edits are overwritten.",
        ),
        encoding="utf-8",
    )
    conf.log4j2_properties.write_bytes(
        resources.files("smartgroups.devbroker").joinpath("log4j2.properties").read_bytes()
    )
    if conf.sasl_ssl is not None:
        from smartgroups.devbroker.tls import ensure_certificates  # cryptography: a dev extra

        ensure_certificates(conf.tls_dir)


def format_storage(java: str, classpath: str, conf: cfg.BrokerConfig) -> None:
    """Format ``log.dirs`` for a new cluster (``kafka.tools.StorageTool format``)."""
    command = cfg.java_command(
        java,
        classpath,
        conf.log4j2_properties,
        "kafka.tools.StorageTool",
        [
            "format",
            "-t",
            cfg.new_cluster_id(),
            "-c",
            str(conf.server_properties),
            "--ignore-formatted",
            *(conf.sasl_ssl.scram_arguments() if conf.sasl_ssl else []),
        ],
        server=False,
    )
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=FORMAT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BrokerError(
            f"formatting {conf.log_dir} took over {FORMAT_TIMEOUT_S:.0f} s; is the machine "
            "overloaded? Retry, or delete the directory and retry."
        ) from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()[-LOG_TAIL_LINES:]
        raise BrokerError(
            f"kafka StorageTool format failed (exit {done.returncode}) for {conf.log_dir}; "
            f"delete {conf.run_dir} and retry.\n" + "\n".join(output)
        )


def wait_ready(process: subprocess.Popen[bytes], conf: cfg.BrokerConfig, timeout_s: float) -> None:
    """Block until the broker answers a client call; :class:`BrokerError` if it dies or stalls."""
    deadline = time.monotonic() + timeout_s
    while True:
        code = process.poll()
        if code is not None:
            raise BrokerError(
                f"the Kafka broker exited with status {code} before it was ready; "
                f"see {conf.broker_log}:\n{log_tail(conf.broker_log)}"
            )
        if cfg.port_accepts(conf.port) and broker_answers(conf.bootstrap):
            return
        if time.monotonic() > deadline:
            raise BrokerError(
                f"the Kafka broker did not answer on {conf.bootstrap} within {timeout_s:.0f} s "
                f"(killed); see {conf.broker_log}:\n{log_tail(conf.broker_log)}"
            )
        time.sleep(_POLL_S * 2)


def _reuse(
    running: PidRecord, conf: cfg.BrokerConfig, began: float, ready_timeout_s: float
) -> Broker:
    if running.port != conf.port:
        raise BrokerError(
            f"a broker of {conf.run_dir} already runs on port {running.port}, not {conf.port}: "
            f"use 127.0.0.1:{running.port}, or run `python -m smartgroups.devbroker down` first."
        )
    deadline = time.monotonic() + ready_timeout_s
    while not broker_answers(conf.bootstrap):  # it may still be starting (a concurrent `up`)
        if not is_alive(running.pid):
            raise BrokerError(
                f"the broker (pid {running.pid}) exited while starting; see {conf.broker_log}:\n"
                + log_tail(conf.broker_log)
            )
        if time.monotonic() > deadline:
            raise BrokerError(
                f"the broker (pid {running.pid}) runs but does not answer on {conf.bootstrap}; "
                f"run `python -m smartgroups.devbroker down` and retry. Log {conf.broker_log}:\n"
                + log_tail(conf.broker_log)
            )
        time.sleep(_POLL_S * 5)
    return Broker(
        bootstrap=conf.bootstrap,
        pid=running.pid,
        run_dir=conf.run_dir,
        started=False,
        start_seconds=time.monotonic() - began,
    )


def _spawn(
    java: str,
    classpath: str,
    conf: cfg.BrokerConfig,
    die_with_parent: bool,
    extra: list[str],
) -> subprocess.Popen[bytes]:
    command = cfg.java_command(
        java,
        classpath,
        conf.log4j2_properties,
        "kafka.Kafka",
        [str(conf.server_properties)],
        server=True,
        extra=extra,
    )
    setpriv = shutil.which("setpriv")
    if die_with_parent and setpriv is not None:  # util-linux; absent on macOS: no tie then
        command = [setpriv, "--pdeathsig", "TERM", *command]
    with conf.broker_log.open("wb") as log:
        # A new session: Ctrl-C in the terminal that ran `up` does not reach the broker.
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=conf.run_dir,
            start_new_session=True,
        )


def _terminate(pid: int, process: subprocess.Popen[bytes] | None, timeout_s: float) -> bool:
    """SIGTERM, wait up to ``timeout_s``, SIGKILL; reaps ``process`` when we own it.

    True when SIGTERM alone stopped it (a clean shutdown).
    """
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
        if not _signal(pid, process, sig):
            return False
        if _wait_exit(pid, process, wait_s):
            return sig == signal.SIGTERM
    raise BrokerError(f"the broker (pid {pid}) survived SIGKILL; check `ps -p {pid}`")


def _signal(pid: int, process: subprocess.Popen[bytes] | None, sig: signal.Signals) -> bool:
    """Send ``sig``; False when the process is already gone."""
    if process is not None:
        if process.poll() is not None:
            return False
        process.send_signal(sig)
        return True
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def _wait_exit(pid: int, process: subprocess.Popen[bytes] | None, timeout_s: float) -> bool:
    if process is not None:
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True
    deadline = time.monotonic() + timeout_s
    while is_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_S)
    return True
