"""The fault catalogue: complete, in both languages, and refused when it is not."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from station_protocol import channels
from station_protocol.bulletins import Bulletin
from station_protocol.catalogue import (
    CatalogueError,
    Language,
    Severity,
    catalogue_path,
    load_catalogue,
    parse_catalogue,
)
from station_protocol.faults import PILE_ERROR_CODES, FaultCode

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_fault_code_and_pile_error_has_an_entry() -> None:
    catalogue = load_catalogue()
    codes = catalogue.codes()

    for code in FaultCode:
        assert code.value in codes, code
    for error, code in PILE_ERROR_CODES.items():
        assert code in codes, error
    assert len(codes) == len(set(codes)) == len(FaultCode) + len(PILE_ERROR_CODES)


def test_every_entry_has_causes_and_remedies_in_both_languages() -> None:
    for entry in load_catalogue().entries:
        assert entry.causes and entry.remedies, entry.code
        texts = [entry.title, entry.text, entry.station_action, *entry.causes, *entry.remedies]
        for text in texts:
            assert text.en.strip() and text.zh.strip(), entry.code
            assert CJK.search(text.zh), f"{entry.code}: not Chinese: {text.zh!r}"
            assert not CJK.search(text.en), f"{entry.code}: not English: {text.en!r}"


def test_the_station_cannot_reach_piles_only_for_link_faults() -> None:
    catalogue = load_catalogue()

    assert catalogue.unreachable_codes() == {
        "pile_unreachable",
        "zigbee_bridge_offline",
        "zigbee_bridge_unseen",
        "collector_offline",
    }
    assert catalogue["pile_ground_failure"].severity is Severity.CRITICAL
    assert catalogue["weak_zigbee_link"].severity is Severity.WARNING
    assert catalogue["pile_ground_failure"].remedies[0].in_language(Language.ZH).startswith("保持")


def document() -> dict[str, list[dict[str, object]]]:
    loaded = yaml.safe_load(catalogue_path().read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_an_entry_without_remedies_is_refused() -> None:
    broken = document()
    broken["faults"][0]["remedies"] = []

    with pytest.raises(CatalogueError, match="remedies"):
        parse_catalogue(broken)


def test_an_entry_without_its_chinese_text_is_refused() -> None:
    broken = document()
    broken["faults"][3]["causes"] = [{"en": "Only English."}]

    with pytest.raises(CatalogueError, match="zh"):
        parse_catalogue(broken)


def test_a_missing_or_repeated_code_is_refused() -> None:
    missing = document()
    missing["faults"] = [e for e in missing["faults"] if e["code"] != "pile_over_voltage"]
    with pytest.raises(CatalogueError, match="pile_over_voltage"):
        parse_catalogue(missing)

    repeated = document()
    repeated["faults"].append(dict(repeated["faults"][0]))
    with pytest.raises(CatalogueError, match="more than one entry: pile_unreachable"):
        parse_catalogue(repeated)


def test_a_catalogue_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.yaml"
    path.write_text("faults: [unclosed", encoding="utf-8")
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(path)
    path.write_text("- just a list\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match="'faults' list"):
        load_catalogue(path)


def test_a_bulletin_carries_its_entry_in_both_languages() -> None:
    entry = load_catalogue()["pile_unreachable"]
    at = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)

    bulletin = Bulletin.expand(
        entry,
        id="e1",
        source="c1-p02",
        charger="c1",
        pile_id="c1-p02",
        since=at,
        detected_at=at,
        raised_at=at,
    )
    again = Bulletin.model_validate_json(bulletin.model_dump_json())

    assert again == bulletin
    assert again.remedies == entry.remedies
    assert again.title.zh == "充电桩失联（心跳无应答）"


def test_fault_topics_round_trip() -> None:
    bulletin = channels.FAULT_BULLETIN.topic(source="c1-p02", code="pile_unreachable")
    assert bulletin == "station/v1/faults/bulletins/c1-p02/pile_unreachable"
    assert channels.FAULT_BULLETIN.parse(bulletin) == {
        "source": "c1-p02",
        "code": "pile_unreachable",
    }
    assert channels.FAULT_BULLETIN.parse("station/v1/faults/bulletins/c1-p02") is None

    report = channels.COLLECTOR_FAULT.topic(
        charger="c3", source="c3-p07", code="pile_ground_failure"
    )
    parsed = channels.COLLECTOR_FAULT.parse(report)
    assert parsed == {"charger": "c3", "source": "c3-p07", "code": "pile_ground_failure"}
    assert channels.COLLECTOR_FAULT.parse("station/v1/collectors/x9/faults/a/b") is None
    assert channels.COLLECTOR_FAULT.parse(report + "/extra") is None

    service = channels.SERVICE_FAULT.topic(
        service="sync", source="central", code="central_sync_backlog"
    )
    found = channels.SERVICE_FAULT.parse(service)
    assert found == {"service": "sync", "source": "central", "code": "central_sync_backlog"}
    assert channels.SERVICE_FAULT.parse(report) is None
