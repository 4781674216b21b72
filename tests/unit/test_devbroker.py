"""smartgroups.devbroker without a broker: fake ``java`` and ``mvn`` scripts stand in."""

from __future__ import annotations

import base64
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smartgroups.devbroker import __main__ as cli
from smartgroups.devbroker import cds, fetch, pidfile, process
from smartgroups.devbroker import config as cfg
from smartgroups.errors import BrokerError

# ---------------------------------------------------------------- helpers


def script(path: Path, body: str) -> Path:
    """An executable Python script at ``path`` (a stand-in for java or mvn)."""
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def libs(tmp_path: Path) -> Path:
    """A jar cache that looks complete (the marker jar exists)."""
    directory = tmp_path / "libs"
    directory.mkdir()
    fetch.marker_jar(directory).write_bytes(b"")
    return directory


@pytest.fixture
def impostor(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A live process whose argv looks like our broker's (``kafka.Kafka <properties>``)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    props = cfg.BrokerConfig(0, 0, run_dir).server_properties
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "kafka.Kafka", str(props)]
    )
    yield proc, run_dir
    proc.kill()
    proc.wait()


# ---------------------------------------------------------------- config


def test_cluster_id_is_22_url_safe_chars_of_16_bytes() -> None:
    cid = cfg.new_cluster_id()
    assert len(cid) == 22
    assert set(cid) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(base64.urlsafe_b64decode(cid + "==")) == 16
    assert cfg.new_cluster_id() != cid


def test_cluster_id_starting_with_dash_is_redrawn() -> None:
    draws = iter([b"\xf8" + bytes(15), bytes(16)])  # 0xf8 encodes to a leading "-"
    assert base64.urlsafe_b64encode(b"\xf8" + bytes(15)).startswith(b"-")
    assert cfg.new_cluster_id(lambda: next(draws)) == "A" * 22


