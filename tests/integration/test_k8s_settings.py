"""The Kubernetes ConfigMap's settings run real workers that answer the probes and each other.

deploy/k8s/configmap.yaml makes every pod bind all interfaces (``SMARTGROUPS_WEB_HOST=0.0.0.0``),
advertise its host name to the other workers, read tokens from the mounted Secret and log JSON.
Two workers started with exactly those values (the broker, topic prefix, app, data directories
and ports are this test's own) must start, answer the probes' paths without a token (the kubelet
sends none), refuse the query API without one, and each answer a listing whose members live on
both workers' partitions (so each one reaches the other at its advertised address).
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import orjson
import yaml
from tests.integration.harness import Cluster
from tests.integration.query_client import call, ordered, until
from tests.integration.test_query_api import in_staff, seed_staff

ROOT = Path(__file__).resolve().parents[2]
# Where this test's world differs from a cluster's: its broker, its own topics and app, a data
# directory and a port per worker (the harness's).
OWN = {
    "KAFKA_BOOTSTRAP_SERVERS",
    "SMARTGROUPS_TOPIC_PREFIX",
    "SMARTGROUPS_APP_ID",
    "SMARTGROUPS_PARTITIONS",
    "SMARTGROUPS_DATA_DIR",
    "SMARTGROUPS_WEB_PORT",
}
TOKEN = "tok-k8s-5e1d"


def configmap_env(tokens: Path) -> dict[str, str]:
    data = yaml.safe_load((ROOT / "deploy" / "k8s" / "configmap.yaml").read_text())["data"]
    env = {str(k): str(v) for k, v in data.items() if k not in OWN}
    assert env["SMARTGROUPS_WEB_HOST"] == "0.0.0.0"
    # The Secret's file, mounted elsewhere in the pod.
    env["SMARTGROUPS_API_TOKENS_FILE"] = str(tokens)
    return env


def test_workers_with_the_configmaps_settings_serve_probes_and_each_other(
    cluster: Cluster, tmp_path: Path
) -> None:
    tokens = tmp_path / "api-tokens" / "tokens"
    tokens.parent.mkdir()
    tokens.write_text(f"{TOKEN} *\n")
    cluster.env.update(configmap_env(tokens))
    first, second = cluster.worker(0), cluster.worker(1)
    first.start(wait=False)
    second.start(wait=False)
    for worker in (first, second):
        worker.wait_healthy()  # the readiness probe: GET /v1/health, no token
        # The liveness and startup probes: GET /metrics, no token.
        url = f"http://127.0.0.1:{worker.web_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200

    population = seed_staff(cluster)
    want = ordered(p for p in population if in_staff(p, set()))
    assert want
    path = "/v1/spaces/acme/groups/staff/members?limit=1000"
    for worker in (first, second):
        assert call(worker.web_port, path)[0] == 401
        until(
            lambda port=worker.web_port: call(port, path, token=TOKEN),
            lambda a: a[0] == 200 and [m["member_id"] for m in a[2]["members"]] == want,
        )
    # Both own partitions, so each answer above needed the other worker.
    assigned = [w.health() for w in (first, second)]
    assert [a[1]["partitions"]["assigned"] > 0 for a in assigned if a] == [True, True]
    # SMARTGROUPS_LOG_FORMAT=json: every line a worker logs is one JSON object.
    for worker in (first, second):
        lines = worker.log_path.read_text().splitlines()
        logged = [line for line in lines if line.strip() and line != "--- start ---"]
        assert logged and all(isinstance(orjson.loads(line), dict) for line in logged)
