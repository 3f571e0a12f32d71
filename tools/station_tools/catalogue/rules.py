"""Prometheus alert rules, one per catalogue code, on ``station_fault_active``.

Generated so that an alert says what a bulletin says: the summary, the likely causes and
the remedies in order (English and Chinese), and a ``runbook_url`` into ``FAULTS.md``. The
catalogue's ``alert_after`` becomes the rule's ``for``: a bulletin is out at once, but
nobody is paged for a blip.

``max by (...)`` folds the series of several faults replicas (they export the same state)
into one alert. ``broker_unreachable`` has a second source: a service whose own
``station_bus_connected`` is 0, since nobody can announce a fault over a broker that is down.

``python -m station_tools.catalogue.rules`` prints the rule file (``promtool check rules``
format; a PrometheusRule's ``spec`` is the same document).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from station_protocol.catalogue import Catalogue, CatalogueEntry, Language, load_catalogue
from station_protocol.faults import FaultCode
from station_tools.catalogue.runbook import DEFAULT_RUNBOOK_BASE, numbered, runbook_url

RULES_PATH = "charts/station/files/prometheus-rules.yaml"
GROUP = "station-faults"
FAULT_LABELS = "code, severity, source, charger, pile"


def alert_name(code: str) -> str:
    """``pile_unreachable`` -> ``StationPileUnreachable``."""
    return "Station" + "".join(part.capitalize() for part in code.split("_"))


def expression(entry: CatalogueEntry) -> str:
    active = f'max by ({FAULT_LABELS}) (station_fault_active{{code="{entry.code}"}}) > 0'
    if entry.code != FaultCode.BROKER_UNREACHABLE:
        return active
    cut_off = (
        f"max by ({FAULT_LABELS}) ("
        f"label_replace(label_replace(label_replace(station_bus_connected == 0, "
        f'"code", "{entry.code}", "", ""), '
        f'"severity", "{entry.severity.value}", "", ""), '
        f'"source", "$1", "job", "(.*)"))'
    )
    return f"{active}\nor\n{cut_off}"


def _literal(text: str) -> str:
    """Catalogue text inside an alert template: no ``{{`` may start a template action."""
    return text.replace("{{", '{{ "{{" }}')


def alert_annotations(entry: CatalogueEntry, runbook_base: str) -> dict[str, str]:
    where = "{{ $labels.source }}"
    result: dict[str, str] = {}
    for language, suffix in ((Language.EN, ""), (Language.ZH, "_zh")):
        result[f"summary{suffix}"] = f"{_literal(entry.title.in_language(language))}: {where}"
        result[f"description{suffix}"] = _literal(entry.text.in_language(language))
        result[f"causes{suffix}"] = _literal("\n".join(numbered(entry.causes, language)))
        result[f"remedies{suffix}"] = _literal("\n".join(numbered(entry.remedies, language)))
        result[f"station_action{suffix}"] = _literal(entry.station_action.in_language(language))
    result["runbook_url"] = runbook_url(entry.code, runbook_base)
    return result


def rule(entry: CatalogueEntry, runbook_base: str) -> dict[str, Any]:
    alert: dict[str, Any] = {"alert": alert_name(entry.code), "expr": expression(entry)}
    if entry.alert_after:
        alert["for"] = f"{entry.alert_after}s"
    alert["labels"] = {
        "severity": entry.severity.value,
        "code": entry.code,
        "scope": entry.scope.value,
    }
    alert["annotations"] = alert_annotations(entry, runbook_base)
    return alert


def build_rules(catalogue: Catalogue, runbook_base: str = DEFAULT_RUNBOOK_BASE) -> dict[str, Any]:
    return {
        "groups": [
            {
                "name": GROUP,
                "rules": [rule(entry, runbook_base) for entry in catalogue.entries],
            }
        ]
    }


class _RuleDumper(yaml.SafeDumper):
    """Multi-line texts (numbered remedies) as ``|`` blocks, as a person would write them."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_RuleDumper.add_representer(str, _text)


def render_rules(catalogue: Catalogue, runbook_base: str = DEFAULT_RUNBOOK_BASE) -> str:
    header = (
        "# Generated from protocol/station_protocol/catalogue.yaml by\n"
        "# `python -m station_tools.catalogue`; edit the catalogue, not this file.\n"
    )
    body = yaml.dump(
        build_rules(catalogue, runbook_base),
        Dumper=_RuleDumper,
        allow_unicode=True,
        sort_keys=False,
        width=100,
    )
    return header + body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runbook-base", default=DEFAULT_RUNBOOK_BASE)
    args = parser.parse_args()
    sys.stdout.write(render_rules(load_catalogue(), args.runbook_base))


if __name__ == "__main__":
    main()
