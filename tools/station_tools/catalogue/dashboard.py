"""The Grafana fault board, as code (grafana-foundation-sdk), generated from the catalogue.

What an operator looks at first: a map of every pile coloured up or down, the faults active
now with what to do about them, how fast faults are detected, how long a breath takes to
come back, and how good each pile's Zigbee link is.
``python -m station_tools.catalogue.dashboard`` prints the dashboard JSON;
``python -m station_tools.catalogue`` writes it into the chart.

Queries name only metrics the station exports: the faults service's own (``station_fault_*``,
``station_pile_up``, ``station_bulletins_*``) and the collectors'
(``station_collector_breath_rtt_seconds``, ``station_pile_linkquality``).
"""

from __future__ import annotations

import json
import sys

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.builders import prometheus, stat, table, text, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
    FieldColorModeId,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from station_protocol.catalogue import Catalogue, Language, load_catalogue
from station_tools.catalogue.runbook import DEFAULT_RUNBOOK_BASE, numbered

DASHBOARD_PATH = "charts/station/dashboards/fault-board.json"
UID = "station-fault-board"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"
CHARGERS = 'charger=~"$charger"'

PILE_STATES = {
    "0": ValueMappingResult(text="DOWN", color="red", index=0),
    "1": ValueMappingResult(text="UP", color="green", index=1),
}
SEVERITY_COLOURS = {
    "critical": ValueMappingResult(text="critical", color="dark-red", index=0),
    "major": ValueMappingResult(text="major", color="orange", index=1),
    "minor": ValueMappingResult(text="minor", color="yellow", index=2),
    "warning": ValueMappingResult(text="warning", color="blue", index=3),
}


def query(expr: str, legend: str = "", ref: str = "A") -> prometheus.Dataquery:
    built = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    return built.legend_format(legend) if legend else built


def thresholds(*steps: tuple[float | None, str]) -> board.ThresholdsConfig:
    return (
        board.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=colour) for value, colour in steps])
    )


def station_map() -> stat.Panel:
    """One tile per pile: green UP, red DOWN (pile, its Zigbee2MQTT or collector unreachable)."""
    return (
        stat.Panel()
        .title("Station map: charger $charger")
        .description("Each tile is a pile. DOWN: the station cannot reach it right now.")
        .repeat("charger")
        .repeat_direction("v")
        .height(6)
        .span(24)
        .datasource(DATASOURCE)
        .with_target(
            query('min by (pile) (station_pile_up{charger=~"$charger"})', "{{pile}}").instant()
        )
        .mappings([ValueMap(options=PILE_STATES)])
        .thresholds(thresholds((None, "red"), (1, "green")))
        .color_scheme(board.FieldColor().mode(FieldColorModeId.THRESHOLDS))
        .color_mode(common.BigValueColorMode.BACKGROUND_SOLID)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .orientation(common.VizOrientation.VERTICAL)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def fault_counts() -> stat.Panel:
    return (
        stat.Panel()
        .title("Active faults by severity")
        .height(6)
        .span(6)
        .datasource(DATASOURCE)
        .with_target(
            query(
                "count by (severity) (max by (code, severity, source) (station_fault_active) > 0)",
                "{{severity}}",
            ).instant()
        )
        .no_value("0")
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .thresholds(thresholds((None, "green"), (1, "orange")))
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]))
    )


def active_faults(runbook_base: str) -> table.Panel:
    """The bulletins up now; the code links to its remedies in ``FAULTS.md``."""
    code_link = DynamicConfigValue(
        id_val="links",
        value=[
            {
                "title": "Causes and remedies",
                "url": f"{runbook_base}#${{__value.text}}",
                "targetBlank": True,
            }
        ],
    )
    severity_colour = [
        DynamicConfigValue(id_val="mappings", value=[ValueMap(options=SEVERITY_COLOURS)]),
        DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
    ]
    return (
        table.Panel()
        .title("Active faults")
        .description("One row per active bulletin. Click a code for its causes and remedies.")
        .height(10)
        .span(18)
        .datasource(DATASOURCE)
        .with_target(
            query(f"max by ({_fault_labels()}) (station_fault_active) > 0")
            .instant()
            .format(PromQueryFormat.TABLE)
        )
        .with_transformation(
            DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True, "Value": True},
                    "indexByName": {
                        "severity": 0,
                        "code": 1,
                        "source": 2,
                        "charger": 3,
                        "pile": 4,
                    },
                },
            )
        )
        .override_by_name("code", [code_link])
        .override_by_name("severity", severity_colour)
        .no_value("No active faults")
    )


def _fault_labels() -> str:
    return "severity, code, source, charger, pile"


