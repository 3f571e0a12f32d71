"""Write everything generated from the fault catalogue, or check that it is up to date.

``python -m station_tools.catalogue`` (from the repository root) writes ``FAULTS.md``, the
Prometheus rule file and the fault board into the repository; ``--check`` writes nothing and
exits 1 if any of them differs from what the catalogue gives now. ``station-catalogue`` is
the same command.

The fault board is built with ``grafana-foundation-sdk``, a dev dependency the production
image does not have: :mod:`.dashboard` is imported only when the board is rendered, so this
module (and the runbook and rules) still import without it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from station_protocol.catalogue import Catalogue, load_catalogue
from station_tools.catalogue.rules import RULES_PATH, render_rules
from station_tools.catalogue.runbook import DEFAULT_RUNBOOK_BASE, RUNBOOK_PATH, render_runbook


def generated(runbook_base: str = DEFAULT_RUNBOOK_BASE) -> dict[str, Callable[[Catalogue], str]]:
    """Repository path -> the function that renders it from the catalogue."""
    from station_tools.catalogue.dashboard import DASHBOARD_PATH, render_dashboard

    return {
        RUNBOOK_PATH: render_runbook,
        RULES_PATH: lambda catalogue: render_rules(catalogue, runbook_base),
        DASHBOARD_PATH: lambda catalogue: render_dashboard(catalogue, runbook_base),
    }


def stale(root: Path, catalogue: Catalogue, runbook_base: str = DEFAULT_RUNBOOK_BASE) -> list[str]:
    """The generated files under ``root`` that differ from what the catalogue gives now."""
    out_of_date = []
    for path, render in generated(runbook_base).items():
        target = root / path
        if not target.is_file() or target.read_text(encoding="utf-8") != render(catalogue):
            out_of_date.append(path)
    return out_of_date


def write(root: Path, catalogue: Catalogue, runbook_base: str = DEFAULT_RUNBOOK_BASE) -> None:
    for path, render in generated(runbook_base).items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(catalogue), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate FAULTS.md, alert rules, fault board.")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository root")
    parser.add_argument("--runbook-base", default=DEFAULT_RUNBOOK_BASE)
    parser.add_argument("--check", action="store_true", help="only check they are up to date")
    args = parser.parse_args()
    catalogue = load_catalogue()
    if args.check:
        out_of_date = stale(args.root, catalogue, args.runbook_base)
        for path in out_of_date:
            sys.stderr.write(f"out of date: {path} (run python -m station_tools.catalogue)\n")
        sys.exit(1 if out_of_date else 0)
    write(args.root, catalogue, args.runbook_base)


if __name__ == "__main__":
    main()
