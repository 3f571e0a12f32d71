"""The Helm charts (station, central) and skaffold.yaml, checked offline but against real parts.

There is no cluster here, so each part of the deployment is checked by the thing that will
read it: the Helm engine renders and lints the charts, the Kubernetes API schemas
(kubernetes-validate --strict) check the manifests, a real mosquitto loads the rendered
passwords and ACL, a real PostgreSQL runs the rendered database setup (and, for central, a
real primary and a standby streaming from it), promtool and amtool read the alert rules and
the Alertmanager configuration, and each service's own settings class loads the environment
rendered for it.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from glob import glob
from pathlib import Path
from typing import Any

import helm_python
import httpx
import jsonschema  # type: ignore[import-untyped]
import paho.mqtt.client as mqtt
import psycopg
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic_settings import BaseSettings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from station_protocol import channels
from station_protocol.catalogue import load_catalogue
from station_protocol.channels import ZigbeeChannels, shared
from station_protocol.ids import Layout
from station_protocol.messages import BreathAck, CollectorBreath
from station_runtime.migrations import migrate
from station_runtime.outbox import OUTBOX_METADATA
from station_sync.outbox import Outbox
from station_tools import backup as backups
from station_tools.cli import build_parser
from station_tools.mosquitto import mosquitto_binary
from station_tools.ports import free_port, wait_for_port
from station_tools.processes import ServiceProcess
from station_tools.records import queue_records, sample_record

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "station"
CENTRAL_CHART = REPO / "charts" / "central"
RELEASE = "station"
NAMESPACE = "edge"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
CENTRAL_URL = "https://central.example.com"
STATION_TOKEN = "stn_" + "T0k3n-of-station-1_" * 2 + "abcde"

Manifest = dict[str, Any]


def required_values() -> dict[str, Any]:
    """The least a station needs: every password the chart insists on."""
    return {
        "mqtt": {
            "passwords": {
                "verification": "verification-broker-pw",
                "billing": "billing-broker-pw-01",
                "faults": "faults-broker-pw-01",
                "sync": "sync-broker-pw-0001",
                "console": "console-broker-pw-01",
                "chargers": "seed-of-the-chargers",
            }
        },
        "postgresql": {
            "auth": {
                "postgresPassword": "postgres-super-pw",
                "passwords": {
                    "verification": "verification-db-pw",
                    "billing": "billing+db/pw&more",
                    "faults": "faults-db-password",
                    "sync": "sync:db@pw#0001",
                    "console": "console-db-password",
                },
            }
        },
        "central": {"url": CENTRAL_URL, "token": STATION_TOKEN},
    }


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def everything_on() -> dict[str, Any]:
    """USB coordinators mounted, one charger on its own node, the image pinned."""
    return merged(
        required_values(),
        {
            "chargers": 2,
            "zigbee2mqtt": {"serial": {"hostDevice": {"enabled": True}}},
            "perCharger": {
                "c2": {
                    "serialPort": "/dev/ttyACM0",
                    "nodeSelector": {"kubernetes.io/hostname": "cabinet-2"},
                }
            },
            "image": {"digest": "sha256:" + "ab" * 32},
            "backup": {"enabled": True, "timeZone": "Asia/Shanghai"},
        },
    )


def everything_off() -> dict[str, Any]:
    """External databases, no Zigbee2MQTT, no policies, no monitoring, no volumes."""
    values = merged(
        required_values(),
        {
            "postgresql": {"enabled": False},
            "externalDatabase": {
                "urls": {
                    "verification": "postgresql://v:pw@db.example:5432/verification",
                    "billing": "postgresql://b:pw@db.example:5432/billing",
                    "faults": "postgresql://f:pw@db.example:5432/faults",
                    "sync": "postgresql://s:pw@db.example:5432/billing",
                    "console": "postgresql://c:pw@db.example:5432/console",
                }
            },
            "zigbee2mqtt": {"enabled": False},
            "networkPolicy": {"enabled": False},
            "serviceMonitor": {"enabled": False},
            "prometheusRule": {"enabled": False},
            "alertmanagerConfig": {"enabled": False},
            "grafanaDashboard": {"enabled": False},
            "mosquitto": {"persistence": {"enabled": False}},
        },
    )
    del values["postgresql"]["auth"]
    return values


@dataclass(frozen=True)
class Rendered:
    """The manifests of one rendering, looked up the way kubectl would."""

    docs: list[Manifest]

    def of_kind(self, kind: str) -> list[Manifest]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def get(self, kind: str, name: str) -> Manifest:
        found = [doc for doc in self.of_kind(kind) if doc["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
        return found[0]

    def secret(self, name: str, key: str) -> str:
        value = self.get("Secret", name)["stringData"][key]
        assert isinstance(value, str)
        return value

    def workloads(self) -> list[Manifest]:
        return [doc for doc in self.docs if doc["kind"] in ("Deployment", "StatefulSet", "CronJob")]

    def component(self, kind: str, component: str) -> list[Manifest]:
        return [
            doc
            for doc in self.of_kind(kind)
            if doc["metadata"]["labels"].get("app.kubernetes.io/component") == component
        ]


def render(values: dict[str, Any], chart_dir: Path = CHART, release: str = RELEASE) -> Rendered:
    chart = helm_python.Chart.load(chart_dir)
    files = chart.render(values=values, name=release, namespace=NAMESPACE)
    docs: list[Manifest] = []
    for path, manifests in sorted(files.items()):
        if path.endswith(".yaml"):
            docs.extend(doc for doc in yaml.safe_load_all(manifests) if doc)
    return Rendered(docs)


@pytest.fixture(scope="module")
def rendered_chart() -> Rendered:
    return render(required_values())


@pytest.fixture(scope="module")
def variants(rendered_chart: Rendered) -> dict[str, Rendered]:
    return {
        "default": rendered_chart,
        "everything on": render(everything_on()),
        "everything off": render(everything_off()),
    }


def env_of(container: Manifest) -> dict[str, Any]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def env_value(rendered: Rendered, entry: dict[str, Any]) -> str | None:
    """An env entry's value as the pod would see it (Secrets resolved; fieldRefs unknown)."""
    if "value" in entry:
        return str(entry["value"])
    ref = entry["valueFrom"].get("secretKeyRef")
    return rendered.secret(ref["name"], ref["key"]) if ref else None


def pod_template(workload: Manifest) -> Manifest:
    """The pod a Deployment, StatefulSet or CronJob (through its job) runs."""
    spec = workload["spec"]
    template: Manifest = (
        spec["jobTemplate"]["spec"]["template"]
        if workload["kind"] == "CronJob"
        else spec["template"]
    )
    return template


def pod_containers(workload: Manifest) -> list[Manifest]:
    spec = pod_template(workload)["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def station_containers(rendered: Rendered) -> list[tuple[Manifest, Manifest]]:
    """(workload, container) for every container running the station's own image."""
    return [
        (workload, container)
        for workload in rendered.of_kind("Deployment")
        for container in workload["spec"]["template"]["spec"]["containers"]
        if container.get("command", [])[:2] == ["python", "-m"]
    ]


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# --- Helm ----------------------------------------------------------------------------------


def test_chart_lints_without_errors_or_warnings() -> None:
    report = helm_python.lint(CHART, required_values(), strict=True, namespace=NAMESPACE)

    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize(
    "name", ["verification", "billing", "faults", "sync", "console", "chargers"]
)
def test_rendering_without_a_broker_password_fails_naming_it(name: str) -> None:
    values = required_values()
    del values["mqtt"]["passwords"][name]

    with pytest.raises(helm_python.HelmError) as failure:
        render(values)

    assert f"mqtt.passwords.{name} is required" in str(failure.value)


def test_rendering_with_a_weak_password_fails() -> None:
    values = merged(required_values(), {"mqtt": {"passwords": {"billing": "secret"}}})

    with pytest.raises(helm_python.HelmError) as failure:
        render(values)

    assert "mqtt.passwords.billing is too short" in str(failure.value)


@pytest.mark.parametrize("key", ["url", "token"])
def test_sync_without_central_fails_naming_the_value(key: str) -> None:
    values = required_values()
    del values["central"][key]

    with pytest.raises(helm_python.HelmError) as failure:
        render(values)

    assert f"central.{key} is required while sync is enabled" in str(failure.value)
    # A station that does not relay its records needs neither.
    render(merged(values, {"services": {"sync": {"enabled": False}}}))


@pytest.mark.parametrize(
    ("central", "complaint"),
    [
        ({"url": "central.example.com"}, "central.url must be an http:// or https:// URL"),
        ({"token": "short"}, "central.token must be at least 16 characters"),
    ],
)
def test_a_malformed_central_url_or_token_fails(central: dict[str, str], complaint: str) -> None:
    with pytest.raises(helm_python.HelmError) as failure:
        render(merged(required_values(), {"central": central}))

    assert complaint in str(failure.value)


def test_sync_needs_billing_whose_outbox_it_relays() -> None:
    values = merged(required_values(), {"services": {"billing": {"enabled": False}}})

    with pytest.raises(helm_python.HelmError) as failure:
        render(values)

    assert "services.sync.databaseAccess.database: billing is no enabled service" in str(
        failure.value
    )


def test_values_schema_refuses_a_station_without_chargers() -> None:
    with pytest.raises(helm_python.HelmError) as failure:
        render(merged(required_values(), {"chargers": 0}))

    assert "chargers" in str(failure.value)


# --- Kubernetes schemas --------------------------------------------------------------------


def assert_strictly_valid(variants: dict[str, Rendered], work: Path) -> None:
    """kubernetes-validate --strict on every manifest (CRD kinds are checked on their own)."""
    files: list[str] = []
    for variant, rendered in variants.items():
        for index, doc in enumerate(rendered.docs):
            if doc["kind"] in CRD_KINDS:
                continue
            path = work / f"{variant.replace(' ', '-')}-{index:03d}-{doc['kind']}.yaml"
            path.write_text(yaml.safe_dump(doc))
            files.append(str(path))

    result = subprocess.run(
        [str(Path(sys.executable).parent / "kubernetes-validate"), "--strict", *files],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    passed = [line for line in result.stdout.splitlines() if " passed for resource " in line]
    assert len(passed) == len(files), result.stdout


def test_every_manifest_passes_strict_kubernetes_validation(
    variants: dict[str, Rendered], tmp_path: Path
) -> None:
    assert_strictly_valid(variants, tmp_path)

    kinds = {doc["kind"] for doc in variants["default"].docs}
    assert {
        "Deployment",
        "StatefulSet",
        "Service",
        "Secret",
        "ConfigMap",
        "PersistentVolumeClaim",
        "NetworkPolicy",
        "ServiceAccount",
        "ServiceMonitor",
        "PrometheusRule",
    } <= kinds


SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {"labels": {"type": "object"}},
        },
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "required": ["matchLabels"],
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "minProperties": 1,
                            "additionalProperties": {"type": "string"},
                        }
                    },
                },
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                        "any": {"type": "boolean"},
                    },
                },
                "targetLabels": {"type": "array", "items": {"type": "string"}},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port", "path"],
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string", "minLength": 1},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        },
                    },
                },
            },
        },
    },
}


