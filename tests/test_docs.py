"""The documentation stands on its own and stays true to the code.

Three promises, each checked on the files git tracks (fast, no network, no broker):

* nothing cites a document outside the repository;
* every ``docs/...md`` file cited exists, every relative link between markdown files
  resolves, and every "rule N" or "invariant N" cited beside ``docs/pricing.md`` or
  ``docs/invariants.md`` is a numbered heading there;
* every REST route of every service is in ``docs/contracts/rest.md``, under its service,
  and the document lists no route that does not exist.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from station_protocol.channels import STATION_CHANNELS, RequestChannel

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("services", "protocol", "tools", "tests", "charts", "docs", "README.md")
FORBIDDEN = ("/wo" + "rk/", "../sha" + "red", "DES" + "IGN.md")
"""Citations of documents outside the repository (spelt in pieces so this file is clean)."""

REST_DOC = ROOT / "docs" / "contracts" / "rest.md"
SERVICES = ("collector", "verification", "billing", "faults", "console", "sync", "central")
COMMON_SECTION = "every service"
"""The section of ``rest.md`` whose routes every service has (``/health``...)."""
FRAMEWORK_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

DOC_PATH = re.compile(r"(?<![\w.-])docs/(?:[\w-]+/)*[\w-]+\.md")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s#]+\.md)(?:#[^)]*)?\)")
NUMBERED_CITATION = re.compile(
    r"(?:rules?\s+|invariants?\s+)(?P<n1>\d+)(?:\s+and\s+(?P<m1>\d+))?\s+of\s+`{0,2}"
    r"docs/(?P<doc1>\w+)\.md"
    r"|docs/(?P<doc2>\w+)\.md`{0,2},?\s+(?:rules?|invariants?)\s+(?P<n2>\d+)"
    r"(?:\s+and\s+(?P<m2>\d+))?",
    re.IGNORECASE,
)
"""``rule 2 of docs/pricing.md``, ``docs/invariants.md`` invariant 4 (across a line break too)."""
NUMBERED_HEADING = re.compile(r"^#+ (?:Rule|Invariant) (\d+)\b", re.MULTILINE)
ENDPOINT = re.compile(rf"`({'|'.join(METHODS)}) (/[^`\s]*)`")


def tracked_files() -> list[Path]:
    """The files git tracks under the checked folders (the working copy's version)."""
    try:
        listing = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "-z", "--", *CHECKED],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listing.decode().split("\0") if name]


def texts() -> Iterator[tuple[Path, str]]:
    for path in tracked_files():
        if not path.is_file():
            continue  # deleted in the working copy, not yet in the index
        data = path.read_bytes()
        if b"\0" not in data:
            yield path, data.decode("utf-8", errors="replace")


def where(path: Path, text: str, index: int) -> str:
    return f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, index) + 1}"


def test_no_file_cites_a_document_outside_the_repository() -> None:
    found = [
        f"{where(path, text, match.start())}: {needle!r}"
        for path, text in texts()
        for needle in FORBIDDEN
        for match in re.finditer(re.escape(needle), text)
    ]
    assert not found, "cite the docs in docs/ instead:\n" + "\n".join(found)


def test_every_cited_doc_exists_and_every_markdown_link_resolves() -> None:
    missing = []
    for path, text in texts():
        for match in DOC_PATH.finditer(text):
            if not (ROOT / match.group()).is_file():
                missing.append(f"{where(path, text, match.start())}: {match.group()}")
        if path.suffix == ".md":
            for match in MARKDOWN_LINK.finditer(text):
                target = match.group(1)
                if "://" not in target and not (path.parent / target).is_file():
                    missing.append(f"{where(path, text, match.start())}: link {target}")
    assert not missing, "no such file:\n" + "\n".join(missing)


def test_every_cited_rule_and_invariant_is_numbered_in_its_doc() -> None:
    numbers: dict[str, set[str]] = {}
    for doc in ("pricing", "invariants"):
        text = (ROOT / "docs" / f"{doc}.md").read_text(encoding="utf-8")
        numbers[doc] = set(NUMBERED_HEADING.findall(text))
    unknown = []
    for path, text in texts():
        for match in NUMBERED_CITATION.finditer(text):
            doc = match.group("doc1") or match.group("doc2")
            cited = [match.group(g) for g in ("n1", "m1", "n2", "m2") if match.group(g)]
            for number in cited:
                if doc in numbers and number not in numbers[doc]:
                    unknown.append(f"{where(path, text, match.start())}: {match.group()}")
    assert not unknown, "no such numbered heading:\n" + "\n".join(unknown)


