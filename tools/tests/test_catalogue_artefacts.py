"""Alert rules, Alertmanager routes and the fault board, checked by the tools that read them.

``promtool`` checks and unit-tests the generated rules (``for:``, labels, annotations),
``amtool`` checks the Alertmanager configuration and where each severity goes, and the
generated files (rules, board, ``FAULTS.md``) must be what ``station_tools.catalogue`` gives
now. That the board queries only metrics the station exports needs a running faults service:
``services/faults/tests/test_fault_board_metrics.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from station_protocol.catalogue import Catalogue, CatalogueEntry, Severity, load_catalogue
from station_tools.catalogue.dashboard import DASHBOARD_PATH
from station_tools.catalogue.generate import stale
from station_tools.catalogue.rules import RULES_PATH
from station_tools.catalogue.runbook import DEFAULT_RUNBOOK_BASE, RUNBOOK_PATH

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / RULES_PATH
ALERTMANAGER = REPO / "charts/station/files/alertmanager.yaml"
DASHBOARD = REPO / DASHBOARD_PATH

PACKAGES = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}

RECEIVERS = {
    Severity.CRITICAL: "pager",
    Severity.MAJOR: "operator",
    Severity.MINOR: "digest",
    Severity.WARNING: "digest",
}


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: apt-get install --no-install-recommends {PACKAGES[name]}"
    return found


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_generated_files_are_up_to_date(catalogue: Catalogue) -> None:
    assert stale(REPO, catalogue) == [], "run: python -m station_tools.catalogue"


def test_the_rules_pass_promtool(catalogue: Catalogue) -> None:
    checked = run(tool("promtool"), "check", "rules", str(RULES))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(catalogue.entries)} rules found" in checked.stdout


def test_every_code_has_one_alert_with_its_runbook(catalogue: Catalogue) -> None:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"][0]["rules"]
    runbook = (REPO / RUNBOOK_PATH).read_text(encoding="utf-8")

    by_code = {rule["labels"]["code"]: rule for rule in rules}
    assert sorted(by_code) == sorted(catalogue.codes())
    assert len(rules) == len(by_code)
    for entry in catalogue.entries:
        rule = by_code[entry.code]
        assert rule["labels"]["severity"] == entry.severity.value
        assert f'station_fault_active{{code="{entry.code}"}}' in rule["expr"]
        assert rule.get("for", "0s") == f"{entry.alert_after}s"
        assert rule["annotations"]["runbook_url"] == f"{DEFAULT_RUNBOOK_BASE}#{entry.code}"
        assert f"\n## {entry.code}\n" in runbook


def numbered(texts: Any, language: str) -> str:
    return "\n".join(f"{n}. {getattr(text, language)}" for n, text in enumerate(texts, 1))


def expected_annotations(entry: CatalogueEntry, source: str) -> dict[str, str]:
    annotations = {"runbook_url": f"{DEFAULT_RUNBOOK_BASE}#{entry.code}"}
    for language, suffix in (("en", ""), ("zh", "_zh")):
        annotations |= {
            f"summary{suffix}": f"{getattr(entry.title, language)}: {source}",
            f"description{suffix}": getattr(entry.text, language),
            f"causes{suffix}": numbered(entry.causes, language),
            f"remedies{suffix}": numbered(entry.remedies, language),
            f"station_action{suffix}": getattr(entry.station_action, language),
        }
    return annotations


def fault_series(
    code: str, severity: str, source: str, charger: str, pile: str, replica: str
) -> str:
    return (
        f'station_fault_active{{code="{code}",severity="{severity}",source="{source}",'
        f'charger="{charger}",pile="{pile}",job="faults",instance="{replica}"}}'
    )


def test_alerts_fire_after_their_delay_with_causes_and_remedies(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    unreachable = catalogue["pile_unreachable"]
    ground = catalogue["pile_ground_failure"]
    broker = catalogue["broker_unreachable"]
    assert unreachable.alert_after == 30 and ground.alert_after == 0
    pile_labels = {
        "code": "pile_unreachable",
        "severity": "major",
        "source": "c1-p03",
        "charger": "c1",
        "pile": "c1-p03",
        "scope": "pile",
    }
    ground_labels = {
        "code": "pile_ground_failure",
        "severity": "critical",
        "source": "c2-p01",
        "charger": "c2",
        "pile": "c2-p01",
        "scope": "pile",
    }
    broker_labels = {
        "code": "broker_unreachable",
        "severity": "critical",
        "source": "billing",
        "scope": "station",
    }
    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    # two faults replicas export the same fault: one alert
                    {
                        "series": fault_series(
                            "pile_unreachable", "major", "c1-p03", "c1", "c1-p03", "faults-0"
                        ),
                        "values": "1x8",
                    },
                    {
                        "series": fault_series(
                            "pile_unreachable", "major", "c1-p03", "c1", "c1-p03", "faults-1"
                        ),
                        "values": "1x8",
                    },
                    {
                        "series": fault_series(
                            "pile_ground_failure", "critical", "c2-p01", "c2", "c2-p01", "faults-0"
                        ),
                        "values": "1 1 stale",
                    },
                    {
                        "series": 'station_bus_connected{job="billing",instance="10.0.0.5:8102"}',
                        "values": "1 1 0 0 0 0 0 0",
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "15s", "alertname": "StationPileUnreachable", "exp_alerts": []},
                    {
                        "eval_time": "45s",
                        "alertname": "StationPileUnreachable",
                        "exp_alerts": [
                            {
                                "exp_labels": pile_labels,
                                "exp_annotations": expected_annotations(unreachable, "c1-p03"),
                            }
                        ],
                    },
                    {
                        "eval_time": "0s",
                        "alertname": "StationPileGroundFailure",
                        "exp_alerts": [
                            {
                                "exp_labels": ground_labels,
                                "exp_annotations": expected_annotations(ground, "c2-p01"),
                            }
                        ],
                    },
                    {"eval_time": "45s", "alertname": "StationPileGroundFailure", "exp_alerts": []},
                    {"eval_time": "45s", "alertname": "StationBrokerUnreachable", "exp_alerts": []},
                    {
                        "eval_time": "75s",
                        "alertname": "StationBrokerUnreachable",
                        "exp_alerts": [
                            {
                                "exp_labels": broker_labels,
                                "exp_annotations": expected_annotations(broker, "billing"),
                            }
                        ],
                    },
                ],
            }
        ],
    }
    test_file = tmp_path / "fault-rules.test.yaml"
    test_file.write_text(yaml.safe_dump(tests, allow_unicode=True), encoding="utf-8")

    result = run(tool("promtool"), "test", "rules", str(test_file))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    # the expectations are not vacuous: promtool fails an alert that differs
    assert "Pile not answering breath frames: c1-p03" in test_file.read_text(encoding="utf-8")
    assert expected_annotations(unreachable, "c1-p03")["remedies"].startswith("1. Look at the pile")


def test_a_wrong_expectation_fails_promtool(catalogue: Catalogue, tmp_path: Path) -> None:
    """The unit test above can fail: an alert expected too early is reported."""
    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    {
                        "series": fault_series(
                            "pile_unreachable", "major", "c1-p03", "c1", "c1-p03", "faults-0"
                        ),
                        "values": "1x8",
                    },
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "15s",
                        "alertname": "StationPileUnreachable",
                        "exp_alerts": [{"exp_labels": {"code": "pile_unreachable"}}],
                    }
                ],
            }
        ],
    }
    test_file = tmp_path / "wrong.test.yaml"
    test_file.write_text(yaml.safe_dump(tests), encoding="utf-8")

    result = run(tool("promtool"), "test", "rules", str(test_file))

    assert result.returncode != 0


def test_the_alertmanager_config_is_valid() -> None:
    checked = run(tool("amtool"), "check-config", str(ALERTMANAGER))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


@pytest.mark.parametrize("severity", list(Severity))
def test_each_severity_reaches_its_receiver(catalogue: Catalogue, severity: Severity) -> None:
    entry = next(e for e in catalogue.entries if e.severity is severity)
    labels = [f"severity={severity.value}", f"code={entry.code}", "charger=c1", "scope=pile"]

    routed = run(
        tool("amtool"),
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER}",
        f"--verify.receivers={RECEIVERS[severity]}",
        *labels,
    )

    assert routed.returncode == 0, routed.stdout + routed.stderr
    assert routed.stdout.split() == [RECEIVERS[severity]]


def test_the_fault_board_has_its_panels(catalogue: Catalogue) -> None:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = {panel["title"]: panel for panel in board["panels"]}

    station_map = panels["Station map: charger $charger"]
    assert station_map["type"] == "stat" and station_map["repeat"] == "charger"
    assert "station_pile_up" in station_map["targets"][0]["expr"]
    assert panels["Active faults"]["type"] == "table"
    remedies = panels["Remedies by fault code"]["options"]["content"]
    for entry in catalogue.entries:
        assert f"`{entry.code}`" in remedies
        assert entry.remedies[0].en in remedies and entry.remedies[0].zh in remedies
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            assert target["refId"] and target["datasource"]["uid"] == "${datasource}"
    assert board["uid"] == "station-fault-board"
