"""Write everything generated from the fault catalogue, or check that it is up to date.

``python -m station_faults.generate`` (from the repository root) writes ``FAULTS.md``, the
Prometheus rule file and the fault board into the repository; ``--check`` writes nothing and
exits 1 if any of them differs from what the catalogue gives now.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from station_faults.dashboard import DASHBOARD_PATH, render_dashboard
from station_faults.rules import RULES_PATH, render_rules
from station_faults.runbook import DEFAULT_RUNBOOK_BASE, RUNBOOK_PATH, render_runbook
from station_protocol.catalogue import Catalogue, load_catalogue


def generated(runbook_base: str = DEFAULT_RUNBOOK_BASE) -> dict[str, Callable[[Catalogue], str]]:
    """Repository path -> the function that renders it from the catalogue."""
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
            sys.stderr.write(f"out of date: {path} (run python -m station_faults.generate)\n")
        sys.exit(1 if out_of_date else 0)
    write(args.root, catalogue, args.runbook_base)


if __name__ == "__main__":
    main()