def test_server_properties_single_node_kraft(tmp_path: Path) -> None:
    conf = cfg.BrokerConfig(port=19092, controller_port=19093, run_dir=tmp_path)
    text = cfg.render_properties(cfg.server_properties(conf), header="a\nb")
    parsed = dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert text.startswith("# a\n# b\n")
    assert parsed["process.roles"] == "broker,controller"
    assert parsed["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert parsed["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert parsed["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert parsed["log.dirs"] == str(tmp_path / "data")
    assert parsed["auto.create.topics.enable"] == "false"
    assert parsed["group.initial.rebalance.delay.ms"] == "0"
    for key in (
        "offsets.topic.replication.factor",
        "offsets.topic.num.partitions",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
    ):
        assert parsed[key] == "1", key
    assert int(parsed["log.cleaner.dedupe.buffer.size"]) <= 32 * 1024 * 1024
    assert conf.bootstrap == "127.0.0.1:19092"


def test_render_properties_refuses_values_it_cannot_escape() -> None:
    with pytest.raises(ValueError, match="escaping"):
        cfg.render_properties({"log.dirs": "a\nb"})


def test_java_command_heap_for_broker_and_tool(tmp_path: Path) -> None:
    broker = cfg.java_command("java", "cp/*", tmp_path / "l.p", "kafka.Kafka", ["s"], server=True)
    tool = cfg.java_command("java", "cp/*", tmp_path / "l.p", "T", ["x"], server=False)
    assert {"-Xms256m", "-Xmx512m", "-XX:+UseG1GC"} <= set(broker)
    assert broker[-2:] == ["kafka.Kafka", "s"]
    assert "-Xmx256m" in tool and "-Xmx512m" not in tool
    assert f"-Dlog4j2.configurationFile={tmp_path / 'l.p'}" in tool


def test_free_port_is_bindable_and_avoids() -> None:
    port = cfg.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    assert cfg.free_port(avoid=frozenset({port})) != port


def test_port_accepts_sees_a_listener() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert cfg.port_accepts(port)
    assert not cfg.port_accepts(port)


def test_port_from_env() -> None:
    assert cfg.port_from_env({}) == 9092
    assert cfg.port_from_env({"KAFKA_PORT": " 19092 "}) == 19092
    for bad in ("x", "0", "70000"):
        with pytest.raises(ValueError, match="KAFKA_PORT"):
            cfg.port_from_env({"KAFKA_PORT": bad})


# ---------------------------------------------------------------- fetch


def test_libs_dir_default_and_override(tmp_path: Path) -> None:
    assert fetch.default_libs_dir({}) == Path.home() / ".cache/smartgroups/kafka-4.1.1"
    assert fetch.default_libs_dir({"SMARTGROUPS_KAFKA_LIBS": str(tmp_path)}) == tmp_path


def test_cached_jars_need_no_maven(libs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")  # no mvn, no java: a cache hit must not need them
    assert fetch.ensure_jars(libs) == libs


def test_missing_maven_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(BrokerError, match="KAFKA_BOOTSTRAP_SERVERS"):
        fetch.ensure_jars(tmp_path / "libs")


def test_maven_failure_reports_its_output_and_leaves_no_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script(bin_dir / "mvn", "import sys; print('Could not resolve kafka_2.13'); sys.exit(1)\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(BrokerError, match=r"Could not resolve kafka_2\.13"):
        fetch.ensure_jars(tmp_path / "libs")
    assert not (tmp_path / "libs").exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == ["bin"]


def test_maven_success_fills_the_cache_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script(
        bin_dir / "mvn",
        """
        import sys, pathlib
        args = sys.argv[1:]
        assert "-f" in args and pathlib.Path(args[args.index("-f") + 1]).is_file()
        assert any(a.endswith("maven-dependency-plugin:3.6.1:copy-dependencies") for a in args)
        out = pathlib.Path(next(a for a in args if a.startswith("-DoutputDirectory="))[18:])
        out.mkdir(parents=True)
        (out / "kafka_2.13-4.1.1.jar").write_bytes(b"jar")
        (out / "kafka-clients-4.1.1.jar").write_bytes(b"jar")
        """,
    )
    monkeypatch.setenv("PATH", str(bin_dir))
    libs = fetch.ensure_jars(tmp_path / "cache" / "libs")
    assert sorted(p.name for p in libs.iterdir()) == [
        "kafka-clients-4.1.1.jar",
        "kafka_2.13-4.1.1.jar",
    ]


def test_packaged_pom_pins_kafka_and_log4j() -> None:
    from importlib import resources

    pom = resources.files("smartgroups.devbroker").joinpath("pom.xml").read_text()
    assert "<kafka.version>4.1.1</kafka.version>" in pom
    assert "<log4j2.version>2.24.3</log4j2.version>" in pom
    for artifact in ("kafka_2.13", "log4j-api", "log4j-core", "log4j-slf4j-impl"):
        assert f"<artifactId>{artifact}</artifactId>" in pom


# ---------------------------------------------------------------- pid file


def test_pid_file_round_trip_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "broker.pid"
    record = pidfile.PidRecord(pid=42, port=9092, controller_port=9093, started_at=1.5)
    pidfile.write_pid_file(path, record)
    assert pidfile.read_pid_file(path) == record
    path.write_text("not json")
    assert pidfile.read_pid_file(path) is None
    assert pidfile.read_pid_file(tmp_path / "missing") is None


def test_stale_pid_file_is_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / "broker.pid"
    pidfile.write_pid_file(path, pidfile.PidRecord(dead.pid, 9092, 9093, 0.0))
    assert pidfile.live_record(path, tmp_path / "server.properties") is None
    assert not path.exists()


def test_a_live_stranger_is_not_our_broker(tmp_path: Path) -> None:
    path = tmp_path / "broker.pid"
    pidfile.write_pid_file(path, pidfile.PidRecord(os.getpid(), 9092, 9093, 0.0))
    assert pidfile.live_record(path, tmp_path / "server.properties") is None
    assert not path.exists()


def test_zombie_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while pidfile.is_alive(child.pid):  # exited but not reaped: a zombie
        assert time.monotonic() < deadline, "child never exited"
        time.sleep(0.05)
    child.wait()


def test_running_broker_makes_up_a_no_op(
    impostor: tuple[subprocess.Popen[bytes], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    proc, run_dir = impostor
    conf = cfg.BrokerConfig(19092, 19093, run_dir)
    pidfile.write_pid_file(conf.pid_file, pidfile.PidRecord(proc.pid, 19092, 19093, 0.0))
    monkeypatch.setattr(process, "broker_answers", lambda bootstrap: True)
    broker = process.ensure_broker(port=19092, run_dir=run_dir, java="/nonexistent/java")
    assert (broker.started, broker.pid, broker.bootstrap) == (False, proc.pid, "127.0.0.1:19092")
    with pytest.raises(BrokerError, match="already runs on port 19092"):
        process.ensure_broker(port=19094, run_dir=run_dir, java="/nonexistent/java")
    assert process.broker_status(run_dir) == pidfile.read_pid_file(conf.pid_file)


def test_down_escalates_to_sigkill(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    props = cfg.BrokerConfig(0, 0, run_dir).server_properties
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)",
            "kafka.Kafka",
            str(props),
        ],
        stdout=subprocess.PIPE,
    )
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
    pid_file = cfg.BrokerConfig(0, 0, run_dir).pid_file
    partial = tmp_path / "kafka-broker-x.jsa.partial-1"  # a dump the SIGKILL cut short
    partial.write_bytes(b"half")
    pidfile.write_pid_file(
        pid_file, pidfile.PidRecord(stubborn.pid, 1, 2, 0.0, cds_partial=str(partial))
    )
    began = time.monotonic()
    assert process.stop_broker(run_dir, timeout_s=0.5)
    assert stubborn.wait(timeout=10) == -signal.SIGKILL
    assert time.monotonic() - began < 10
    assert not pid_file.exists()
    assert not partial.exists() and not (tmp_path / "kafka-broker-x.jsa").exists()
    assert not process.stop_broker(run_dir)  # nothing left: a no-op


# ---------------------------------------------------------------- start failures


FAKE_JAVA = """
import sys, time
if "kafka.tools.StorageTool" in sys.argv:
    sys.exit(0)
print("[x] ERROR Exiting Kafka due to fatal exception: fake failure", flush=True)
sys.exit(MODE)
"""


def test_jvm_that_dies_fails_fast_with_log_tail(tmp_path: Path, libs: Path) -> None:
    java = script(tmp_path / "java", FAKE_JAVA.replace("MODE", "3"))
    run_dir = tmp_path / "run"
    began = time.monotonic()
    with pytest.raises(BrokerError) as caught:
        process.ensure_broker(port=cfg.free_port(), run_dir=run_dir, libs_dir=libs, java=str(java))
    assert time.monotonic() - began < 15
    message = str(caught.value)
    assert "exited with status 3" in message
    assert "fatal exception: fake failure" in message
    assert not (run_dir / "broker.pid").exists()
    assert (run_dir / "server.properties").is_file()
    assert (run_dir / "log4j2.properties").read_text().startswith("#")


def test_jvm_that_never_answers_is_killed_at_the_deadline(tmp_path: Path, libs: Path) -> None:
    java = script(
        tmp_path / "java",
        """
        import sys, time
        if "kafka.tools.StorageTool" not in sys.argv:
            print("starting forever", flush=True)
            time.sleep(120)
        """,
    )
    run_dir = tmp_path / "run"
    with pytest.raises(BrokerError, match=r"did not answer .* within 1 s(.|\n)*starting forever"):
        process.ensure_broker(
            port=cfg.free_port(), run_dir=run_dir, libs_dir=libs, java=str(java), ready_timeout_s=1
        )
    assert not (run_dir / "broker.pid").exists()


def test_failed_format_reports_storage_tool_output(tmp_path: Path, libs: Path) -> None:
    java = script(tmp_path / "java", "import sys; print('bad cluster id'); sys.exit(1)\n")
    with pytest.raises(BrokerError, match=r"StorageTool format failed(.|\n)*bad cluster id"):
        process.ensure_broker(
            port=cfg.free_port(), run_dir=tmp_path / "run", libs_dir=libs, java=str(java)
        )


def test_port_taken_by_a_stranger_is_refused(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(BrokerError, match=f"port {port} is taken"):
            process.ensure_broker(port=port, run_dir=tmp_path / "run", java="/nonexistent/java")


def test_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "broker.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert process.log_tail(log, 3) == "line 97\nline 98\nline 99"
    assert process.log_tail(tmp_path / "missing") == ""


# ---------------------------------------------------------------- CLI


def test_cli_status_and_down_without_a_broker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["status", "--dir", str(tmp_path)]) == cli.EXIT_NOT_RUNNING
    assert cli.main(["down", "--dir", str(tmp_path)]) == 0
    assert "no broker" in capsys.readouterr().out


def test_cli_up_failure_exits_1_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert cli.main(["up", "--port", str(port), "--dir", str(tmp_path)]) == 1
    assert f"port {port} is taken" in capsys.readouterr().err


# ---------------------------------------------------------------- AppCDS


def test_cds_dumps_first_then_maps_the_archive(libs: Path) -> None:
    flags, partial = cds.jvm_flags("java", libs, env={})
    assert partial is not None and partial.parent == libs
    assert flags == [f"-XX:ArchiveClassesAtExit={partial}"]
    partial.write_bytes(b"archive")  # what the JVM writes at a clean exit
    cds.finish(partial, clean_exit=True)
    archive = cds.archive_path("java", libs)
    assert archive.read_bytes() == b"archive" and not partial.exists()
    assert cds.jvm_flags("java", libs, env={}) == ([f"-XX:SharedArchiveFile={archive}"], None)


def test_cds_drops_the_archive_of_an_unclean_exit(libs: Path) -> None:
    _, partial = cds.jvm_flags("java", libs, env={})
    assert partial is not None
    partial.write_bytes(b"half an archive")
    cds.finish(partial, clean_exit=False)
    assert list(libs.glob("*.jsa*")) == []
    cds.finish(None, clean_exit=True)  # no archive requested: nothing to do


def test_cds_can_be_turned_off_and_follows_the_jars(libs: Path) -> None:
    assert cds.jvm_flags("java", libs, env={"SMARTGROUPS_KAFKA_CDS": "0"}) == ([], None)
    before = cds.archive_path("java", libs)
    os.utime(fetch.marker_jar(libs), ns=(1, 1))  # a re-fetched jar cache
    assert cds.archive_path("java", libs) != before


def test_a_proxied_listener_is_advertised_at_the_proxy_and_plaintext_stays_direct() -> None:
    conf = cfg.BrokerConfig(
        port=9100, controller_port=9101, run_dir=Path("/x"), proxied=(9102, 9103)
    )
    props = cfg.server_properties(conf)
    assert props["listeners"].split(",") == [
        "PLAINTEXT://127.0.0.1:9100", "CONTROLLER://127.0.0.1:9101", "PROXIED://127.0.0.1:9102"
    ]  # fmt: skip
    assert props["advertised.listeners"] == ("PLAINTEXT://127.0.0.1:9100,PROXIED://127.0.0.1:9103")
    assert "PROXIED:PLAINTEXT" in props["listener.security.protocol.map"].split(",")


def test_a_sasl_ssl_listener_uses_scram_sha_512_and_the_run_directorys_pem_key_store() -> None:
    conf = cfg.BrokerConfig(
        port=9100,
        controller_port=9101,
        run_dir=Path("/x"),
        sasl_ssl=cfg.SaslSsl(9104, (("u", "p1"),)),
    )
    props = cfg.server_properties(conf)
    assert "SASL_SSL://127.0.0.1:9104" in props["advertised.listeners"].split(",")
    assert "SASL_SSL:SASL_SSL" in props["listener.security.protocol.map"].split(",")
    assert props["listener.name.sasl_ssl.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["listener.name.sasl_ssl.ssl.keystore.location"] == "/x/tls/server.pem"
    assert "p1" not in "".join(props.values())  # users are made at format time, not configured
    assert conf.sasl_ssl is not None
    assert conf.sasl_ssl.scram_arguments() == ["--add-scram", "SCRAM-SHA-512=[name=u,password=p1]"]
    with pytest.raises(ValueError, match="letters and digits"):
        cfg.SaslSsl(9104, (("u", "p,w"),)).scram_arguments()