def test_service_monitors_scrape_the_metrics_of_every_http_service(
    variants: dict[str, Rendered],
) -> None:
    for variant in ("default", "everything on"):
        rendered = variants[variant]
        scraped: set[str] = set()
        for monitor in rendered.of_kind("ServiceMonitor"):
            jsonschema.validate(monitor, SERVICE_MONITOR)
            spec = monitor["spec"]
            assert spec["namespaceSelector"]["matchNames"] == [NAMESPACE]
            services = [
                service
                for service in rendered.of_kind("Service")
                if labels_match(spec["selector"]["matchLabels"], service["metadata"]["labels"])
            ]
            assert services, f"{monitor['metadata']['name']} selects no Service"
            for service in services:
                ports = {port["name"] for port in service["spec"]["ports"]}
                assert {endpoint["port"] for endpoint in spec["endpoints"]} <= ports
                for label in spec.get("targetLabels", []):
                    assert label in service["metadata"]["labels"]
                scraped.add(service["metadata"]["name"])
            assert all(endpoint["path"] == "/metrics" for endpoint in spec["endpoints"])
        http_services = {
            service["metadata"]["name"]
            for service in rendered.of_kind("Service")
            if any(port["name"] == "http" for port in service["spec"]["ports"])
        }
        assert scraped == http_services, variant
    assert variants["everything off"].of_kind("ServiceMonitor") == []


# --- Alerts, Alertmanager and the fault board ----------------------------------------------

RULES_FILE = CHART / "files" / "prometheus-rules.yaml"
ALERTMANAGER_FILE = CHART / "files" / "alertmanager.yaml"
DASHBOARD_FILE = CHART / "dashboards" / "fault-board.json"
DURATION = "^([0-9]+(ms|s|m|h|d|w|y))+$"
TEXT_MAP = {"type": "object", "additionalProperties": {"type": "string"}}

