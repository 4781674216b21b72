"""The compose monitoring stack, without Docker: Prometheus scrapes the worker's ``/metrics``,
Grafana reads that Prometheus, and every query of the dashboard names series the worker serves
with labels they have."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from smartgroups.settings import Settings
from smartgroups.worker.metrics import Metrics
from smartgroups.worker.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def served() -> dict[str, set[str]]:
    """Every sample name a worker serves, with the label names it carries."""
    stats = Counter({"transitions.manual": 1, "commands.accepted": 1, "commands.rejected.x": 1})
    metrics = Metrics(Topology.from_settings(Settings()), stats)
    metrics.dead_letter("member-changes", "decode_error")
    metrics.inputs.labels("member-changes", "applied").inc()
    metrics.lag.labels("member-changes", "0").set(1)
    for gauge in (metrics.backfills_running, metrics.backfill_scanned, metrics.backfill_total):
        gauge.labels("0").set(1)
    metrics.latency.observe(0.1)
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            out.setdefault(sample.name, set()).update(sample.labels)
    return out


def test_prometheus_scrapes_the_worker_on_its_own_loopback(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    assert prometheus["network_mode"] == "service:worker"
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    port = compose["services"]["worker"]["environment"]["SMARTGROUPS_WEB_PORT"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": [f"127.0.0.1:{port}"]}]
    mounts = {m.split(":")[1] for m in prometheus["volumes"]}
    assert "/etc/prometheus/prometheus.yml" in mounts


def test_grafana_reads_that_prometheus_and_loads_the_dashboard(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    sources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    (source,) = sources["datasources"]
    assert source["url"] == "http://worker:9090"  # Prometheus shares the worker's network
    dashboard = json.loads((DEPLOY / "grafana" / "dashboard.json").read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert uids == {source["uid"]}
    mounted = {m.split(":")[0] for m in grafana["volumes"]}
    assert {"./deploy/grafana/provisioning", "./deploy/grafana/dashboard.json"} <= mounted


def test_every_dashboard_query_names_served_series_and_their_labels() -> None:
    series = served()
    dashboard = json.loads((DEPLOY / "grafana" / "dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    covered = set()
    for expr in exprs:
        names = re.findall(r"\bsmartgroups_[a-z_]+", expr)
        assert names, expr
        for name in names:
            assert name in series, f"{name} is not served ({expr})"
            covered.add(name)
        for group in re.findall(r"by \(([^)]*)\)", expr):
            labels = {x.strip() for x in group.split(",")}
            assert any(labels <= series[n] for n in names), f"{labels} in {expr}"
    assert covered >= {
        "smartgroups_inputs_total", "smartgroups_transitions_total", "smartgroups_consumer_lag",
        "smartgroups_latency_seconds_bucket", "smartgroups_dead_letters_total",
        "smartgroups_commands_total", "smartgroups_backfill_members_scanned",
        "smartgroups_backfill_members_total", "smartgroups_batch_records_sum",
        "smartgroups_batch_seconds_bucket",
    }  # fmt: skip