def service_routes(data_dir: Path) -> dict[str, set[tuple[str, str]]]:
    """``(method, path)`` of every route of every service, from its ``create_app``.

    The one place that knows how the apps are built: adapt it when that changes. Only the
    app is built; its lifespan (broker, database) never runs. Routes come from the OpenAPI
    schema, which lists the routes of included routers too, plus any route registered on the
    app itself; ``{uid:path}`` is written ``{uid}``, as the OpenAPI schema and the doc write it.
    """
    from fastapi import FastAPI

    from station_billing.core.config import Settings as BillingSettings
    from station_billing.main import create_app as billing_app
    from station_central.core.config import Settings as CentralSettings
    from station_central.main import create_app as central_app
    from station_collector.core.config import Settings as CollectorSettings
    from station_collector.main import create_app as collector_app
    from station_console.core.config import Settings as ConsoleSettings
    from station_console.main import create_app as console_app
    from station_faults.core.config import Settings as FaultsSettings
    from station_faults.main import create_app as faults_app
    from station_sync.core.config import Settings as SyncSettings
    from station_sync.main import create_app as sync_app
    from station_verification.core.config import Settings as VerificationSettings
    from station_verification.main import create_app as verification_app

    apps: dict[str, FastAPI] = {
        "collector": collector_app(CollectorSettings(data_dir=data_dir)),
        "verification": verification_app(VerificationSettings(data_dir=data_dir)),
        "billing": billing_app(BillingSettings(data_dir=data_dir)),
        "faults": faults_app(FaultsSettings(data_dir=data_dir)),
        "console": console_app(ConsoleSettings(data_dir=data_dir)),
        "sync": sync_app(SyncSettings(data_dir=data_dir)),
        "central": central_app(CentralSettings(data_dir=data_dir)),
    }
    routes: dict[str, set[tuple[str, str]]] = {}
    for service, app in apps.items():
        found = {
            (method.upper(), path)
            for path, operations in app.openapi()["paths"].items()
            for method in operations
        }
        for route in app.routes:
            path, methods = getattr(route, "path", None), getattr(route, "methods", None) or ()
            if path is not None:
                found |= {(method, path) for method in methods if method in METHODS}
        routes[service] = {
            (method, re.sub(r"\{(\w+):\w+\}", r"{\1}", path))
            for method, path in found
            if path not in FRAMEWORK_PATHS
        }
    return routes


def documented_routes() -> dict[str, set[tuple[str, str]]]:
    """The endpoints ``rest.md`` writes as `` `METHOD /path` ``, by ``## <service>`` section."""
    sections: dict[str, set[tuple[str, str]]] = {}
    current: str | None = None
    for line in REST_DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            heading = line[3:].strip().lower()
            first = heading.split(maxsplit=1)[0] if heading else ""
            current = None
            if heading == COMMON_SECTION:
                current = COMMON_SECTION
            elif first in SERVICES:
                current = first
            continue
        if current is not None:
            sections.setdefault(current, set()).update(ENDPOINT.findall(line))
    return sections


@pytest.fixture
def routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, set[tuple[str, str]]]:
    for name in list(os.environ):
        if name.startswith("STATION_"):
            monkeypatch.delenv(name)  # a developer's settings must not change the apps
    return service_routes(tmp_path)


def test_every_rest_route_of_every_service_is_in_rest_md(
    routes: dict[str, set[tuple[str, str]]],
) -> None:
    documented = documented_routes()
    common = documented.get(COMMON_SECTION, set())
    missing = [
        f"{service}: {method} {path}"
        for service, found in routes.items()
        for method, path in sorted(found)
        if (method, path) not in documented.get(service, set()) | common
    ]
    assert not missing, (
        "routes missing from docs/contracts/rest.md (write them as `METHOD /path` under "
        "'## <service>' or '## Every service'):\n" + "\n".join(missing)
    )


def test_rest_md_lists_no_route_that_does_not_exist(
    routes: dict[str, set[tuple[str, str]]],
) -> None:
    documented = documented_routes()
    assert set(SERVICES) <= documented.keys(), "rest.md needs a '## <service>' section each"
    stale = [
        f"{service}: {method} {path}"
        for service, listed in documented.items()
        if service != COMMON_SECTION
        for method, path in sorted(listed)
        if (method, path) not in routes[service]
    ]
    stale += [
        f"every service: {method} {path} (not in {service})"
        for method, path in sorted(documented.get(COMMON_SECTION, set()))
        for service, found in routes.items()
        if (method, path) not in found
    ]
    assert not stale, "docs/contracts/rest.md lists routes the code lacks:\n" + "\n".join(stale)


TOPICS_DOC = ROOT / "docs" / "contracts" / "topics.md"


def topic_rows() -> dict[str, list[str]]:
    """The rows of the topic tables, by topic (``station/v1/sessions/<pile>``)."""
    rows: dict[str, list[str]] = {}
    for line in TOPICS_DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells
    return rows


def test_every_station_channel_is_in_the_topic_table_as_declared() -> None:
    rows = topic_rows()
    for channel in STATION_CHANNELS:
        written = re.sub(r"\{(\w+)\}", r"<\1>", channel.pattern)
        assert written in rows, f"{written} is not in {TOPICS_DOC.name}"
        _, _, _, qos, retained, payload = rows[written]
        assert qos.startswith(str(channel.qos)), f"{written}: QoS {qos}, code {channel.qos}"
        assert retained == ("yes" if channel.retain else "no"), f"{written}: retained {retained}"
        models = [channel.adapter.json_schema()["title"]]
        if isinstance(channel, RequestChannel):
            models.append(channel.reply.json_schema()["title"])
        for model in models:
            assert f"`{model}`" in payload, f"{written}: {model} is not in its payload column"