PROMETHEUS_RULE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": {
            "type": "object",
            "required": ["name", "labels"],
            "properties": {"labels": TEXT_MAP},
        },
        "spec": {
            "type": "object",
            "required": ["groups"],
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": {"type": "string", "pattern": DURATION},
                            "rules": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "required": ["alert", "expr", "labels", "annotations"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "alert": {
                                            "type": "string",
                                            "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                                        },
                                        "expr": {"type": "string", "minLength": 1},
                                        "for": {"type": "string", "pattern": DURATION},
                                        "labels": {**TEXT_MAP, "required": ["severity", "code"]},
                                        "annotations": {
                                            **TEXT_MAP,
                                            "required": ["summary", "runbook_url"],
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def tool(name: str) -> str:
    """A program the check needs; missing, the test fails and says how to get it."""
    path = shutil.which(name)
    assert path, f"{name} is not installed (apt-get install -y --no-install-recommends prometheus)"
    return path


def alert_rules(rendered: Rendered) -> list[dict[str, Any]]:
    (rule,) = rendered.of_kind("PrometheusRule")
    return [alert for group in rule["spec"]["groups"] for alert in group["rules"]]


def alertmanager_file(rendered: Rendered, work: Path) -> Path:
    """The rendered Alertmanager Secret's configuration, where amtool can read it."""
    path = work / "alertmanager.yaml"
    path.write_text(rendered.secret(f"{RELEASE}-alertmanager", "alertmanager.yaml"))
    return path


def amtool(*args: str) -> str:
    result = subprocess.run(
        [tool("amtool"), *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def receiver_of(config: Path, labels: dict[str, str]) -> str:
    pairs = [f"{name}={value}" for name, value in labels.items()]
    return amtool("config", "routes", "test", f"--config.file={config}", *pairs).strip()


def test_prometheus_rule_is_the_generated_rule_file(tmp_path: Path) -> None:
    labels = {"release": "kube-prometheus-stack"}
    rendered = render(merged(required_values(), {"prometheusRule": {"labels": labels}}))
    (rule,) = rendered.of_kind("PrometheusRule")

    jsonschema.validate(rule, PROMETHEUS_RULE)
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"] == yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    # Prometheus itself loads them (expressions, durations, annotation templates).
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"], allow_unicode=True), encoding="utf-8")
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = alert_rules(rendered)
    assert f"SUCCESS: {len(alerts)} rules found" in result.stdout
    # One alert per catalogue code, with the catalogue's severity.
    catalogue = load_catalogue()
    assert sorted(alert["labels"]["code"] for alert in alerts) == sorted(catalogue.codes())
    for alert in alerts:
        assert alert["labels"]["severity"] == catalogue[alert["labels"]["code"]].severity


def test_alertmanager_gets_the_generated_routes(rendered_chart: Rendered, tmp_path: Path) -> None:
    secret = rendered_chart.get("Secret", f"{RELEASE}-alertmanager")
    assert secret["metadata"]["namespace"] == NAMESPACE
    text = secret["stringData"]["alertmanager.yaml"]
    assert text.strip() == ALERTMANAGER_FILE.read_text(encoding="utf-8").strip()

    config = alertmanager_file(rendered_chart, tmp_path)
    assert "SUCCESS" in amtool("check-config", str(config))
    # Every alert reaches the receiver its severity promises.
    promised = {"critical": "pager", "major": "operator", "minor": "digest", "warning": "digest"}
    for alert in alert_rules(rendered_chart):
        labels = alert["labels"]
        assert receiver_of(config, labels) == promised[labels["severity"]], labels


def test_a_station_sets_its_own_alert_receivers(tmp_path: Path) -> None:
    receivers = [
        {"name": "pager", "webhook_configs": [{"url": "https://pager.example.com/alerts"}]},
        {"name": "operator", "webhook_configs": [{"url": "https://ops.example.com/alerts"}]},
        {"name": "digest", "email_configs": [{"to": "operators@example.com"}]},
    ]
    rendered = render(
        merged(
            required_values(),
            {
                "alertmanagerConfig": {
                    "namespace": "monitoring",
                    "override": {"receivers": receivers},
                }
            },
        )
    )

    secret = rendered.get("Secret", f"{RELEASE}-alertmanager")
    assert secret["metadata"]["namespace"] == "monitoring"
    config = yaml.safe_load(secret["stringData"]["alertmanager.yaml"])
    generated = yaml.safe_load(ALERTMANAGER_FILE.read_text(encoding="utf-8"))
    assert config["receivers"] == receivers
    assert {key: config[key] for key in generated if key != "receivers"} == {
        key: value for key, value in generated.items() if key != "receivers"
    }
    path = alertmanager_file(rendered, tmp_path)
    assert "SUCCESS" in amtool("check-config", str(path))
    assert receiver_of(path, {"severity": "critical", "code": "collector_offline"}) == "pager"


def test_grafana_sidecar_finds_the_fault_board(rendered_chart: Rendered) -> None:
    boards = [
        config
        for config in rendered_chart.of_kind("ConfigMap")
        if config["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]

    (board,) = boards
    assert board["metadata"]["namespace"] == NAMESPACE
    ((name, text),) = board["data"].items()
    assert name.endswith(".json")
    assert json.loads(text) == json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))


def test_monitoring_renders_only_what_is_switched_on(variants: dict[str, Rendered]) -> None:
    def monitoring(rendered: Rendered) -> set[str]:
        found = {doc["metadata"]["name"] for doc in rendered.of_kind("PrometheusRule")}
        found |= {
            doc["metadata"]["name"]
            for doc in rendered.docs
            if doc["kind"] in ("Secret", "ConfigMap")
            and doc["metadata"]["name"] in (f"{RELEASE}-alertmanager", f"{RELEASE}-fault-board")
        }
        return found

    everything = {f"{RELEASE}-faults", f"{RELEASE}-alertmanager", f"{RELEASE}-fault-board"}
    assert monitoring(variants["default"]) == everything
    assert monitoring(variants["everything off"]) == set()
    # Rules and board are about the faults service: without it, only the routes remain.
    without_faults = render(merged(required_values(), {"services": {"faults": {"enabled": False}}}))
    assert monitoring(without_faults) == {f"{RELEASE}-alertmanager"}


# --- Chargers and collectors ---------------------------------------------------------------


@pytest.mark.parametrize("chargers", [4, 2, 7])
def test_one_collector_and_one_zigbee2mqtt_per_charger(chargers: int) -> None:
    rendered = render(merged(required_values(), {"chargers": chargers}))
    expected = [f"c{i}" for i in range(1, chargers + 1)]

    collectors = rendered.component("Deployment", "collector")
    found = []
    for collector in collectors:
        assert collector["spec"]["replicas"] == 1
        assert collector["spec"]["strategy"]["type"] == "Recreate"
        (container,) = collector["spec"]["template"]["spec"]["containers"]
        env = {name: env_value(rendered, entry) for name, entry in env_of(container).items()}
        charger = env["STATION_COLLECTOR_CHARGER"]
        assert charger is not None
        found.append(charger)
        assert env["STATION_COLLECTOR_PILES"] == "12"
        assert env["STATION_COLLECTOR_BROKER_USERNAME"] == f"collector-{charger}"
        assert env["STATION_COLLECTOR_CLIENT_ID"] == f"collector-{charger}"
    assert sorted(found, key=lambda c: int(c[1:])) == expected

    bridges = []
    for config in rendered.component("ConfigMap", "zigbee2mqtt"):
        settings = yaml.safe_load(config["data"]["configuration.yaml"])
        bridges.append(settings["mqtt"]["base_topic"])
        assert settings["mqtt"]["server"] == f"mqtt://{RELEASE}-mosquitto:1883"
    assert sorted(bridges) == sorted(ZigbeeChannels.for_charger(c).base for c in expected)
    assert len(rendered.component("Deployment", "zigbee2mqtt")) == chargers


def test_every_service_and_the_console_run_by_default_on_their_ports(
    variants: dict[str, Rendered],
) -> None:
    def deployed(rendered: Rendered) -> set[str]:
        return {
            doc["metadata"]["labels"]["app.kubernetes.io/component"]
            for doc in rendered.of_kind("Deployment")
        }

    assert deployed(variants["default"]) == {
        "verification",
        "billing",
        "faults",
        "sync",
        "console",
        "collector",
        "zigbee2mqtt",
    }
    ports = {
        doc["metadata"]["name"]: doc["spec"]["ports"][0]["port"]
        for doc in variants["default"].of_kind("Service")
    }
    assert ports[f"{RELEASE}-faults"] == 8103
    assert ports[f"{RELEASE}-sync"] == 8104
    assert ports[f"{RELEASE}-console"] == 8100


def test_the_console_reaches_the_owners_inside_the_release(
    rendered_chart: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its board draws the chart's layout, and its owners are the release's own services."""
    settings = load_settings(
        rendered_chart, service_container(rendered_chart, "console"), monkeypatch
    )
    ports = {
        doc["metadata"]["name"]: doc["spec"]["ports"][0]["port"]
        for doc in rendered_chart.of_kind("Service")
    }
    owners = {
        "verification": settings.verification_url,
        "billing": settings.billing_url,
        "faults": settings.faults_url,
    }
    for owner, url in owners.items():
        assert (url.host, url.port) == (f"{RELEASE}-{owner}", ports[f"{RELEASE}-{owner}"])
    assert settings.layout == Layout.parse("4x12")
    assert settings.station_name == "station-1"
    assert settings.language == "zh"
    assert settings.broker_username == "console"
    assert settings.client_id == "console"
    url = settings.database("console")
    assert (url.host, url.database) == ("station-postgresql", "console")


def test_the_station_image_is_pinned_by_digest_when_one_is_given(
    variants: dict[str, Rendered],
) -> None:
    def images(rendered: Rendered) -> set[str]:
        return {container["image"] for _, container in station_containers(rendered)}

    assert images(variants["default"]) == {"station:0.1.0"}
    assert images(variants["everything on"]) == {"station:0.1.0@sha256:" + "ab" * 32}


# --- Services' own settings ----------------------------------------------------------------


def load_settings(rendered: Rendered, container: Manifest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The service's own Settings, loaded from exactly the environment its pod gets."""
    module = container["command"][2]
    assert importlib.util.find_spec(f"{module}.__main__") is not None, module
    settings_class = importlib.import_module(f"{module}.core.config").Settings
    assert issubclass(settings_class, BaseSettings)
    prefix = settings_class.model_config["env_prefix"]
    env = {name: env_value(rendered, entry) for name, entry in env_of(container).items()}
    for name in env:
        assert name.startswith(prefix), f"{name} is not read by {module}"
        assert name[len(prefix) :].lower() in settings_class.model_fields, (
            f"{name}: {module} has no such setting, it would be ignored"
        )
    with monkeypatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("STATION_")]:
            patch.delenv(name)
        for name, value in env.items():
            assert value is not None
            patch.setenv(name, value)
        return settings_class()


def service_container(rendered: Rendered, component: str) -> Manifest:
    (deployment,) = rendered.component("Deployment", component)
    containers: list[Manifest] = deployment["spec"]["template"]["spec"]["containers"]
    (container,) = containers
    return container


def test_each_service_accepts_the_environment_rendered_for_it(
    rendered_chart: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = set()
    for _, container in station_containers(rendered_chart):
        settings = load_settings(rendered_chart, container, monkeypatch)
        (port,) = container["ports"]
        assert settings.port == port["containerPort"]
        assert settings.secure is True
        assert str(settings.broker) == f"mqtt://{RELEASE}-mosquitto:1883"
        checked.add(container["command"][2])
    assert checked == {
        "station_verification",
        "station_billing",
        "station_faults",
        "station_sync",
        "station_console",
        "station_collector",
    }


def test_faults_watches_the_stations_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = render(merged(required_values(), {"chargers": 3, "pilesPerCharger": 8}))

    settings = load_settings(rendered, service_container(rendered, "faults"), monkeypatch)

    assert settings.layout == Layout.parse("3x8")
    assert len(settings.layout.pile_ids()) == 24
    assert settings.misses == 3
    assert settings.broker_username == "faults"
    url = settings.database("faults")
    assert (url.host, url.port, url.database) == ("station-postgresql", 5432, "faults")


def test_sync_relays_billings_outbox_to_central_with_the_station_token(
    rendered_chart: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = service_container(rendered_chart, "sync")

    settings = load_settings(rendered_chart, container, monkeypatch)

    assert settings.station_id == "station-1"
    assert settings.central_url == CENTRAL_URL
    assert settings.central_token.get_secret_value() == STATION_TOKEN
    assert settings.broker_username == "sync"
    # Billing's database, as sync's own role (the password survives URL quoting).
    url = settings.outbox_database()
    assert (url.username, url.password) == ("sync", "sync:db@pw#0001")
    assert (url.host, url.database) == (f"{RELEASE}-postgresql", "billing")
    # One relay at a time, also while it is updated.
    (deployment,) = rendered_chart.component("Deployment", "sync")
    assert (deployment["spec"]["replicas"], deployment["spec"]["strategy"]) == (
        1,
        {"type": "Recreate"},
    )
    # The token reaches the pod from sync's own Secret, never as plain text in the manifest.
    token = env_of(container)["STATION_SYNC_CENTRAL_TOKEN"]
    assert token["valueFrom"]["secretKeyRef"]["name"] == f"{RELEASE}-sync"


# --- Security ------------------------------------------------------------------------------


def assert_unprivileged(variant: str, rendered: Rendered) -> None:
    """No service account token, non-root, seccomp, limits, read-only root, no privileges."""
    for workload in rendered.workloads():
        name = f"{variant}: {workload['metadata']['name']}"
        pod = pod_template(workload)["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in pod_containers(workload):
            security = container["securityContext"]
            assert set(container["resources"]["limits"]) == {"cpu", "memory"}, name
            assert set(container["resources"]["requests"]) == {"cpu", "memory"}, name
            assert security["readOnlyRootFilesystem"] is True, name
            if security.get("privileged"):
                # Only a USB coordinator needs it; the API refuses it with this off.
                assert container["name"] == "zigbee2mqtt", name
                assert "allowPrivilegeEscalation" not in security, name
            else:
                assert security["allowPrivilegeEscalation"] is False, name
                assert security["capabilities"]["drop"] == ["ALL"], name
    for _, container in station_containers(rendered):
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}


def assert_own_credentials_only(rendered: Rendered) -> None:
    for workload in rendered.workloads():
        secrets = {
            entry["valueFrom"]["secretKeyRef"]["name"]
            for container in pod_containers(workload)
            for entry in container.get("env", [])
            if "secretKeyRef" in entry.get("valueFrom", {})
        }
        volumes = {
            volume["secret"]["secretName"]
            for volume in pod_template(workload)["spec"].get("volumes", [])
            if "secret" in volume
        }
        assert len(secrets | volumes) <= 1, workload["metadata"]["name"]


def test_pods_run_unprivileged_with_limits_and_health_probes(
    variants: dict[str, Rendered],
) -> None:
    for variant, rendered in variants.items():
        assert_unprivileged(variant, rendered)
    privileged = [
        container["name"]
        for workload in variants["everything on"].workloads()
        for container in pod_containers(workload)
        if container["securityContext"].get("privileged")
    ]
    assert privileged == ["zigbee2mqtt", "zigbee2mqtt"]


def test_each_pod_holds_only_its_own_credentials(rendered_chart: Rendered) -> None:
    assert_own_credentials_only(rendered_chart)


def test_network_policies_admit_every_client_the_station_needs(rendered_chart: Rendered) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in rendered_chart.of_kind("NetworkPolicy")}
    deny = policies[f"{RELEASE}-default-deny"]
    assert "ingress" not in deny and deny["policyTypes"] == ["Ingress"]

    def admitted(policy: str, pod_labels: dict[str, str]) -> bool:
        rules = policies[f"{RELEASE}-{policy}"]["ingress"]
        return any(
            "podSelector" in peer and labels_match(peer["podSelector"]["matchLabels"], pod_labels)
            for rule in rules
            for peer in rule["from"]
        )

    for workload in rendered_chart.workloads():
        labels = pod_template(workload)["metadata"]["labels"]
        names = {name for c in pod_containers(workload) for name in env_of(c)}
        name = workload["metadata"]["name"]
        talks_mqtt = any(n.endswith(("_BROKER", "_MQTT_SERVER")) for n in names)
        assert admitted("mosquitto", labels) == talks_mqtt, name
        assert admitted("postgresql", labels) == any(n.endswith("_DATABASE_URL") for n in names)
    scrapers = policies[f"{RELEASE}-http"]["ingress"][0]["from"]
    assert any("namespaceSelector" in peer for peer in scrapers)


# --- The broker's ACL ----------------------------------------------------------------------


def parse_acl(text: str) -> dict[str, list[tuple[str, str]]]:
    """mosquitto's acl_file: ``user NAME`` then ``topic [read|write|readwrite] FILTER`` lines."""
    rules: dict[str, list[tuple[str, str]]] = {}
    user: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if words[0] == "user":
            user = words[1]
            rules.setdefault(user, [])
        elif words[0] == "topic":
            assert user is not None, f"rule outside a user block: {line}"
            access, pattern = words[1:] if len(words) == 3 else ("readwrite", words[1])
            rules[user].append((access, pattern))
        else:
            raise AssertionError(f"unexpected ACL line: {line}")
    return rules


def may(rules: dict[str, list[tuple[str, str]]], user: str, access: str, topic: str) -> bool:
    return any(
        granted in (access, "readwrite") and mqtt.topic_matches_sub(pattern, topic)
        for granted, pattern in rules.get(user, [])
    )


def test_acl_keeps_collector_c2_off_the_topics_of_c1(rendered_chart: Rendered) -> None:
    rules = parse_acl(rendered_chart.secret(f"{RELEASE}-mosquitto-auth", "acl"))
    c1, c2 = ZigbeeChannels.for_charger("c1"), ZigbeeChannels.for_charger("c2")
    c1_topics = [
        channels.COLLECTOR_STATUS.topic(charger="c1"),
        channels.COLLECTOR_BREATH.topic(charger="c1"),
        c1.pile_set.topic(pile="c1-p01"),
        c1.bridge_request("permit_join"),
        c1.pile_state.topic(pile="c1-p01"),
    ]

    for topic in c1_topics:
        assert not may(rules, "collector-c2", "write", topic), topic
        assert not may(rules, "zigbee2mqtt-c2", "write", topic), topic
        assert may(rules, "collector-c1", "write", topic), topic
    assert not may(rules, "collector-c2", "read", channels.replies("collector-c1"))
    assert not may(rules, "collector-c2", "read", c1.pile_state.topic(pile="c1-p01"))
    assert not may(rules, "collector-c2", "write", channels.replies("collector-c1"))
    assert not may(rules, "collector-c2", "write", channels.PILE_SESSION.topic(pile="c1-p01"))

    # What c2 does need still works.
    for topic in [
        channels.COLLECTOR_STATUS.topic(charger="c2"),
        c2.pile_set.topic(pile="c2-p01"),
        channels.VERIFICATION.topic(),
        channels.SESSION_OPEN.topic(),
        channels.CHECKOUT.topic(),
    ]:
        assert may(rules, "collector-c2", "write", topic), topic
    for topic in [channels.replies("collector-c2"), c2.pile_state.topic(pile="c2-p01")]:
        assert may(rules, "collector-c2", "read", topic), topic
    assert may(rules, "collector-c2", "read", channels.PILE_SESSION.topic(pile="c2-p01"))

    # Every user with a password has rules, and nobody has rules without a password.
    users = {
        line.split(":", 1)[0]
        for line in rendered_chart.secret(f"{RELEASE}-mosquitto-auth", "passwd").splitlines()
    }
    assert users == set(rules)


def test_acl_gives_each_service_the_topics_its_code_uses(rendered_chart: Rendered) -> None:
    """What each service subscribes to and publishes (its bus routes, requests and replies)."""
    rules = parse_acl(rendered_chart.secret(f"{RELEASE}-mosquitto-auth", "acl"))
    c1 = ZigbeeChannels.for_charger("c1")
    uses: dict[str, dict[str, list[str]]] = {
        "verification": {
            "read": [
                channels.VERIFICATION.topic(),
                channels.DEBIT.topic(),
                channels.BALANCE.topic(),
                channels.WITHDRAWAL.topic(),
                channels.PILE_SESSION.topic(pile="c1-p01"),
                channels.replies("verification-pod-1"),
            ],
            "write": [
                channels.replies("collector-c1"),
                channels.replies("billing-pod-1"),
                channels.SESSION_QUERY.topic(),
                channels.SERVICE_STATUS.topic(service="verification"),
            ],
        },
        "billing": {
            "read": [
                channels.SESSION_OPEN.topic(),
                channels.CHECKOUT.topic(),
                channels.SESSION_QUERY.topic(),
                channels.PILE_METER.topic(pile="c2-p12"),
                channels.replies("billing-pod-1"),
                channels.STATION_PILES.topic(),
            ],
            "write": [
                channels.replies("collector-c1"),
                channels.PILE_SESSION.topic(pile="c1-p01"),
                channels.DEBIT.topic(),
                channels.BALANCE.topic(),
                channels.PILE_TARIFF.topic(pile="c1-p01"),
                channels.COLLECTOR_STOP.topic(charger="c2"),
                channels.SERVICE_STATUS.topic(service="billing"),
            ],
        },
        "faults": {
            "read": [
                channels.COLLECTOR_BREATH.topic(charger="c1"),
                channels.COLLECTOR_STATUS.topic(charger="c2"),
                channels.COLLECTOR_FAULT.topic(
                    charger="c1", source="c1-p01", code="pile_unreachable"
                ),
                channels.SERVICE_STATUS.topic(service="billing"),
                channels.SERVICE_FAULT.topic(
                    service="sync", source="central", code="central_sync_backlog"
                ),
                channels.FAULT_BULLETIN.topic(source="c1-p01", code="pile_unreachable"),
                channels.STATION_PILES.topic(),
            ],
            "write": [
                channels.replies("collector-c1"),
                channels.FAULT_BULLETIN.topic(source="c1-p01", code="pile_unreachable"),
                channels.SERVICE_STATUS.topic(service="faults"),
                channels.SERVICE_FAULT.topic(
                    service="faults", source="database", code="database_unreachable"
                ),
            ],
        },
        "sync": {
            "read": [],
            "write": [
                channels.SERVICE_STATUS.topic(service="sync"),
                channels.SERVICE_FAULT.topic(
                    service="sync", source="central", code="central_sync_backlog"
                ),
            ],
        },
        "console": {
            "read": [
                channels.PILE_STATUS.topic(pile="c1-p01"),
                channels.PILE_MAINTENANCE.topic(pile="c4-p12"),
                channels.PILE_TARIFF.topic(pile="c1-p01"),
                channels.PILE_SESSION.topic(pile="c1-p01"),
                channels.COLLECTOR_STATUS.topic(charger="c2"),
                channels.FAULT_BULLETIN.topic(source="c1-p01", code="pile_unreachable"),
                channels.replies("console"),
                channels.STATION_PILES.topic(),
                c1.device_rename.response.topic(),
                c1.permit_join.response.topic(),
                c1.device_remove.response.topic(),
                c1.bridge_event.topic(),
                c1.bridge_info.topic(),
            ],
            "write": [
                channels.PILE_MAINTENANCE.topic(pile="c1-p01"),
                channels.KIOSK.topic(charger="c3"),
                channels.SERVICE_STATUS.topic(service="console"),
                channels.STATION_PILES.topic(),
                channels.SESSION_QUERY.topic(),
                c1.permit_join.request.topic(),
                ZigbeeChannels.for_charger("c4").device_rename.request.topic(),
                c1.device_remove.request.topic(),
            ],
        },
        "collector-c1": {
            "read": [
                channels.replies("collector-c1"),
                channels.PILE_SESSION.topic(pile="c2-p01"),
                channels.COLLECTOR_STOP.topic(charger="c1"),
                channels.COLLECTOR_FAULT.topic(
                    charger="c1", source="c1-p01", code="pile_unreachable"
                ),
                c1.pile_state.topic(pile="c1-p01"),
                c1.pile_availability.topic(pile="c1-p01"),
                c1.bridge_state.topic(),
                channels.KIOSK.topic(charger="c1"),
                channels.PILE_MAINTENANCE.topic(pile="c1-p01"),
                channels.PILE_STATUS.topic(pile="c1-p12"),
                channels.PILE_STATUS.topic(pile="c1-p13"),
                channels.STATION_PILES.topic(),
            ],
            "write": [
                channels.PILE_STATUS.topic(pile="c1-p01"),
                channels.PILE_STATUS.topic(pile="c1-p12"),
                channels.PILE_STATUS.topic(pile="c1-p13"),
                channels.PILE_METER.topic(pile="c1-p99"),
                channels.replies("console"),
                channels.COLLECTOR_STATUS.topic(charger="c1"),
                channels.COLLECTOR_BREATH.topic(charger="c1"),
                channels.COLLECTOR_FAULT.topic(
                    charger="c1", source="c1", code="zigbee_bridge_offline"
                ),
                channels.PILE_METER.topic(pile="c1-p01"),
                channels.PILE_METER.topic(pile="c1-p12"),
                channels.VERIFICATION.topic(),
                channels.SESSION_OPEN.topic(),
                channels.CHECKOUT.topic(),
                channels.SESSION_QUERY.topic(),
                channels.WITHDRAWAL.topic(),
                c1.pile_set.topic(pile="c1-p01"),
                c1.bridge_request("permit_join"),
            ],
        },
    }
    for user, needs in uses.items():
        for access, wanted in needs.items():
            for topic in wanted:
                assert may(rules, user, access, topic), f"{user} may not {access} {topic}"


def test_acl_keeps_each_service_to_its_own_part(rendered_chart: Rendered) -> None:
    rules = parse_acl(rendered_chart.secret(f"{RELEASE}-mosquitto-auth", "acl"))
    refused = {
        # Sync only relays records to central: it hears nothing on the station's bus.
        "sync": [
            ("read", channels.replies("collector-c1")),
            ("read", channels.PILE_SESSION.topic(pile="c1-p01")),
            ("read", channels.VERIFICATION.topic()),
            ("write", channels.SERVICE_STATUS.topic(service="billing")),
            ("write", channels.PILE_SESSION.topic(pile="c1-p01")),
        ],
        "faults": [
            ("write", channels.STATION_PILES.topic()),
            ("write", channels.PILE_SESSION.topic(pile="c1-p01")),
            ("write", channels.COLLECTOR_BREATH.topic(charger="c1")),
            ("write", channels.COLLECTOR_STOP.topic(charger="c1")),
            ("write", channels.SERVICE_STATUS.topic(service="billing")),
            ("read", channels.VERIFICATION.topic()),
            ("read", channels.replies("collector-c1")),
        ],
        "verification": [
            ("write", channels.PILE_SESSION.topic(pile="c1-p01")),
            ("write", channels.FAULT_BULLETIN.topic(source="c1-p01", code="pile_unreachable")),
            ("write", channels.COLLECTOR_STOP.topic(charger="c1")),
        ],
        # The console acts through the owners: it starts, stops and bills nothing itself.
        "console": [
            ("write", channels.PILE_SESSION.topic(pile="c1-p01")),
            ("write", channels.PILE_STATUS.topic(pile="c1-p01")),
            ("write", channels.COLLECTOR_STOP.topic(charger="c1")),
            ("write", channels.DEBIT.topic()),
            ("write", channels.SESSION_OPEN.topic()),
            ("write", channels.FAULT_BULLETIN.topic(source="c1-p01", code="pile_unreachable")),
            ("read", channels.VERIFICATION.topic()),
            ("read", channels.COLLECTOR_BREATH.topic(charger="c1")),
            ("read", channels.replies("collector-c1")),
            # It registers piles through the bridge API, never commands a pile.
            ("write", ZigbeeChannels.for_charger("c1").pile_set.topic(pile="c1-p01")),
            ("read", ZigbeeChannels.for_charger("c1").pile_state.topic(pile="c1-p01")),
        ],
        "billing": [
            ("write", channels.STATION_PILES.topic()),
            ("write", channels.FAULT_BULLETIN.topic(source="c1-p01", code="pile_unreachable")),
            ("write", channels.COLLECTOR_BREATH.topic(charger="c1")),
            ("write", channels.SERVICE_STATUS.topic(service="faults")),
        ],
        # A collector speaks for its own charger's piles only.
        "collector-c2": [
            ("write", channels.PILE_METER.topic(pile="c1-p01")),
            ("write", channels.PILE_TARIFF.topic(pile="c2-p01")),
            ("write", channels.COLLECTOR_STOP.topic(charger="c1")),
            ("read", channels.COLLECTOR_STOP.topic(charger="c1")),
            (
                "read",
                channels.COLLECTOR_FAULT.topic(
                    charger="c1", source="c1-p01", code="pile_unreachable"
                ),
            ),
            ("read", channels.PILE_METER.topic(pile="c2-p01")),
            ("write", channels.PILE_STATUS.topic(pile="c1-p01")),
            ("read", channels.KIOSK.topic(charger="c1")),
            ("read", channels.PILE_MAINTENANCE.topic(pile="c1-p01")),
            ("write", channels.PILE_MAINTENANCE.topic(pile="c2-p01")),
            ("write", channels.PILE_STATUS.topic(pile="c1-p13")),
            # Only the console says which piles the station has.
            ("write", channels.STATION_PILES.topic()),
        ],
    }
    for user, forbidden in refused.items():
        for access, topic in forbidden:
            assert not may(rules, user, access, topic), f"{user} may {access} {topic}"


class Client:
    """A paho MQTT v5 client that reports what the broker answered."""

    def __init__(self, port: int, user: str | None, password: str | None) -> None:
        self.connack: queue.Queue[int] = queue.Queue()
        self.acks: dict[int, queue.Queue[int]] = {}
        self.subscribed = threading.Event()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=user or "anonymous", protocol=mqtt.MQTTv5
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.on_connect = lambda _c, _u, _f, code, _p: self.connack.put(code.value)
        self.client.on_publish = lambda _c, _u, mid, code, _p: self._ack(mid).put(code.value)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = lambda _c, _u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.code = self.connack.get(timeout=5)

    def _ack(self, mid: int) -> queue.Queue[int]:
        return self.acks.setdefault(mid, queue.Queue())

    def publish(
        self, topic: str, payload: bytes = b"x", properties: Properties | None = None
    ) -> int:
        """The PUBACK reason code of a QoS 1 publish: 135 means not authorized."""
        info = self.client.publish(topic, payload, qos=1, properties=properties)
        return self._ack(info.mid).get(timeout=5)

    def subscribe(self, topic: str) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(5)

    def next_message(self) -> tuple[str, bytes]:
        return self.messages.get(timeout=5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def broker_config(rendered: Rendered, work: Path, port: int) -> Path:
    """The rendered mosquitto.conf, with the pod's paths and port moved into ``work``."""
    text = rendered.get("ConfigMap", f"{RELEASE}-mosquitto")["data"]["mosquitto.conf"]
    assert re.search(r"^listener 1883$", text, re.M)
    assert re.search(r"^allow_anonymous false$", text, re.M)
    text = re.sub(r"^listener 1883$", f"listener {port} 127.0.0.1", text, flags=re.M)
    text = text.replace("/mosquitto/auth/", f"{work}/auth/").replace(
        "/mosquitto/data/", f"{work}/data/"
    )
    path = work / "mosquitto.conf"
    path.write_text(text)
    return path


def hash_passwords(rendered: Rendered, work: Path) -> None:
    """Run the broker pod's init container script on the rendered Secret."""
    statefulset = rendered.get("StatefulSet", f"{RELEASE}-mosquitto")
    (init,) = statefulset["spec"]["template"]["spec"]["initContainers"]
    plain = work / "plain"
    plain.mkdir()
    for key in ("passwd", "acl"):
        (plain / key).write_text(rendered.secret(f"{RELEASE}-mosquitto-auth", key))
    (work / "auth").mkdir()
    (work / "data").mkdir()
    script = init["command"][2].replace("/run/station/auth/", f"{plain}/")
    script = script.replace("/mosquitto/auth/", f"{work}/auth/")
    subprocess.run(["sh", "-ec", script], check=True, timeout=30)
    assert "$7$" in (work / "auth" / "passwd").read_text()


def private_dir(prefix: str, owner: str) -> Path:
    """A directory the server's own user can reach (pytest's tmp_path is root-only under root).

    Run as root, mosquitto drops to its ``mosquitto`` user and PostgreSQL refuses to run at all,
    so their files belong to that user, as they belong to the container's user in the pod.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(path, owner, owner)
    return path


def chown_tree(path: Path, owner: str) -> None:
    if os.geteuid() == 0:
        for item in [path, *path.rglob("*")]:
            shutil.chown(item, owner, owner)


@pytest.fixture
def rendered_broker(rendered_chart: Rendered) -> Iterator[int]:
    work, port = private_dir("station-chart-mqtt-", "mosquitto"), free_port()
    hash_passwords(rendered_chart, work)
    config = broker_config(rendered_chart, work, port)
    chown_tree(work, "mosquitto")
    log = work / "mosquitto.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        assert wait_for_port(port, 10), log.read_text()
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(5)
        shutil.rmtree(work, ignore_errors=True)


def test_broker_enforces_the_rendered_passwords_and_acl(
    rendered_chart: Rendered, rendered_broker: int
) -> None:
    def password(secret: str) -> str:
        return rendered_chart.secret(f"{RELEASE}-{secret}", "broker-password")

    port = rendered_broker
    for user, secret in [(None, None), ("collector-c1", password("collector-c2"))]:
        refused = Client(port, user, secret)  # anonymous, then a wrong password
        refused.close()
        assert refused.code in (134, 135)  # bad user name or password / not authorized

    c1 = Client(port, "collector-c1", password("collector-c1"))
    c2 = Client(port, "collector-c2", password("collector-c2"))
    verification = Client(port, "verification", password("verification"))
    zigbee_c2 = Client(
        port, "zigbee2mqtt-c2", rendered_chart.secret(f"{RELEASE}-zigbee2mqtt-c2", "mqtt-password")
    )
    clients = [c1, c2, verification, zigbee_c2]
    try:
        assert [client.code for client in clients] == [0, 0, 0, 0]
        c1_pile = ZigbeeChannels.for_charger("c1").pile_set.topic(pile="c1-p01")

        assert c2.publish(channels.COLLECTOR_STATUS.topic(charger="c1")) == 135
        assert c2.publish(c1_pile) == 135
        assert (
            zigbee_c2.publish(ZigbeeChannels.for_charger("c1").pile_state.topic(pile="c1-p01"))
            == 135
        )
        assert c1.publish(channels.COLLECTOR_STATUS.topic(charger="c1")) < 128
        assert c1.publish(c1_pile) < 128
        assert c2.publish(channels.VERIFICATION.topic()) < 128

        # A reply for c1 reaches c1 only: c2 gets its own next reply, and nothing before it.
        c1.subscribe(channels.replies("collector-c1"))
        c2.subscribe(channels.replies("collector-c1"))
        c2.subscribe(channels.replies("collector-c2"))
        assert verification.publish(channels.replies("collector-c1"), b"for c1") < 128
        assert verification.publish(channels.replies("collector-c2"), b"for c2") < 128
        assert c1.next_message() == (channels.replies("collector-c1"), b"for c1")
        assert c2.next_message() == (channels.replies("collector-c2"), b"for c2")
    finally:
        for client in clients:
            client.close()


def test_broker_carries_breaths_stops_and_meters_between_the_right_users(
    rendered_chart: Rendered, rendered_broker: int
) -> None:
    def password(secret: str) -> str:
        return rendered_chart.secret(f"{RELEASE}-{secret}", "broker-password")

    port = rendered_broker
    users = ["collector-c1", "collector-c2", "faults", "billing", "sync"]
    c1, c2, faults, billing, sync = clients = [Client(port, u, password(u)) for u in users]
    try:
        assert [client.code for client in clients] == [0] * len(clients)

        # Faults takes the breaths in its shared group and answers on the collector's topic.
        faults.subscribe(shared("faults", channels.COLLECTOR_BREATH.filter()))
        c1.subscribe(channels.replies("collector-c1"))
        assert c1.publish(channels.COLLECTOR_BREATH.topic(charger="c1"), b"breath 7") < 128
        assert faults.next_message() == (channels.COLLECTOR_BREATH.topic(charger="c1"), b"breath 7")
        assert faults.publish(channels.replies("collector-c1"), b"ack 7") < 128
        assert c1.next_message() == (channels.replies("collector-c1"), b"ack 7")

        # Billing stops a charge: c1 hears its own stop, c2 only its own.
        c1.subscribe(channels.COLLECTOR_STOP.topic(charger="c1"))
        c2.subscribe(channels.COLLECTOR_STOP.topic(charger="c1"))  # refused by the ACL
        c2.subscribe(channels.COLLECTOR_STOP.topic(charger="c2"))
        assert billing.publish(channels.COLLECTOR_STOP.topic(charger="c1"), b"stop c1-p03") < 128
        assert billing.publish(channels.COLLECTOR_STOP.topic(charger="c2"), b"stop c2-p01") < 128
        assert c1.next_message() == (channels.COLLECTOR_STOP.topic(charger="c1"), b"stop c1-p03")
        assert c2.next_message() == (channels.COLLECTOR_STOP.topic(charger="c2"), b"stop c2-p01")

        # Meter readings reach billing; c2 cannot pass readings off as c1's piles.
        billing.subscribe(shared("billing", channels.PILE_METER.filter()))
        assert c2.publish(channels.PILE_METER.topic(pile="c1-p01"), b"forged") == 135
        assert c1.publish(channels.PILE_METER.topic(pile="c1-p01"), b"12.500") < 128
        assert billing.next_message() == (channels.PILE_METER.topic(pile="c1-p01"), b"12.500")

        # Sync's status reaches faults; sync writes nowhere else.
        faults.subscribe(channels.SERVICE_STATUS.filter())
        assert sync.publish(channels.PILE_SESSION.topic(pile="c1-p01")) == 135
        assert sync.publish(channels.SERVICE_STATUS.topic(service="sync"), b"online") < 128
        assert faults.next_message() == (channels.SERVICE_STATUS.topic(service="sync"), b"online")
    finally:
        for client in clients:
            client.close()


def local_service_env(
    rendered: Rendered, component: str, broker_port: int, work: Path, **settings: str
) -> tuple[dict[str, str], int]:
    """The pod's environment, with the broker, the listener and the files moved onto this
    machine (``settings`` are more, without the prefix); the credentials stay as rendered."""
    container = service_container(rendered, component)
    prefix = container["command"][2].removeprefix("station_").upper()
    env = {name: env_value(rendered, entry) or "" for name, entry in env_of(container).items()}
    port = free_port()
    moved = {
        "BROKER": f"mqtt://127.0.0.1:{broker_port}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATA_DIR": str(work),
        "LOG_LEVEL": "WARNING",
        **settings,
    }
    env.update({f"STATION_{prefix}_{name}": value for name, value in moved.items()})
    return env, port


def eventually_json(url: str, check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2)
            last = response.json() if response.status_code == 200 else response.status_code
            if response.status_code == 200 and check(last):
                return last
        except httpx.HTTPError as error:
            last = error
        time.sleep(0.1)
    raise AssertionError(f"{what}: last answer {last!r}")


def test_faults_and_sync_work_under_the_rendered_acl(
    rendered_chart: Rendered, rendered_broker: int, tmp_path: Path
) -> None:
    """The real services, with their rendered credentials, on the broker with the rendered ACL:
    faults answers a collector's breath on its reply topic, and sync's backlog fault (central
    out of reach) reaches faults, which opens it."""
    port = rendered_broker
    outbox = tmp_path / "billing.db"
    billing = create_engine(f"sqlite:///{outbox}")
    OUTBOX_METADATA.create_all(billing)
    queue_records(billing, [sample_record(record_id="r-1")], stored_at=datetime.now(UTC))
    billing.dispose()
    faults_env, faults_port = local_service_env(
        rendered_chart, "faults", port, tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/faults.db"
    )
    sync_env, sync_port = local_service_env(
        rendered_chart,
        "sync",
        port,
        tmp_path,
        DATABASE_URL=f"sqlite:///{outbox}",
        CENTRAL_URL=f"http://127.0.0.1:{free_port()}",  # nobody listens: central is away
        T2="0",
        BACKLOG_FAULT_AFTER="0",
        RETRY_MIN="0.2",
        RETRY_MAX="0.5",
    )
    faults_base, sync_base = f"http://127.0.0.1:{faults_port}", f"http://127.0.0.1:{sync_port}"
    faults = ServiceProcess(
        "faults", "station_faults", faults_env, tmp_path / "logs", f"{faults_base}/health"
    )
    sync = ServiceProcess(
        "sync", "station_sync", sync_env, tmp_path / "logs", f"{sync_base}/health"
    )
    collector = Client(
        port,
        "collector-c1",
        rendered_chart.secret(f"{RELEASE}-collector-c1", "broker-password"),
    )
    try:
        for service in (faults, sync):  # both start at once, then both must be up
            service.start(wait=0)
        for service in (faults, sync):
            service.wait_healthy(30)
        # Ready means connected to the broker with the service's own user and subscribed.
        eventually_json(f"{faults_base}/ready", bool, 30, "faults ready")
        eventually_json(f"{sync_base}/ready", bool, 30, "sync ready")

        collector.subscribe(channels.replies("collector-c1"))
        breath = CollectorBreath(charger="c1", seq=41, sent_at=datetime.now(UTC), t1=1.0)
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ResponseTopic = channels.replies("collector-c1")
        properties.CorrelationData = b"breath-41"
        code = collector.publish(
            channels.COLLECTOR_BREATH.topic(charger="c1"),
            breath.model_dump_json().encode(),
            properties,
        )
        assert code < 128
        topic, payload = collector.next_message()
        assert topic == channels.replies("collector-c1")
        assert BreathAck.model_validate_json(payload) == BreathAck(charger="c1", seq=41)

        active = eventually_json(
            f"{faults_base}/api/v1/faults",
            lambda faults: any(f["code"] == "central_sync_backlog" for f in faults),
            30,
            "sync's central_sync_backlog at faults",
        )
        assert [f["source"] for f in active if f["code"] == "central_sync_backlog"] == ["central"]
    finally:
        collector.close()
        sync.stop()
        faults.stop()


# --- PostgreSQL ----------------------------------------------------------------------------


def postgres_bin() -> Path:
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise FileNotFoundError("PostgreSQL is not installed (apt-get install -y postgresql)")
    return Path(found[-1]).parent


def as_postgres(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """initdb refuses root: run server commands as the postgres user when we are root."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def postgres() -> Iterator[tuple[int, Path]]:
    """A private PostgreSQL on a free port; passwords are checked on TCP, trusted on the socket."""
    bin_dir = postgres_bin()
    work, port = private_dir("station-chart-pg-", "postgres"), free_port()
    data = work / "data"
    as_postgres(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
        ],
        timeout=60,
    )
    options = f"-p {port} -k {work} -c listen_addresses=127.0.0.1 -c fsync=off"
    log = str(work / "postgresql.log")
    start = [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", log, "-w", "start"]
    as_postgres(start, timeout=60)
    try:
        yield port, work
    finally:
        as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(work, ignore_errors=True)


def run_database_setup(rendered: Rendered, port: int, socket_dir: Path) -> None:
    """Source the rendered init script as the postgres image does, with the pod's env."""
    script = rendered.get("ConfigMap", f"{RELEASE}-postgresql-init")["data"]
    ((name, text),) = script.items()
    statefulset = rendered.get("StatefulSet", f"{RELEASE}-postgresql")
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    env = {
        **os.environ,
        **{n: env_value(rendered, e) or "" for n, e in env_of(container).items()},
        "PGHOST": str(socket_dir),
        "PGPORT": str(port),
        "PATH": f"{postgres_bin()}:{os.environ['PATH']}",
    }
    path = socket_dir / name
    path.write_text(text)
    # The image sources *.sh files from /docker-entrypoint-initdb.d; twice changes nothing.
    for _ in range(2):
        result = subprocess.run(
            ["bash", "-ec", f"source {path}"], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr


def local_url(rendered: Rendered, service: str, port: int) -> str:
    """A service's rendered database URL, pointed at the test's server."""
    url = rendered.secret(f"{RELEASE}-{service}", "database-url")
    return re.sub(r"@[^/]+/", f"@127.0.0.1:{port}/", url)


def psycopg_engine(url: str) -> Engine:
    """An engine on a rendered ``postgresql://`` URL, with the driver the services use.

    Built from the URL object, not its string: ``str()`` of a SQLAlchemy URL masks the
    password as ``***``.
    """
    return create_engine(make_url(url).set(drivername="postgresql+psycopg"), pool_pre_ping=True)


@pytest.fixture(scope="module")
def station_database(rendered_chart: Rendered, postgres: tuple[int, Path]) -> int:
    """The test's PostgreSQL after the rendered setup ran on it (as on the pod's first start)."""
    port, socket_dir = postgres
    run_database_setup(rendered_chart, port, socket_dir)
    return port


def test_database_setup_gives_each_service_a_private_database(
    rendered_chart: Rendered, station_database: int
) -> None:
    port = station_database

    urls = {
        svc: local_url(rendered_chart, svc, port) for svc in ("verification", "billing", "faults")
    }
    for service, url in urls.items():
        with psycopg.connect(url, connect_timeout=5) as connection:
            row = connection.execute("SELECT current_user, current_database()").fetchone()
            assert row == (service, service)
            connection.execute("CREATE TABLE owned_here (id int)")
    for service in ("verification", "faults"):
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            psycopg.connect(urls[service].rsplit("/", 1)[0] + "/billing")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(re.sub(r":[^:@]+@", ":wrong-password@", urls["billing"]))


def test_sync_reads_billings_outbox_and_writes_only_its_relay_columns(
    rendered_chart: Rendered, station_database: int
) -> None:
    port = station_database
    sync_url = local_url(rendered_chart, "sync", port)
    billing = psycopg_engine(local_url(rendered_chart, "billing", port))
    relay = psycopg_engine(sync_url)
    now = datetime.now(UTC)
    try:
        # Billing starts as it does in its pod: its migrations (each CREATE TABLE fires the
        # setup's grant trigger, which must never get in their way), then its outbox rows.
        billing_package = importlib.import_module("station_billing")
        assert billing_package.__file__ is not None
        migrate(
            billing, Path(billing_package.__file__).parent / "migrations", "alembic_version_billing"
        )
        OUTBOX_METADATA.create_all(billing)
        records = [sample_record(record_id="r-1"), sample_record(record_id="r-2")]
        queue_records(billing, records, stored_at=now - timedelta(minutes=5))

        # Sync relays them with its own role: reads the due rows, marks them.
        outbox = Outbox(relay)
        assert outbox.readable()
        due = outbox.due(now, limit=10)
        assert [row.record_id for row in due] == ["r-1", "r-2"]
        outbox.mark_failed([due[0].id], "central unreachable")
        outbox.mark_sent([due[0].id], now)
        outbox.mark_refused([due[1].id], "conflict at central", now)
        backlog = outbox.backlog(now, now)
        assert (backlog.unsent, backlog.refused) == (0, 1)
        with billing.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT record_id, sent_at IS NOT NULL, attempts, refused_at IS NOT NULL"
                    " FROM billing_outbox ORDER BY id"
                )
            ).all()
        assert [tuple(row) for row in rows] == [("r-1", True, 1, False), ("r-2", False, 1, True)]
    finally:
        billing.dispose()
        relay.dispose()

    with psycopg.connect(sync_url, connect_timeout=5) as connection:
        for statement in [
            "UPDATE billing_outbox SET payload = '{}'",
            "UPDATE billing_outbox SET record_id = 'forged', sent_at = now()",
            "DELETE FROM billing_outbox",
            "INSERT INTO billing_outbox (record_id, stored_at, payload) VALUES ('x', now(), '{}')",
            "SELECT * FROM alembic_version_billing",
            "CREATE TABLE kept_by_sync (id int)",
        ]:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute(statement)
            connection.rollback()
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(sync_url.rsplit("/", 1)[0] + "/verification")


# --- Backups -------------------------------------------------------------------------------

BACKED_UP = ("verification", "billing", "faults", "console")
"""The services with a database of their own (sync's role reaches billing's)."""


def with_backups(**more: Any) -> dict[str, Any]:
    return merged(required_values(), {"backup": {"enabled": True, **more}})


@pytest.fixture(scope="module")
def backup_chart() -> Rendered:
    return render(with_backups())


def backup_job(rendered: Rendered) -> tuple[Manifest, Manifest]:
    """The CronJob and its one container."""
    cronjob = rendered.get("CronJob", f"{RELEASE}-backup")
    (container,) = pod_containers(cronjob)
    return cronjob, container


def test_backups_are_off_unless_asked_for(rendered_chart: Rendered) -> None:
    assert rendered_chart.of_kind("CronJob") == []
    assert rendered_chart.component("Secret", "backup") == []


def test_the_backup_job_runs_station_backup_into_its_volume(backup_chart: Rendered) -> None:
    cronjob, container = backup_job(backup_chart)
    assert cronjob["spec"]["schedule"] == "17 3 * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert (
        container["image"]
        == backup_chart.get("Deployment", f"{RELEASE}-billing")["spec"]["template"]["spec"][
            "containers"
        ][0]["image"]
    )
    command = container["command"]
    assert command[:2] == ["station", "backup"]
    args = build_parser().parse_args(command[1:])
    assert (args.out_dir, args.keep, args.station_id) == (Path("/backups"), 7, "station-1")

    pod = pod_template(cronjob)["spec"]
    assert pod["restartPolicy"] == "Never"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = volumes["backups"]["persistentVolumeClaim"]["claimName"]
    assert mounts["backups"] == "/backups"
    pvc = backup_chart.get("PersistentVolumeClaim", claim)
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"


def test_the_backup_job_reads_every_service_database_as_the_service_does(
    backup_chart: Rendered,
) -> None:
    """Its environment names each service's own database URL, which is what ``station backup``
    reads (as the service itself would): PostgreSQL for all four, nothing for sync."""
    _, container = backup_job(backup_chart)
    env = {name: env_value(backup_chart, entry) or "" for name, entry in env_of(container).items()}
    assert set(env) == {f"STATION_{service.upper()}_DATABASE_URL" for service in BACKED_UP}
    for service in BACKED_UP:
        own = backup_chart.secret(f"{RELEASE}-{service}", "database-url")
        assert env[f"STATION_{service.upper()}_DATABASE_URL"] == own
    found = {source.service: source for source in backups.sources(Path("/x"), env)}
    assert set(found) == set(BACKED_UP)
    assert all(source.engine == "postgresql" for source in found.values())


def test_the_backup_pod_is_unprivileged_reaches_only_postgresql_and_holds_one_secret(
    backup_chart: Rendered,
) -> None:
    assert_unprivileged("backup", backup_chart)
    assert_own_credentials_only(backup_chart)
    cronjob, _ = backup_job(backup_chart)
    labels = pod_template(cronjob)["metadata"]["labels"]
    policies = {p["metadata"]["name"]: p["spec"] for p in backup_chart.of_kind("NetworkPolicy")}

    def admitted(policy: str) -> bool:
        return any(
            "podSelector" in peer and labels_match(peer["podSelector"]["matchLabels"], labels)
            for rule in policies[f"{RELEASE}-{policy}"]["ingress"]
            for peer in rule["from"]
        )

    assert admitted("postgresql")
    assert not admitted("mosquitto")


def test_the_backups_go_to_a_claim_of_ones_own_when_named() -> None:
    rendered = render(
        with_backups(keep=30, schedule="@hourly", persistence={"existingClaim": "nas"})
    )
    cronjob, container = backup_job(rendered)
    volumes = {v["name"]: v for v in pod_template(cronjob)["spec"]["volumes"]}
    assert volumes["backups"]["persistentVolumeClaim"]["claimName"] == "nas"
    assert rendered.component("PersistentVolumeClaim", "backup") == []
    assert container["command"][container["command"].index("--keep") + 1] == "30"
    assert cronjob["spec"]["schedule"] == "@hourly"


@pytest.mark.parametrize(
    ("backup", "complaint"),
    [({"keep": 0}, "keep"), ({"schedule": "daily"}, "schedule"), ({"colour": "red"}, "colour")],
)
def test_values_schema_refuses_a_bad_backup_setting(backup: dict[str, Any], complaint: str) -> None:
    with pytest.raises(helm_python.HelmError) as failure:
        render(with_backups(**backup))
    assert complaint in str(failure.value)


def test_the_rendered_backup_job_backs_up_and_restores_the_station_databases(
    backup_chart: Rendered,
    station_database: int,
    postgres: tuple[int, Path],
    tmp_path: Path,
) -> None:
    """The job's own command and environment against the rendered database setup: each
    service's role dumps its database; restored into databases the setup made afresh, the
    rows come back and billing's outbox is readable by sync's role again (the setup's grant
    trigger, which the dump leaves out, fires as the restore creates the table)."""
    port, socket_dir = station_database, postgres[1]
    _, container = backup_job(backup_chart)
    env = {
        name: re.sub(r"@[^/]+/", f"@127.0.0.1:{port}/", env_value(backup_chart, entry) or "")
        for name, entry in env_of(container).items()
    }
    urls = {service: env[f"STATION_{service.upper()}_DATABASE_URL"] for service in BACKED_UP}
    for service, url in urls.items():
        engine = psycopg_engine(url)
        try:
            migrate(engine, backups.migrations_folder(service), f"alembic_version_{service}")
            if service == "billing":
                queue_records(engine, [sample_record(record_id=f"kept-{i}") for i in range(3)])
        finally:
            engine.dispose()
    with psycopg.connect(urls["billing"]) as connection:
        held = connection.execute("SELECT count(*) FROM billing_outbox").fetchone()
    assert held is not None

    command = container["command"]
    command[command.index("--out-dir") + 1] = str(tmp_path / "backups")
    command[command.index("--data-dir") + 1] = str(tmp_path / "data")
    run_env = {**os.environ, **env, "PATH": f"{postgres_bin()}:{os.environ['PATH']}"}
    taken = subprocess.run(
        [sys.executable, "-m", "station_tools.cli", *command[1:]],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert taken.returncode == 0, taken.stderr
    (archive,) = (tmp_path / "backups").iterdir()
    manifest = backups.verify(archive)
    assert {e.service: e.engine for e in manifest.databases} == dict.fromkeys(
        BACKED_UP, "postgresql"
    )

    # The databases are lost; the setup makes them afresh (empty), as on a new cluster.
    for service in BACKED_UP:
        as_postgres(
            [
                str(postgres_bin() / "psql"),
                "-h", str(socket_dir), "-p", str(port), "-U", "postgres",
                "-c", f'DROP DATABASE "{service}" WITH (FORCE)',
            ]
        )  # fmt: skip
    run_database_setup(backup_chart, port, socket_dir)
    put = subprocess.run(
        [sys.executable, "-m", "station_tools.cli", "restore", "--data-dir",
         str(tmp_path / "restored"), "--from", str(archive)],
        env=run_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert put.returncode == 0, put.stderr
    with psycopg.connect(urls["billing"]) as connection:
        again = connection.execute("SELECT count(*) FROM billing_outbox").fetchone()
        owner = connection.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'billing_outbox'"
        ).fetchone()
    assert again == held and owner == ("billing",)
    relay = psycopg_engine(local_url(backup_chart, "sync", port))
    try:
        assert Outbox(relay).readable()
    finally:
        relay.dispose()


# --- Central (charts/central, off-site) ----------------------------------------------------

CENTRAL_RELEASE = "central"
ADMIN_TOKEN = "central-admin-token-0001"


def central_required_values() -> dict[str, Any]:
    """The least central needs: its admin token and its database passwords."""
    return {
        "central": {"adminToken": ADMIN_TOKEN},
        "postgresql": {
            "auth": {
                "postgresPassword": "central-postgres-pw",
                "password": "central+db/pw&x:1",
                "replicationPassword": "replication-pw-01",
            }
        },
    }


def render_central(values: dict[str, Any]) -> Rendered:
    return render(values, CENTRAL_CHART, CENTRAL_RELEASE)


@pytest.fixture(scope="module")
def central_variants() -> dict[str, Rendered]:
    required = central_required_values()
    external = merged(
        required,
        {
            "postgresql": {"enabled": False},
            "externalDatabase": {"url": "postgresql://central:pw@db.example:5432/central"},
            "networkPolicy": {"enabled": False},
            "serviceMonitor": {"enabled": False},
        },
    )
    del external["postgresql"]["auth"]
    return {
        "default": render_central(required),
        "everything on": render_central(
            merged(
                required,
                {
                    "central": {"replicas": 2, "env": {"MAX_PAGE": "500"}},
                    "image": {"digest": "sha256:" + "cd" * 32},
                    "ingress": {
                        "enabled": True,
                        "className": "nginx",
                        "host": "central.example.com",
                        "tlsSecretName": "central-tls",
                    },
                    "postgresql": {
                        "standby": {"antiAffinity": "required"},
                        "primary": {"persistence": {"enabled": False}},
                    },
                },
            )
        ),
        "promoted": render_central(
            merged(required, {"postgresql": {"standby": {"promoted": True}}})
        ),
        "everything off": render_central(external),
    }


def central_container(rendered: Rendered) -> Manifest:
    deployment = rendered.get("Deployment", CENTRAL_RELEASE)
    containers: list[Manifest] = deployment["spec"]["template"]["spec"]["containers"]
    (container,) = containers
    return container


def test_central_chart_lints_without_errors_or_warnings() -> None:
    report = helm_python.lint(
        CENTRAL_CHART, central_required_values(), strict=True, namespace=NAMESPACE
    )

    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize(
    "key",
    [
        "central.adminToken",
        "postgresql.auth.postgresPassword",
        "postgresql.auth.password",
        "postgresql.auth.replicationPassword",
    ],
)
def test_central_without_a_secret_fails_naming_it(key: str) -> None:
    values = central_required_values()
    *path, leaf = key.split(".")
    node = values
    for part in path:
        node = node[part]
    del node[leaf]

    with pytest.raises(helm_python.HelmError) as failure:
        render_central(values)

    assert f"{key} is required" in str(failure.value)


def test_central_refuses_a_weak_admin_token_and_needs_no_replication_without_a_standby() -> None:
    weak = merged(central_required_values(), {"central": {"adminToken": "admin-token"}})
    with pytest.raises(helm_python.HelmError) as failure:
        render_central(weak)
    assert "central.adminToken is too short" in str(failure.value)

    alone = central_required_values()
    del alone["postgresql"]["auth"]["replicationPassword"]
    rendered = render_central(merged(alone, {"postgresql": {"standby": {"enabled": False}}}))
    assert [s["metadata"]["name"] for s in rendered.of_kind("StatefulSet")] == [
        f"{CENTRAL_RELEASE}-postgresql"
    ]

    external = merged(central_required_values(), {"postgresql": {"enabled": False}})
    with pytest.raises(helm_python.HelmError) as failure:
        render_central(external)
    assert "externalDatabase.url is required when postgresql.enabled is false" in str(failure.value)


def test_central_manifests_pass_strict_kubernetes_validation(
    central_variants: dict[str, Rendered], tmp_path: Path
) -> None:
    assert_strictly_valid(central_variants, tmp_path)

    kinds = {doc["kind"] for doc in central_variants["default"].docs}
    assert {
        "Deployment",
        "StatefulSet",
        "Service",
        "Secret",
        "ConfigMap",
        "NetworkPolicy",
        "ServiceAccount",
        "ServiceMonitor",
    } <= kinds
    assert central_variants["everything on"].of_kind("Ingress")


def test_central_accepts_the_environment_rendered_for_it(
    central_variants: dict[str, Rendered], monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts = {
        "default": f"{CENTRAL_RELEASE}-postgresql",
        "promoted": f"{CENTRAL_RELEASE}-postgresql-standby",
        "everything off": "db.example",
    }
    for variant, host in hosts.items():
        rendered = central_variants[variant]
        container = central_container(rendered)

        settings = load_settings(rendered, container, monkeypatch)

        (port,) = container["ports"]
        assert settings.port == port["containerPort"] == 8110
        assert settings.admin_token.get_secret_value() == ADMIN_TOKEN
        database = settings.database_url
        assert (database.host, database.database, database.username) == (
            host,
            "central",
            "central",
        )
        # Central speaks HTTP only: no broker settings at all.
        assert not [name for name in env_of(container) if "BROKER" in name]
        if variant != "everything off":  # the chart's own pair: central follows the writable
            assert settings.database_hosts == (
                f"{CENTRAL_RELEASE}-postgresql:5432",
                f"{CENTRAL_RELEASE}-postgresql-standby:5432",
            )
            assert settings.standby_name == "standby"
        assert settings.replication.value == "async"
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    password = psycopg.conninfo.conninfo_to_dict(
        central_variants["default"].secret(CENTRAL_RELEASE, "database-url")
    )["password"]
    assert password == "central+db/pw&x:1"


def test_central_pods_run_unprivileged_holding_their_own_credentials_only(
    central_variants: dict[str, Rendered],
) -> None:
    for variant, rendered in central_variants.items():
        assert_unprivileged(variant, rendered)
        assert_own_credentials_only(rendered)
    # The standby holds the replication password and nothing else.
    default = central_variants["default"]
    standby = default.get("Secret", f"{CENTRAL_RELEASE}-postgresql-standby")
    assert set(standby["stringData"]) == {"replication-password"}
    affinity = default.get("StatefulSet", f"{CENTRAL_RELEASE}-postgresql-standby")["spec"][
        "template"
    ]["spec"]["affinity"]["podAntiAffinity"]
    assert "preferredDuringSchedulingIgnoredDuringExecution" in affinity
    required = central_variants["everything on"].get(
        "StatefulSet", f"{CENTRAL_RELEASE}-postgresql-standby"
    )["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    (term,) = required["requiredDuringSchedulingIgnoredDuringExecution"]
    primary = default.get("StatefulSet", f"{CENTRAL_RELEASE}-postgresql")
    assert labels_match(
        term["labelSelector"]["matchLabels"], primary["spec"]["template"]["metadata"]["labels"]
    )


def test_central_replication_alerts_load_in_prometheus_and_fire(tmp_path: Path) -> None:
    rendered = render_central(
        merged(
            central_required_values(),
            {"central": {"replication": "sync"}, "prometheusRule": {"lagAlertSeconds": 10}},
        )
    )
    (rule,) = rendered.of_kind("PrometheusRule")
    jsonschema.validate(rule, PROMETHEUS_RULE)
    env = {e["name"]: e.get("value") for e in central_container(rendered)["env"]}
    assert env["STATION_CENTRAL_REPLICATION"] == "sync"
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(rule["spec"]))
    checked = subprocess.run(
        [tool("promtool"), "check", "rules", str(rules)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The standby goes away at minute 5 and the lag rises above 10 s at minute 20.
    tests: dict[str, Any] = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": "station_central_standby_connected", "values": "1x4 0x10 1x20"},
                    {
                        "series": "station_central_replication_synchronous",
                        "values": "1x4 0x10 1x20",
                    },
                    {"series": "station_central_replication_sync_configured", "values": "1x35"},
                    {"series": "station_central_replication_lag_seconds", "values": "0x19 30x15"},
                ],
                "alert_rule_test": [
                    {"eval_time": "4m", "alertname": "CentralStandbyMissing", "exp_alerts": []},
                    {
                        "eval_time": "8m",
                        "alertname": "CentralStandbyMissing",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "critical",
                                    "code": "central_standby_missing",
                                }
                            }
                        ],
                    },
                    {
                        "eval_time": "12m",
                        "alertname": "CentralReplicationNotSynchronous",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "major",
                                    "code": "central_replication_degraded",
                                }
                            }
                        ],
                    },
                    {
                        "eval_time": "18m",
                        "alertname": "CentralReplicationLagHigh",
                        "exp_alerts": [],
                    },
                    {
                        "eval_time": "26m",
                        "alertname": "CentralReplicationLagHigh",
                        "exp_alerts": [
                            {"exp_labels": {"severity": "major", "code": "central_replication_lag"}}
                        ],
                    },
                ],
            }
        ],
    }
    annotations = {
        alert["alert"]: {
            **alert["annotations"],
            "summary": alert["annotations"]["summary"].replace(
                "{{ $value | humanizeDuration }}", "30s"
            ),
        }
        for alert in alert_rules(rendered)
    }
    for case in tests["tests"][0]["alert_rule_test"]:
        for expected in case["exp_alerts"]:
            expected["exp_annotations"] = annotations[case["alertname"]]
    unit = tmp_path / "tests.yaml"
    unit.write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [tool("promtool"), "test", "rules", str(unit)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_central_is_scraped_and_fenced(central_variants: dict[str, Rendered]) -> None:
    default = central_variants["default"]
    (monitor,) = default.of_kind("ServiceMonitor")
    jsonschema.validate(monitor, SERVICE_MONITOR)
    service = default.get("Service", CENTRAL_RELEASE)
    assert labels_match(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]

    def pods(rendered: Rendered) -> dict[str, dict[str, str]]:
        return {
            w["metadata"]["labels"]["app.kubernetes.io/component"]: w["spec"]["template"][
                "metadata"
            ]["labels"]
            for w in rendered.workloads()
        }

    def admitted(rendered: Rendered) -> set[tuple[str, str]]:
        """(client, server) pairs of the release's pods the policies let through."""
        found = set()
        labels = pods(rendered)
        for policy in rendered.of_kind("NetworkPolicy"):
            spec = policy["spec"]
            servers = [
                component
                for component, pod_labels in labels.items()
                if labels_match(spec["podSelector"]["matchLabels"], pod_labels)
            ]
            for rule in spec.get("ingress", []):
                for peer in rule["from"]:
                    if "podSelector" not in peer:
                        continue
                    for client, client_labels in labels.items():
                        if labels_match(peer["podSelector"]["matchLabels"], client_labels):
                            found |= {(client, server) for server in servers}
        return found

    assert admitted(default) == {
        ("central", "postgresql-primary"),
        ("postgresql-standby", "postgresql-primary"),
    }
    assert admitted(central_variants["promoted"]) == {("central", "postgresql-standby")}
    http = default.get("NetworkPolicy", f"{CENTRAL_RELEASE}-http")["spec"]["ingress"][0]["from"]
    namespaces = {
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in http
    }
    assert namespaces == {"ingress-nginx", "monitoring"}


@dataclass
class Server:
    """A PostgreSQL of the test, started from the rendered container's arguments."""

    process: subprocess.Popen[bytes]
    port: int
    data: Path
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def as_server_user() -> dict[str, Any]:
    return (
        {"user": "postgres", "group": "postgres", "extra_groups": []} if os.geteuid() == 0 else {}
    )


def wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except (psycopg.OperationalError, psycopg.errors.UndefinedTable):
            pass  # not up yet, or the table not streamed yet
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def serve(statefulset: Manifest, data: Path, work: Path, env: dict[str, str]) -> Server:
    """Start ``postgres`` with the container's own ``-c`` arguments (hba_file moved to ``work``)."""
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[0] == "postgres"
    settings = [a.replace("/etc/station/postgresql/", f"{work}/") for a in args[1:]]
    port, log = free_port(), work / f"{data.name}.log"
    command = [str(postgres_bin() / "postgres"), "-D", str(data), "-p", str(port)]
    command += ["-k", str(work), "-c", "listen_addresses=127.0.0.1", *settings]
    command += ["-c", "fsync=off"]  # the test's own speed-up; nothing to do with the copy
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
            **as_server_user(),
        )
    server = Server(process, port, data, log)

    def answers() -> bool:
        assert process.poll() is None, log.read_text()
        psycopg.connect(host=str(work), port=port, user="postgres", dbname="postgres").close()
        return True

    wait_until(
        answers,
        30,
        f"postgres on {port}: {log}",
    )
    return server


