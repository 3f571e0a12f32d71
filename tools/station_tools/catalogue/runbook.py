"""``protocol/FAULTS.md``: the fault catalogue as an operator's runbook, one anchor per code.

Generated, never edited by hand: the alert rules link each alert to ``FAULTS.md#<code>``,
so the page and the catalogue must not drift apart (a test checks it is up to date).
``python -m station_tools.catalogue.runbook`` prints it.
"""

from __future__ import annotations

import sys

from station_protocol.catalogue import Catalogue, CatalogueEntry, Language, Text, load_catalogue

RUNBOOK_PATH = "protocol/FAULTS.md"
DEFAULT_RUNBOOK_BASE = "https://git.station.invalid/station/edge/-/blob/main/protocol/FAULTS.md"
"""Where operators read ``FAULTS.md``; the alerts link to ``<base>#<code>``. Set it to the
station's own repository when generating (``--runbook-base``)."""

HEADINGS = {
    Language.EN: ("Likely causes", "Remedies, in order", "What the station does meanwhile"),
    Language.ZH: ("可能原因", "处理步骤（按顺序）", "期间站端的处理"),
}


def runbook_url(code: str, base: str = DEFAULT_RUNBOOK_BASE) -> str:
    return f"{base}#{code}"


def numbered(texts: tuple[Text, ...], language: Language) -> list[str]:
    return [f"{number}. {text.in_language(language)}" for number, text in enumerate(texts, 1)]


def render_runbook(catalogue: Catalogue) -> str:
    lines = [
        "# Fault catalogue",
        "",
        "<!-- Generated from protocol/station_protocol/catalogue.yaml by",
        "     `python -m station_tools.catalogue`; edit the catalogue, not this file. -->",
        "",
        "Every fault bulletin, alert and fault-board entry of the station comes from this",
        "catalogue. Severity decides who is told: critical pages the on-call engineer, major",
        "goes to the operator on duty, minor and warning to the daily digest.",
        "",
        "| code | severity | about | title |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| [`{e.code}`](#{e.code}) | {e.severity.value} | {e.scope.value} | {e.title.en} |"
        for e in catalogue.entries
    ]
    for entry in catalogue.entries:
        lines += ["", *_section(entry)]
    return "\n".join(lines) + "\n"


def _section(entry: CatalogueEntry) -> list[str]:
    alert = f"after {entry.alert_after} s" if entry.alert_after else "at once"
    lines = [
        f"## {entry.code}",
        "",
        f"**{entry.title.en}** / **{entry.title.zh}**",
        "",
        f"Severity `{entry.severity.value}`, about a {entry.scope.value}, alerts {alert}."
        + (" The station cannot reach the piles it covers." if entry.unreachable else ""),
    ]
    for language in (Language.EN, Language.ZH):
        causes, remedies, meanwhile = HEADINGS[language]
        lines += [
            "",
            entry.text.in_language(language),
            "",
            f"{causes}:",
            "",
            *(f"- {cause.in_language(language)}" for cause in entry.causes),
            "",
            f"{remedies}:",
            "",
            *numbered(entry.remedies, language),
            "",
            f"{meanwhile}: {entry.station_action.in_language(language)}",
        ]
    return lines


def main() -> None:
    sys.stdout.write(render_runbook(load_catalogue()))


if __name__ == "__main__":
    main()
