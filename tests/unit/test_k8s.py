"""deploy/k8s/: the Kubernetes manifests, validated and checked against the code, no cluster needed.

What an operator relies on when they run ``kubectl apply -k deploy/k8s/``: every manifest is a
valid object of the Kubernetes API (``kubernetes-validate``, which ships the API's schemas, in its
strict mode: an unknown or misspelt field fails), the KEDA ``ScaledObject`` (a CRD, not in those
schemas) has the shape KEDA reads, and the manifests agree with each other and with the worker:
the settings are the contract's variables and valid ones, the probes ask what the worker serves,
the volume is where the state is kept, the scaler watches the member path's consumer group and
stops at one pod per partition, the selectors select the pods. The Dockerfile's hadolint check is
in test_compose.py.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from smartgroups.errors import ConfigError
from smartgroups.settings import _ENV, Settings
from smartgroups.worker.access import check_bind
from smartgroups.worker.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# The oldest Kubernetes minor the manifests support (persistentVolumeClaimRetentionPolicy is on by
# default from 1.27, GA in 1.32) and the newest whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())

# The part of KEDA's ScaledObject CRD (keda.sh/v1alpha1, KEDA 2.x) and of its kafka trigger that
# the manifest uses, closed: a field KEDA does not know, or a misspelt one, fails.
_INT = {"type": "integer", "minimum": 0}
_HPA_RULES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "stabilizationWindowSeconds": _INT,
        "selectPolicy": {"enum": ["Max", "Min", "Disabled"]},
        "policies": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["type", "value", "periodSeconds"],
                "properties": {
                    "type": {"enum": ["Pods", "Percent"]},
                    "value": {"type": "integer", "minimum": 1},
                    "periodSeconds": {"type": "integer", "minimum": 1, "maximum": 1800},
                },
            },
        },
    },
}
_KAFKA_METADATA = {
    "bootstrapServers",
    "consumerGroup",
    "topic",
    "lagThreshold",
    "activationLagThreshold",
    "offsetResetPolicy",
    "allowIdleConsumers",
    "scaleToZeroOnInvalidOffset",
    "excludePersistentLag",
    "limitToPartitionsWithLag",
    "partitionLimitation",
    "version",
    "sasl",
    "tls",
}
SCALED_OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "name": {"type": "string"},
                        "envSourceContainerName": {"type": "string"},
                    },
                },
                "pollingInterval": _INT,
                "cooldownPeriod": _INT,
                "idleReplicaCount": _INT,
                "minReplicaCount": _INT,
                "maxReplicaCount": _INT,
                "advanced": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string"},
                                "behavior": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "scaleUp": _HPA_RULES,
                                        "scaleDown": _HPA_RULES,
                                    },
                                },
                            },
                        },
                    },
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["type", "metadata"],
                        "properties": {
                            "type": {"const": "kafka"},
                            "name": {"type": "string"},
                            "authenticationRef": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": {"type": "string"}},
                            },
                            # KEDA reads every metadata value as a string: 10000 unquoted is
                            # refused by the CRD.
                            "metadata": {
                                "type": "object",
                                "required": ["bootstrapServers", "consumerGroup"],
                                "propertyNames": {"enum": sorted(_KAFKA_METADATA)},
                                "additionalProperties": {"type": "string"},
                                "properties": {
                                    "lagThreshold": {"type": "string", "pattern": r"^[1-9]\d*$"},
                                    "activationLagThreshold": {
                                        "type": "string",
                                        "pattern": r"^\d+$",
                                    },
                                    "offsetResetPolicy": {"enum": ["earliest", "latest"]},
                                    "allowIdleConsumers": {"enum": ["true", "false"]},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def load(name: str) -> list[dict[str, Any]]:
    documents = [d for d in yaml.safe_load_all((K8S / name).read_text()) if d is not None]
    assert documents, f"deploy/k8s/{name} holds no object"
    return documents


def resources() -> list[str]:
    listed = load("kustomization.yaml")[0]["resources"]
    assert isinstance(listed, list)
    return [str(name) for name in listed]


def objects() -> list[dict[str, Any]]:
    return [document for name in resources() for document in load(name)]


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects() if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"want one {kind} {name or ''}, found {len(found)}"
    return found[0]


def settings_env() -> dict[str, str]:
    data = one("ConfigMap", "smartgroups-config")["data"]
    return {str(k): str(v) for k, v in data.items()}


def pod_spec() -> dict[str, Any]:
    spec = one("StatefulSet", "smartgroups")["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def worker() -> dict[str, Any]:
    containers = pod_spec()["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def pod_labels() -> dict[str, str]:
    return dict(one("StatefulSet", "smartgroups")["spec"]["template"]["metadata"]["labels"])


def selects_the_workers(selector: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= pod_labels().items()


def test_the_kustomization_lists_every_manifest_and_only_them() -> None:
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(resources()) == sorted(on_disk)
    kinds = {o["kind"] for o in objects()}
    assert kinds == {
        "ConfigMap",
        "Service",
        "StatefulSet",
        "PodDisruptionBudget",
        "ScaledObject",
    }


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_kubernetes_object_is_valid(version: str) -> None:
    checked = 0
    for document in objects():
        if document["apiVersion"].startswith("keda.sh/"):
            continue
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{document['kind']} {document['metadata']['name']}: {exc}")
        checked += 1
    assert checked == len(objects()) - 1


def test_the_validator_refuses_a_misspelt_field() -> None:
    statefulset = one("StatefulSet", "smartgroups")
    broken = {**statefulset, "spec": {**statefulset["spec"], "serviceNmae": "x"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_scaled_object_has_the_shape_keda_reads() -> None:
    scaled = one("ScaledObject", "smartgroups")
    jsonschema.validate(scaled, SCALED_OBJECT_SCHEMA)
    trigger = scaled["spec"]["triggers"][0]
    unquoted = {**trigger, "metadata": {**trigger["metadata"], "lagThreshold": 10000}}
    bad = {**scaled, "spec": {**scaled["spec"], "triggers": [unquoted]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SCALED_OBJECT_SCHEMA)


def test_the_scaler_watches_the_member_paths_group_up_to_one_pod_per_partition() -> None:
    settings = Settings.from_env(settings_env())
    spec = one("ScaledObject", "smartgroups")["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "smartgroups",
    }
    metadata = spec["triggers"][0]["metadata"]
    assert metadata["consumerGroup"] == Topology.from_settings(settings).member_group
    assert metadata["bootstrapServers"] == settings.bootstrap_servers
    assert metadata.get("allowIdleConsumers", "false") == "false"
    # Every partition number is one worker's: a pod beyond the partition count would sit idle.
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] == settings.partitions


def test_the_config_map_holds_contract_variables_that_make_valid_settings(
    tmp_path: Path,
) -> None:
    env = settings_env()
    assert set(env) <= set(_ENV.values()), set(env) - set(_ENV.values())
    # Secrets belong in Secrets, not in a ConfigMap.
    assert not {"KAFKA_SASL_PASSWORD", "SMARTGROUPS_API_TOKEN"} & set(env)
    settings = Settings.from_env(env)
    assert settings.member_path == "batch", "the query API and the scaler need the batch path"
    # The worker starts with this bind only because the tokens file is set.
    check_bind(settings.web_host, settings.api_tokens_file, insecure=False)
    with pytest.raises(ConfigError):
        check_bind(settings.web_host, None, insecure=False)


def test_the_workers_reach_each_other_by_their_stable_names() -> None:
    statefulset = one("StatefulSet", "smartgroups")
    governing = one("Service", statefulset["spec"]["serviceName"])["spec"]
    assert governing["clusterIP"] == "None"
    # A worker restoring or rebalancing is not ready, but the others must still resolve its name.
    assert governing["publishNotReadyAddresses"] is True
    assert selects_the_workers(governing["selector"])
    # The worker binds every interface and then advertises its fully qualified host name, which
    # the governing Service makes resolvable.
    assert settings_env()["SMARTGROUPS_WEB_HOST"] == "0.0.0.0"


def test_the_query_api_service_selects_the_workers_http_port() -> None:
    port = int(settings_env()["SMARTGROUPS_WEB_PORT"])
    named = {p["name"]: p["containerPort"] for p in worker()["ports"]}
    assert named == {"http": port}
    for service in (o for o in objects() if o["kind"] == "Service"):
        spec = service["spec"]
        assert selects_the_workers(spec["selector"])
        assert [(p["port"], p["targetPort"]) for p in spec["ports"]] == [(port, "http")]


def test_the_pod_disruption_budget_takes_one_worker_at_a_time() -> None:
    spec = one("PodDisruptionBudget", "smartgroups")["spec"]
    assert spec["maxUnavailable"] == 1
    assert selects_the_workers(spec["selector"]["matchLabels"])


def test_readiness_waits_for_the_restore_and_liveness_does_not() -> None:
    container = worker()
    http = (ROOT / "docs" / "http.md").read_text()
    readiness = container["readinessProbe"]["httpGet"]
    # /v1/health answers 503 while the worker starts, rebalances or restores (docs/http.md).
    assert readiness == {"path": "/v1/health", "port": "http"}
    assert "## GET /v1/health" in http and "**503**" in http
    for probe in ("livenessProbe", "startupProbe"):
        check = container[probe]["httpGet"]
        # A liveness probe on /v1/health would restart a pod that is restoring, and start the
        # restore over: it asks an endpoint that answers 200 whenever the server runs.
        assert check["path"] != "/v1/health" and check["port"] == "http"
        assert f"## GET {check['path']}" in http, f"{check['path']} is not served (docs/http.md)"


def test_prometheus_scrapes_the_metrics_endpoint() -> None:
    template = one("StatefulSet", "smartgroups")["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": settings_env()["SMARTGROUPS_WEB_PORT"],
        "prometheus.io/path": "/metrics",
    }


def test_each_pod_keeps_its_state_on_its_own_volume() -> None:
    statefulset = one("StatefulSet", "smartgroups")["spec"]
    claims = {c["metadata"]["name"] for c in statefulset["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in worker()["volumeMounts"]}
    data_dir = settings_env()["SMARTGROUPS_DATA_DIR"]
    assert mounts[data_dir] in claims
    assert "ReadWriteOnce" in statefulset["volumeClaimTemplates"][0]["spec"]["accessModes"]
    assert [e["configMapRef"]["name"] for e in worker()["envFrom"]] == ["smartgroups-config"]


def test_the_tokens_file_comes_from_a_secret() -> None:
    tokens = PurePosixPath(settings_env()["SMARTGROUPS_API_TOKENS_FILE"])
    mounts = {m["name"]: m for m in worker()["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    secret_mounts = [m for name, m in mounts.items() if "secret" in volumes.get(name, {})]
    assert [PurePosixPath(m["mountPath"]) for m in secret_mounts] == [tokens.parent]
    assert secret_mounts[0]["readOnly"] is True
    secret = volumes[secret_mounts[0]["name"]]["secret"]
    assert secret["secretName"] == "smartgroups-api-tokens"
    # The image's user reads it through the pod's group (fsGroup).
    assert secret["defaultMode"] & 0o040 and not secret["defaultMode"] & 0o007


def test_the_pod_runs_the_images_user_and_command() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)
    assert user, "deploy/Dockerfile sets a numeric USER"
    context = pod_spec()["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (
        int(user[1]),
        int(user[2]),
        int(user[2]),
    )
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert cmd and worker()["args"] == yaml.safe_load(cmd[1])
    # The worker exits within 30 s of SIGTERM (docs/reliability.md): the grace period covers it.
    assert pod_spec()["terminationGracePeriodSeconds"] > 30