def remedies(catalogue: Catalogue) -> text.Panel:
    """Every code's remedies in order, in both languages, generated from the catalogue."""
    sections = []
    for entry in catalogue.entries:
        steps = zip(
            numbered(entry.remedies, Language.EN),
            numbered(entry.remedies, Language.ZH),
            strict=True,
        )
        sections.append(
            "\n".join(
                [
                    f"### `{entry.code}` ({entry.severity.value})",
                    f"**{entry.title.en}** / **{entry.title.zh}**",
                    "",
                    *(f"{en}<br/>{zh[zh.index(' ') + 1 :]}" for en, zh in steps),
                ]
            )
        )
    return (
        text.Panel()
        .title("Remedies by fault code")
        .height(20)
        .span(24)
        .content("\n\n".join(sections))
    )


def detection_latency() -> timeseries.Panel:
    bucket = f"rate(station_fault_detection_latency_seconds_bucket[{RATE}])"
    return (
        timeseries.Panel()
        .title("Fault detection latency")
        .description(
            "detect: from the last sign of life to the decision (includes misses x T1). "
            "publish: from the decision being due to the bulletin on the broker."
        )
        .height(8)
        .span(12)
        .unit("s")
        .datasource(DATASOURCE)
        .with_target(
            query(f"histogram_quantile(0.99, sum by (le, stage) ({bucket}))", "p99 {{stage}}")
        )
        .with_target(
            query(f"histogram_quantile(0.5, sum by (le, stage) ({bucket}))", "p50 {{stage}}", "B")
        )
    )


def bulletins_raised() -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title("Bulletins raised per hour")
        .height(8)
        .span(12)
        .datasource(DATASOURCE)
        .with_target(
            query("sum by (code) (increase(station_bulletins_raised_total[1h]))", "{{code}}")
        )
        .with_target(
            query(
                "sum by (code) (increase(station_bulletins_reopened_total[1h]))",
                "{{code}} (flaps)",
                "B",
            )
        )
    )


def breath_round_trip() -> timeseries.Panel:
    bucket = f"rate(station_collector_breath_rtt_seconds_bucket{{{CHARGERS}}}[{RATE}])"
    return (
        timeseries.Panel()
        .title("Breath round trip, collector to local server (p99)")
        .height(8)
        .span(12)
        .unit("s")
        .datasource(DATASOURCE)
        .with_target(
            query(f"histogram_quantile(0.99, sum by (le, charger) ({bucket}))", "{{charger}}")
        )
    )


def link_quality() -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title("Zigbee link quality per pile")
        .description("Zigbee2MQTT linkquality (0-255). Below 30 breaths start to get lost.")
        .height(8)
        .span(12)
        .min(0)
        .max(255)
        .datasource(DATASOURCE)
        .with_target(
            query(f"min by (pile, charger) (station_pile_linkquality{{{CHARGERS}}})", "{{pile}}")
        )
        .thresholds(thresholds((None, "red"), (30, "orange"), (80, "green")))
        .color_scheme(board.FieldColor().mode(FieldColorModeId.THRESHOLDS))
    )


def dropped_messages() -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title("Fault reports and breaths dropped")
        .description("Messages the faults service could not use: a collector speaking wrongly.")
        .height(8)
        .span(24)
        .datasource(DATASOURCE)
        .with_target(
            query(
                f"sum by (kind, reason) (rate(station_faults_dropped_messages_total[{RATE}]))",
                "{{kind}} {{reason}}",
            )
        )
    )


def build_dashboard(
    catalogue: Catalogue, runbook_base: str = DEFAULT_RUNBOOK_BASE
) -> board.Dashboard:
    return (
        board.Dashboard("Station fault board")
        .uid(UID)
        .tags(["station", "faults"])
        .refresh("10s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(
            board.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
        .with_variable(
            board.QueryVariable("charger")
            .label("Charger")
            .datasource(DATASOURCE)
            .query("label_values(station_pile_up, charger)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.NATURAL_ASC)
            .multi(True)
            .include_all(True)
        )
        .with_row(board.Row("Piles"))
        .with_panel(station_map())
        .with_row(board.Row("Faults now"))
        .with_panel(fault_counts())
        .with_panel(active_faults(runbook_base))
        .with_panel(remedies(catalogue))
        .with_row(board.Row("Detection and links"))
        .with_panel(detection_latency())
        .with_panel(bulletins_raised())
        .with_panel(breath_round_trip())
        .with_panel(link_quality())
        .with_panel(dropped_messages())
    )


def render_dashboard(catalogue: Catalogue, runbook_base: str = DEFAULT_RUNBOOK_BASE) -> str:
    built = build_dashboard(catalogue, runbook_base).build()
    return json.dumps(built, cls=JSONEncoder, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main() -> None:
    sys.stdout.write(render_dashboard(load_catalogue()))


if __name__ == "__main__":
    main()
