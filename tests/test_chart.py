"""The Helm chart and skaffold.yaml, checked offline but against real parts.

There is no cluster here, so each part of the deployment is checked by the thing that will
read it: the Helm engine renders and lints the chart, the Kubernetes API schemas
(kubernetes-validate --strict) check the manifests, a real mosquitto loads the rendered
passwords and ACL, a real PostgreSQL runs the rendered database setup, and each service's own
settings class loads the environment rendered for it.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from glob import glob
from pathlib import Path
from typing import Any

import helm_python
import jsonschema  # type: ignore[import-untyped]
import paho.mqtt.client as mqtt
import psycopg
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from pydantic_settings import BaseSettings

from station_protocol.topics import StationTopics, ZigbeeTopics
from station_tools.mosquitto import mosquitto_binary
from station_tools.ports import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "station"
RELEASE = "station"
NAMESPACE = "edge"
CRD_KINDS = {"ServiceMonitor"}
RESERVED = ("faults", "sync", "display")

Manifest = dict[str, Any]


def required_values() -> dict[str, Any]:
    """The least a station needs: every password the chart insists on."""
    return {
        "mqtt": {
            "passwords": {
                "verification": "verification-broker-pw",
                "billing": "billing-broker-pw-01",
                "chargers": "seed-of-the-chargers",
            }
        },
        "postgresql": {
            "auth": {
                "postgresPassword": "postgres-super-pw",
                "passwords": {
                    "verification": "verification-db-pw",
                    "billing": "billing+db/pw&more",
                },
            }
        },
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
    """Reserved services on, USB coordinators mounted, one charger placed on its own node."""
    return merged(
        required_values(),
        {
            "chargers": 2,
            "services": {name: {"enabled": True} for name in RESERVED},
            "mqtt": {"passwords": {name: f"{name}-broker-password" for name in RESERVED}},
            "postgresql": {"auth": {"passwords": {"faults": "faults-db-password"}}},
            "zigbee2mqtt": {"serial": {"hostDevice": {"enabled": True}}},
            "perCharger": {
                "c2": {
                    "serialPort": "/dev/ttyACM0",
                    "nodeSelector": {"kubernetes.io/hostname": "cabinet-2"},
                }
            },
            "image": {"digest": "sha256:" + "ab" * 32},
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
                }
            },
            "zigbee2mqtt": {"enabled": False},
            "networkPolicy": {"enabled": False},
            "serviceMonitor": {"enabled": False},
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
        return [doc for doc in self.docs if doc["kind"] in ("Deployment", "StatefulSet")]

    def component(self, kind: str, component: str) -> list[Manifest]:
        return [
            doc
            for doc in self.of_kind(kind)
            if doc["metadata"]["labels"].get("app.kubernetes.io/component") == component
        ]


def render(values: dict[str, Any]) -> Rendered:
    chart = helm_python.Chart.load(CHART)
    files = chart.render(values=values, name=RELEASE, namespace=NAMESPACE)
    docs: list[Manifest] = []
    for path, text in sorted(files.items()):
        if path.endswith(".yaml"):
            docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
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


def pod_containers(workload: Manifest) -> list[Manifest]:
    spec = workload["spec"]["template"]["spec"]
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


@pytest.mark.parametrize("name", ["verification", "billing", "chargers"])
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


def test_values_schema_refuses_a_station_without_chargers() -> None:
    with pytest.raises(helm_python.HelmError) as failure:
        render(merged(required_values(), {"chargers": 0}))

    assert "chargers" in str(failure.value)


# --- Kubernetes schemas --------------------------------------------------------------------


def test_every_manifest_passes_strict_kubernetes_validation(
    variants: dict[str, Rendered], tmp_path: Path
) -> None:
    files: list[str] = []
    for variant, rendered in variants.items():
        for index, doc in enumerate(rendered.docs):
            if doc["kind"] in CRD_KINDS:
                continue
            path = tmp_path / f"{variant.replace(' ', '-')}-{index:03d}-{doc['kind']}.yaml"
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
    assert sorted(bridges) == sorted(ZigbeeTopics.for_charger(c).base for c in expected)
    assert len(rendered.component("Deployment", "zigbee2mqtt")) == chargers


def test_reserved_services_are_off_until_enabled(variants: dict[str, Rendered]) -> None:
    def deployed(rendered: Rendered) -> set[str]:
        return {
            doc["metadata"]["labels"]["app.kubernetes.io/component"]
            for doc in rendered.of_kind("Deployment")
        }

    assert deployed(variants["default"]) == {"verification", "billing", "collector", "zigbee2mqtt"}
    assert set(RESERVED) <= deployed(variants["everything on"])
    ports = {
        doc["metadata"]["name"]: doc["spec"]["ports"][0]["port"]
        for doc in variants["everything on"].of_kind("Service")
    }
    assert ports[f"{RELEASE}-faults"] == 8103
    assert ports[f"{RELEASE}-sync"] == 8104
    assert ports[f"{RELEASE}-display"] == 8100


def test_the_station_image_is_pinned_by_digest_when_one_is_given(
    variants: dict[str, Rendered],
) -> None:
    def images(rendered: Rendered) -> set[str]:
        return {container["image"] for _, container in station_containers(rendered)}

    assert images(variants["default"]) == {"station:0.1.0"}
    assert images(variants["everything on"]) == {"station:0.1.0@sha256:" + "ab" * 32}


# --- Services' own settings ----------------------------------------------------------------


def test_each_service_accepts_the_environment_rendered_for_it(
    rendered_chart: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = set()
    for _, container in station_containers(rendered_chart):
        module = container["command"][2]
        assert importlib.util.find_spec(f"{module}.__main__") is not None, module
        settings_class = importlib.import_module(f"{module}.core.config").Settings
        assert issubclass(settings_class, BaseSettings)
        prefix = settings_class.model_config["env_prefix"]
        env = {name: env_value(rendered_chart, entry) for name, entry in env_of(container).items()}
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
            settings = settings_class()
        (port,) = container["ports"]
        assert settings.port == port["containerPort"]
        assert settings.secure is True
        assert settings.broker == f"mqtt://{RELEASE}-mosquitto:1883"
        checked.add(module)
    assert checked == {"station_verification", "station_billing", "station_collector"}


# --- Security ------------------------------------------------------------------------------


def test_pods_run_unprivileged_with_limits_and_health_probes(
    variants: dict[str, Rendered],
) -> None:
    for variant, rendered in variants.items():
        for workload in rendered.workloads():
            name = f"{variant}: {workload['metadata']['name']}"
            pod = workload["spec"]["template"]["spec"]
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
    privileged = [
        container["name"]
        for workload in variants["everything on"].workloads()
        for container in pod_containers(workload)
        if container["securityContext"].get("privileged")
    ]
    assert privileged == ["zigbee2mqtt", "zigbee2mqtt"]


def test_each_pod_holds_only_its_own_credentials(rendered_chart: Rendered) -> None:
    for workload in rendered_chart.workloads():
        secrets = {
            entry["valueFrom"]["secretKeyRef"]["name"]
            for container in pod_containers(workload)
            for entry in container.get("env", [])
            if "secretKeyRef" in entry.get("valueFrom", {})
        }
        volumes = {
            volume["secret"]["secretName"]
            for volume in workload["spec"]["template"]["spec"].get("volumes", [])
            if "secret" in volume
        }
        assert len(secrets | volumes) <= 1, workload["metadata"]["name"]


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
        labels = workload["spec"]["template"]["metadata"]["labels"]
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
    c1, c2 = ZigbeeTopics.for_charger("c1"), ZigbeeTopics.for_charger("c2")
    c1_topics = [
        StationTopics.collector_status("c1"),
        StationTopics.collector_breath("c1"),
        c1.pile_set("c1-p01"),
        c1.bridge_request("permit_join"),
        c1.pile("c1-p01"),
    ]

    for topic in c1_topics:
        assert not may(rules, "collector-c2", "write", topic), topic
        assert not may(rules, "zigbee2mqtt-c2", "write", topic), topic
        assert may(rules, "collector-c1", "write", topic), topic
    assert not may(rules, "collector-c2", "read", StationTopics.replies("collector-c1"))
    assert not may(rules, "collector-c2", "read", c1.pile("c1-p01"))
    assert not may(rules, "collector-c2", "write", StationTopics.replies("collector-c1"))
    assert not may(rules, "collector-c2", "write", StationTopics.pile_session("c1-p01"))

    # What c2 does need still works.
    for topic in [
        StationTopics.collector_status("c2"),
        c2.pile_set("c2-p01"),
        StationTopics.verification_requests(),
        StationTopics.session_open_requests(),
        StationTopics.checkout_requests(),
    ]:
        assert may(rules, "collector-c2", "write", topic), topic
    for topic in [StationTopics.replies("collector-c2"), c2.pile("c2-p01")]:
        assert may(rules, "collector-c2", "read", topic), topic
    assert may(rules, "collector-c2", "read", StationTopics.pile_session("c2-p01"))

    # Every user with a password has rules, and nobody has rules without a password.
    users = {
        line.split(":", 1)[0]
        for line in rendered_chart.secret(f"{RELEASE}-mosquitto-auth", "passwd").splitlines()
    }
    assert users == set(rules)


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

    def publish(self, topic: str, payload: bytes = b"x") -> int:
        """The PUBACK reason code of a QoS 1 publish: 135 means not authorized."""
        info = self.client.publish(topic, payload, qos=1)
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
        c1_pile = ZigbeeTopics.for_charger("c1").pile_set("c1-p01")

        assert c2.publish(StationTopics.collector_status("c1")) == 135
        assert c2.publish(c1_pile) == 135
        assert zigbee_c2.publish(ZigbeeTopics.for_charger("c1").pile("c1-p01")) == 135
        assert c1.publish(StationTopics.collector_status("c1")) < 128
        assert c1.publish(c1_pile) < 128
        assert c2.publish(StationTopics.verification_requests()) < 128

        # A reply for c1 reaches c1 only: c2 gets its own next reply, and nothing before it.
        c1.subscribe(StationTopics.replies("collector-c1"))
        c2.subscribe(StationTopics.replies("collector-c1"))
        c2.subscribe(StationTopics.replies("collector-c2"))
        assert verification.publish(StationTopics.replies("collector-c1"), b"for c1") < 128
        assert verification.publish(StationTopics.replies("collector-c2"), b"for c2") < 128
        assert c1.next_message() == (StationTopics.replies("collector-c1"), b"for c1")
        assert c2.next_message() == (StationTopics.replies("collector-c2"), b"for c2")
    finally:
        for client in clients:
            client.close()


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


@pytest.fixture
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
        ],
        timeout=60,
    )
    options = f"-p {port} -k {work} -c listen_addresses=127.0.0.1"
    log = str(work / "postgresql.log")
    start = [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", log, "-w", "start"]
    as_postgres(start, timeout=60)
    try:
        yield port, work
    finally:
        as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(work, ignore_errors=True)


def test_database_setup_gives_each_service_a_private_database(
    rendered_chart: Rendered, postgres: tuple[int, Path]
) -> None:
    port, socket_dir = postgres
    script = rendered_chart.get("ConfigMap", f"{RELEASE}-postgresql-init")["data"]
    ((name, text),) = script.items()
    statefulset = rendered_chart.get("StatefulSet", f"{RELEASE}-postgresql")
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    env = {
        **os.environ,
        **{n: env_value(rendered_chart, e) or "" for n, e in env_of(container).items()},
        "PGHOST": str(socket_dir),
        "PGPORT": str(port),
        "PATH": f"{postgres_bin()}:{os.environ['PATH']}",
    }
    path = socket_dir / name
    path.write_text(text)
    # The image sources *.sh files from /docker-entrypoint-initdb.d; twice changes nothing.
    for _ in range(2):
        subprocess.run(
            ["bash", "-ec", f"source {path}"], env=env, check=True, capture_output=True, timeout=60
        )

    def local(url: str) -> str:
        return re.sub(r"@[^/]+/", f"@127.0.0.1:{port}/", url)

    urls = {
        svc: rendered_chart.secret(f"{RELEASE}-{svc}", "database-url")
        for svc in ("verification", "billing")
    }
    for service, url in urls.items():
        with psycopg.connect(local(url), connect_timeout=5) as connection:
            row = connection.execute("SELECT current_user, current_database()").fetchone()
            assert row == (service, service)
            connection.execute("CREATE TABLE owned_here (id int)")
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(local(urls["verification"]).rsplit("/", 1)[0] + "/billing")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(re.sub(r":[^:@]+@", ":wrong-password@", local(urls["billing"])))


# --- Skaffold ------------------------------------------------------------------------------


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
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    for key in templates:
        node: Any = defaults
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"{key} is no value of the chart"
            node = node[part]

    def leaves(tree: dict[str, Any], prefix: str = "") -> set[str]:
        keys: set[str] = set()
        for key, value in tree.items():
            path = f"{prefix}{key}"
            keys |= leaves(value, f"{path}.") if isinstance(value, dict) else {path}
        return keys

    # Every password the chart requires comes from the environment on `skaffold run`.
    assert leaves(required_values()) <= set(templates)