def pod_env(rendered: Rendered, container: Manifest) -> dict[str, str]:
    return {name: env_value(rendered, entry) or "" for name, entry in env_of(container).items()}


def test_central_standby_keeps_a_real_time_copy_of_the_primary(
    central_variants: dict[str, Rendered],
) -> None:
    rendered = central_variants["default"]
    primary_set = rendered.get("StatefulSet", f"{CENTRAL_RELEASE}-postgresql")
    standby_set = rendered.get("StatefulSet", f"{CENTRAL_RELEASE}-postgresql-standby")
    config = rendered.get("ConfigMap", f"{CENTRAL_RELEASE}-postgresql")["data"]
    work = private_dir("central-chart-pg-", "postgres")
    (work / "pg_hba.conf").write_text(config["pg_hba.conf"])
    chown_tree(work, "postgres")
    servers: list[Server] = []
    try:
        # The primary: initdb as the image does, the rendered settings, the rendered setup.
        as_postgres(
            [
                str(postgres_bin() / "initdb"),
                *("-D", str(work / "primary"), "-U", "postgres"),
                *("--auth-local=trust", "--no-sync"),
            ],
            timeout=60,
        )
        (primary_container,) = primary_set["spec"]["template"]["spec"]["containers"]
        primary = serve(primary_set, work / "primary", work, {})
        servers.append(primary)
        setup = work / "10-central.sh"
        setup.write_text(config["10-central.sh"])
        result = subprocess.run(
            ["bash", "-e", str(setup)],
            env={
                **os.environ,
                **pod_env(rendered, primary_container),
                "PGHOST": str(work),
                "PGPORT": str(primary.port),
                "PATH": f"{postgres_bin()}:{os.environ['PATH']}",
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr

        # The standby's init container clones the primary, with the standby pod's own env.
        (clone,) = standby_set["spec"]["template"]["spec"]["initContainers"]
        (standby_container,) = standby_set["spec"]["template"]["spec"]["containers"]
        (work / "standby").mkdir()
        chown_tree(work / "standby", "postgres")
        script = work / "clone-primary.sh"
        script.write_text(config["clone-primary.sh"])
        clone_env = {
            **os.environ,
            **pod_env(rendered, clone),
            "PGDATA": str(work / "standby" / "pgdata"),
            "PRIMARY_HOST": "127.0.0.1",
            "PRIMARY_PORT": str(primary.port),
            "PATH": f"{postgres_bin()}:{os.environ['PATH']}",
        }
        for attempt in ("clone", "restart"):  # on a restart, the copy is left as it is
            result = subprocess.run(
                ["sh", str(script)],
                env=clone_env,
                capture_output=True,
                text=True,
                timeout=60,
                **as_server_user(),
            )
            assert result.returncode == 0, f"{attempt}: {result.stderr}"
        assert "streaming resumes" in result.stdout
        assert (work / "standby" / "pgdata" / "standby.signal").is_file()
        # The copy keeps no password: the WAL receiver takes it from the standby's Secret.
        recovery = (work / "standby" / "pgdata" / "postgresql.auto.conf").read_text()
        assert clone_env["PGPASSWORD"] not in recovery
        assert "primary_slot_name = 'standby'" in recovery
        standby = serve(
            standby_set, work / "standby" / "pgdata", work, pod_env(rendered, standby_container)
        )
        servers.append(standby)

        # Central's role, with the rendered URL, writes on the primary...
        url = re.sub(
            r"@[^/]+/",
            f"@127.0.0.1:{primary.port}/",
            rendered.secret(CENTRAL_RELEASE, "database-url"),
        )
        with psycopg.connect(url, autocommit=True) as central:
            central.execute("CREATE TABLE copy_check (id int PRIMARY KEY, note text)")
            central.execute("INSERT INTO copy_check VALUES (1, 'record 1')")

        # ...and the standby has it at once, streaming through its slot, read-only.
        def on_standby(sql: str) -> list[tuple[Any, ...]]:
            with psycopg.connect(
                host=str(work), port=standby.port, user="postgres", dbname="central"
            ) as connection:
                return connection.execute(sql).fetchall()

        assert wait_until(
            lambda: on_standby("SELECT note FROM copy_check") == [("record 1",)], 10, "the copy"
        )
        assert on_standby("SELECT pg_is_in_recovery()") == [(True,)]
        with psycopg.connect(host=str(work), port=primary.port, user="postgres") as admin:
            slots = admin.execute("SELECT slot_name, active FROM pg_replication_slots").fetchall()
            senders = admin.execute(
                "SELECT usename, application_name, state FROM pg_stat_replication"
            ).fetchall()
        assert slots == [("standby", True)]
        assert senders == [("replicator", "standby", "streaming")]
        standby_url = re.sub(r"@[^/]+/", f"@127.0.0.1:{standby.port}/", url)
        with (
            psycopg.connect(standby_url) as copy,
            pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
        ):
            copy.execute("INSERT INTO copy_check VALUES (2, 'not here')")

        # Nobody else gets in over the network: not the superuser, not the replication role
        # into a database, not a wrong password.
        primary_env = pod_env(rendered, primary_container)
        refused = [
            ("postgres", primary_env["POSTGRES_PASSWORD"], "central", "no pg_hba.conf entry"),
            ("replicator", primary_env["REPLICATION_PASSWORD"], "central", "no pg_hba.conf entry"),
            ("central", "wrong-password-1", "central", "password authentication failed"),
            ("central", primary_env["CENTRAL_DB_PASSWORD"], "postgres", "no pg_hba.conf entry"),
        ]
        for user, password, dbname, complaint in refused:
            with pytest.raises(psycopg.OperationalError, match=complaint):
                psycopg.connect(
                    host="127.0.0.1",
                    port=primary.port,
                    user=user,
                    password=password,
                    dbname=dbname,
                    connect_timeout=5,
                )
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


# --- Skaffold ------------------------------------------------------------------------------


def leaves(tree: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in tree.items():
        path = f"{prefix}{key}"
        keys |= leaves(value, f"{path}.") if isinstance(value, dict) else {path}
    return keys


def assert_values_of(chart_dir: Path, keys: set[str]) -> None:
    defaults = yaml.safe_load((chart_dir / "values.yaml").read_text())
    for key in keys:
        node: Any = defaults
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"{key} is no value of {chart_dir}"
            node = node[part]


def test_skaffold_builds_the_dockerfile_and_deploys_the_chart() -> None:
    config = yaml.safe_load((REPO / "skaffold.yaml").read_text())

    assert config["apiVersion"].startswith("skaffold/v4")
    (artifact,) = config["build"]["artifacts"]
    dockerfile = REPO / artifact.get("context", ".") / artifact["docker"]["dockerfile"]
    assert dockerfile.is_file()
    assert "uv sync --frozen --no-dev" in dockerfile.read_text()

    (release,) = config["deploy"]["helm"]["releases"]
    assert (REPO / release["chartPath"]).resolve() == CHART
    assert (CHART / "Chart.yaml").is_file()

    templates = release["setValueTemplates"]
    image = artifact["image"]
    assert templates["image.repository"] == f"{{{{.IMAGE_REPO_{image}}}}}"
    assert templates["image.tag"] == f"{{{{.IMAGE_TAG_{image}}}}}"
    assert_values_of(CHART, set(templates))

    # Every password the chart requires comes from the environment on `skaffold run`.
    assert leaves(required_values()) <= set(templates)


def test_skaffold_deploys_central_with_its_profile_from_the_same_image() -> None:
    config = yaml.safe_load((REPO / "skaffold.yaml").read_text())
    (artifact,) = config["build"]["artifacts"]
    image = artifact["image"]

    (profile,) = [p for p in config["profiles"] if p["name"] == "central"]
    # The profile's deploy section replaces the station's: central runs in its own cluster.
    (release,) = profile["deploy"]["helm"]["releases"]
    assert (REPO / release["chartPath"]).resolve() == CENTRAL_CHART
    assert release["namespace"] != config["deploy"]["helm"]["releases"][0]["namespace"]
    templates = release["setValueTemplates"]
    assert templates["image.repository"] == f"{{{{.IMAGE_REPO_{image}}}}}"
    assert templates["image.tag"] == f"{{{{.IMAGE_TAG_{image}}}}}"
    assert_values_of(CENTRAL_CHART, set(templates))
    assert leaves(central_required_values()) <= set(templates)
    # The station release is still the default deployment.
    (station,) = config["deploy"]["helm"]["releases"]
    assert (REPO / station["chartPath"]).resolve() == CHART
